/**
 * Reconciles one VmRegistrySource, level-triggered: whatever caused the call, the same
 * one-way flow runs: read (the registry snapshot and the inventory of entries) → map
 * (provider mapping and relabel rules) → plan (the decision layer) → apply (the applier
 * executes the plan) → report (one status write, counted from the inventory after the
 * apply, and Events).
 */
import { parseDuration } from '../api/duration.ts';
import { providerOf, SOURCES, type ProviderName, type VmRegistrySource, type VmRegistrySourceSpec, type VmRegistrySourceStatus } from '../api/types.ts';
import { ValidationError } from '../api/validate.ts';
import type { ControllerMetrics } from '../metrics/controller-metrics.ts';
import type { Logger } from '../metrics/logger.ts';
import { endpointCount, type Snapshot } from '../providers/provider.ts';
import type { ProviderFactories } from '../providers/registry.ts';
import { applyPlan, type ApplyResult, type WriteError } from '../apply/apply.ts';
import { heldBackTotal } from '../plan/decide.ts';
import { endpointMapper, MappingMemo } from '../mapping/desired.ts';
import { GroupedMapping } from '../mapping/grouped.ts';
import { afterApply, inventoryOf, type Inventory } from '../plan/inventory.ts';
import { WORKLOAD_ENTRY_KIND } from '../plan/kinds.ts';
import { mapEndpoints } from '../mapping/mapping.ts';
import { isRelabelError } from '../mapping/relabel.ts';
import { isAdoptable, isOwnedBy, sourceSelector, UNMANAGED_SELECTOR } from '../api/ownership.ts';
import { changedFields, healthyStatus, HOLD_REASONS, plan as makePlan, type AdoptionInput, type Plan } from '../plan/plan.ts';
import { lookUpNames } from '../apply/read.ts';
import { serviceLabelOf } from '../plan/twins.ts';
import type { DesiredEntry, DesiredState, SkippedEndpoint } from '../mapping/types.ts';
import type { ObjectWriter } from '../apply/writer.ts';
import { WORKLOAD_ENTRIES, type WorkloadEntry } from '../api/istio.ts';
import { slimWorkloadEntry } from '../apply/slim.ts';
import { mergeConditions, readyFrom, statusEqual, type ConditionInput } from './conditions.ts';
import { conflictMessage, describeProviderFailure, guardMessage, syncedCondition } from './status-messages.ts';
import type { EventRecorder } from './events.ts';
import type { ServiceEntry } from '../api/istio.ts';
import { syncServiceEntries, type ServiceEntrySyncOutcome } from './service-entry-sync.ts';
import type { KubeClient } from '../runtime/kube-client.ts';
import type { InformerEvent } from '../runtime/informer.ts';
import { ProviderSlots, type SecretReader } from './provider-slots.ts';
import { nextLedger, ownedAfter, partialScope, pick, type Ledger } from './partial-sync.ts';
import type { AmbientPolicy } from './consent.ts';

export { HEALTH_CHECKS_ANNOTATION } from '../api/istio.ts';

export type Outcome = { readonly requeueAfterMs?: number };

/** A reconcile failure that retrying cannot fix (the spec must change). */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

/** The API calls the reconciler makes: the managed objects, the source's status, Secrets. */
export type ReconcilerClient = ObjectWriter & Pick<KubeClient, 'mergeStatus'> & SecretReader;

export interface ReconcilerDeps {
  readonly client: ReconcilerClient;
  readonly getSource: (namespace: string, name: string) => VmRegistrySource | undefined;
  /** Managed WorkloadEntries in a namespace (from the informer cache). */
  readonly listManaged: (namespace: string) => readonly WorkloadEntry[];
  /** One managed WorkloadEntry from the informer cache. With it, a sync plans only the names that changed (see Ledger). */
  readonly getManaged?: (namespace: string, name: string) => WorkloadEntry | undefined;
  /** Every ServiceEntry of a namespace (from the informer cache); listed from the API when absent. */
  readonly listServiceEntries?: (namespace: string) => readonly ServiceEntry[];
  readonly factories: ProviderFactories;
  readonly metrics: ControllerMetrics;
  readonly log: Logger;
  readonly events: EventRecorder;
  readonly enqueue: (key: string) => void;
  /** How often owned entries are listed from the API instead of the cache. */
  readonly resyncPeriodMs?: number;
  /** Where the operator's own cloud identity may be used (default: nowhere). */
  readonly ambient?: AmbientPolicy;
}

interface SourceMemory {
  /**
   * Names of the entries the source owned after the last sync's apply (the cache's view
   * with what the sync wrote): the managed count, the deletion guard's base in a partial
   * sync, and a create of one of these is a hand deletion put back.
   */
  owned?: Set<string>;
  lastDirectList: number;
  /** Mapping results for this uid/generation; a new spec starts a new memo. */
  memo?: { readonly specKey: string; readonly memo: MappingMemo; readonly grouped: GroupedMapping };
  /** The desired state of the last snapshot: reconciles caused by our own writes reuse it. */
  mapped?: MappedSnapshot;
  /** What the last sync left, when it succeeded: the next one may plan only what changed since. */
  ledger?: Ledger;
  /** Names of this source's entries the informer reported changed or gone since the current sync began. */
  touched: Set<string>;
  /** The interval tick asked for since the snapshot read at `readAt` (the earliest, as the work queue keeps it). */
  tick?: { readonly readAt: number; readonly dueAt: number };
}

/** A snapshot mapped to desired entries. */
interface MappedSnapshot {
  readonly specKey: string;
  readonly snapshot: Snapshot;
  readonly byName: ReadonlyMap<string, DesiredEntry>;
  /** Names whose desired entry changed since the previous mapping of this spec; undefined: any may have. */
  readonly changed: ReadonlySet<string> | undefined;
  entries(): readonly DesiredEntry[];
  skipped(): readonly SkippedEndpoint[];
}

/** The status a sync reports: conditions and, when the sync got that far, counts. */
interface StatusReport {
  readonly provider: VmRegistrySourceStatus['provider'];
  readonly conditions: ConditionInput[];
  readonly counts?: Partial<VmRegistrySourceStatus>;
}

/** What one sync ends with: the status to write, then an error to throw or when to come back. */
interface SyncReport {
  readonly status: StatusReport;
  readonly error?: Error;
  readonly requeueAfterMs?: number;
}

function specKeyOf(source: VmRegistrySource): string {
  return `${source.metadata.uid}/${source.metadata.generation}`;
}

/** A snapshot is reused until this much before the interval tick, so the tick itself reads afresh. */
const TICK_MARGIN_MS = 50;

export class Reconciler {
  private readonly deps: ReconcilerDeps;
  readonly providers: ProviderSlots;
  private readonly memory = new Map<string, SourceMemory>();

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
    this.providers = new ProviderSlots({
      factories: deps.factories,
      client: deps.client,
      metrics: deps.metrics.provider,
      log: deps.log,
      onChange: deps.enqueue,
      ...(deps.ambient !== undefined ? { ambient: deps.ambient } : {}),
    });
  }

  /** The source's sync interval, if it is known and valid. */
  intervalOf(key: string): number | undefined {
    const [namespace, name] = splitKey(key);
    const interval = this.deps.getSource(namespace, name)?.spec?.interval;
    try {
      return interval === undefined ? undefined : parseDuration(interval);
    } catch {
      return undefined;
    }
  }

  /**
   * True when an event on a managed WorkloadEntry asks nothing of this source: the entry
   * is as the source's latest mapping wants it (or, deleted, no longer wanted). Most such
   * events are the echo of the source's own writes; a reconcile for each would double
   * the work of every registry change at fleet size. An edit, a deletion by hand or an
   * entry the source no longer wants is never settled. Nor is anything of a source that
   * adopts: its hand-written twins go in the sync after their successors appear.
   */
  isSettled(key: string, event: InformerEvent, entry: WorkloadEntry): boolean {
    const mapped = this.memory.get(key)?.mapped;
    const [namespace, name] = splitKey(key);
    const source = this.deps.getSource(namespace, name);
    if (mapped === undefined || source === undefined || source.spec.adopt === true || specKeyOf(source) !== mapped.specKey) return false;
    const desired = mapped.byName.get(entry.metadata.name);
    if (event === 'delete') return desired === undefined;
    if (desired === undefined || entry.metadata.deletionTimestamp !== undefined || !isOwnedBy(entry, source)) return false;
    if (changedFields(desired, entry).length > 0) return false;
    return desired.healthy === undefined || healthyStatus(entry) === (desired.healthy ? 'True' : 'False');
  }

  /** An entry of this source changed or went (informer event): the next sync plans its name. */
  noteEntry(key: string, name: string): void {
    this.memory.get(key)?.touched.add(name);
  }

  /** Spec changes and failed syncs ask the registry again at the next reconcile. */
  markStale(key: string): void {
    this.providers.markStale(key);
  }

  async reconcile(key: string, signal: AbortSignal): Promise<Outcome> {
    const [namespace, name] = splitKey(key);
    const source = this.deps.getSource(namespace, name);
    if (!source || source.metadata.deletionTimestamp) {
      // Deleting the source cascades to its entries through ownerReferences (garbage collector).
      await this.providers.close(key);
      this.memory.delete(key);
      this.deps.events.forget(namespace, name);
      return {};
    }
    const report = await this.sync(key, source, signal);
    await this.writeStatus(source, report.status);
    if (report.error) throw report.error;
    return report.requeueAfterMs === undefined ? {} : { requeueAfterMs: report.requeueAfterMs };
  }

  /** Read → map → plan → apply, and the status that reports it. Throws only on failures status cannot describe. */
  private async sync(key: string, source: VmRegistrySource, signal: AbortSignal): Promise<SyncReport> {
    const log = this.deps.log.with({ source: key });
    let spec: VmRegistrySourceSpec;
    try {
      spec = this.deps.factories.api.validateSpec(source.spec);
    } catch (e) {
      const message = e instanceof ValidationError ? e.message : String(e);
      this.deps.events.record(source, 'Warning', 'InvalidSpec', message);
      return { status: { provider: undefined, conditions: [{ type: 'Synced', status: 'False', reason: 'InvalidSpec', message }] }, error: new TerminalError(`invalid spec: ${message}`) };
    }
    const validated: VmRegistrySource = { ...source, spec };
    const provider = providerOf(spec);
    const intervalMs = parseDuration(spec.interval);

    if (spec.suspend) {
      await this.providers.close(key);
      return {
        status: { provider, conditions: [{ type: 'Synced', status: 'False', reason: 'Suspended', message: 'spec.suspend is true: entries are kept as they are and not synced' }] },
      };
    }

    // 1. Read the registry (the last snapshot until the interval tick comes).
    const memory = this.memoryOf(key);
    let snapshot: Snapshot;
    let readAt: number;
    try {
      ({ snapshot, readAt } = await this.providers.snapshot(key, validated, signal, (at) => Date.now() >= tickOf(memory, at, intervalMs)));
    } catch (e) {
      const { reason, message } = describeProviderFailure(e);
      log.warn('registry read failed; entries kept', { reason, error: e });
      this.deps.events.record(source, 'Warning', reason, `${message}; existing WorkloadEntries are kept`);
      const conditions: ConditionInput[] = [
        { type: 'ProviderReady', status: 'False', reason, message: `${message}; existing WorkloadEntries are kept` },
        { type: 'Synced', status: 'Unknown', reason: 'RegistryUnavailable', message: 'waiting for a complete answer from the registry' },
      ];
      return { status: { provider, conditions }, error: e instanceof Error ? e : new Error(String(e)) };
    }

    // 2. Map: only endpoints (and groups) the last mapping has not seen (MappingMemo, GroupedMapping).
    // What the last sync left is taken, so a sync that fails or throws leaves none: the next is whole.
    const ledger = memory.ledger;
    memory.ledger = undefined;
    let mapped: MappedSnapshot;
    try {
      mapped = await this.mappingOf(key, validated, snapshot);
    } catch (e) {
      if (!isRelabelError(e)) throw e;
      const message = `relabel rules cannot be used: ${e.message}`;
      this.deps.events.record(source, 'Warning', 'InvalidRelabelRule', message);
      return { status: { provider, conditions: [{ type: 'Synced', status: 'False', reason: 'InvalidRelabelRule', message }] }, error: new TerminalError(message) };
    }
    const touched = memory.touched;
    memory.touched = new Set();
    const scope = partialScope({
      ledger,
      owned: memory.owned,
      cacheByName: this.deps.getManaged !== undefined,
      specKey: mapped.specKey,
      changed: mapped.changed,
      touched,
      wholeSourceDecisions: spec.adopt === true || snapshot.unknownScopes.length > 0,
      directListDue: Date.now() - memory.lastDirectList > (this.deps.resyncPeriodMs ?? DEFAULT_RESYNC_PERIOD_MS),
    });
    const entries = scope === undefined ? mapped.entries() : pick(mapped.byName, scope);
    const skipped = mapped.skipped();
    const desiredCount = mapped.byName.size;

    // 3. Plan against the inventory: owned entries, and who holds the names about to be created.
    const { plan: thePlan, inventory } = await this.planEntries(key, validated, entries, snapshot.unknownScopes, scope && memory.owned ? { names: scope, ownedTotal: memory.owned.size } : undefined);

    // 4. Apply: the WorkloadEntries, then the ServiceEntries from the same desired entries.
    const applied = await applyPlan(this.deps.client, validated, thePlan);
    const errors: WriteError[] = [...thePlan.unreadable, ...applied.errors];
    const result: ApplyResult = { ...applied, errors };
    this.countWrites(key, thePlan, result);
    this.recordEvents(validated, thePlan, result, { entries, skipped });
    const serviceEntries = await syncServiceEntries(
      { client: this.deps.client, events: this.deps.events, ...(this.deps.listServiceEntries ? { listAll: this.deps.listServiceEntries } : {}) },
      // ServiceEntries are built from every desired entry (ports and addresses per service).
      { source: validated, provider, entries: spec.serviceEntries ? mapped.entries() : [], ...(snapshot.services ? { knownServices: snapshot.services } : {}) },
    );

    // 5. Report, counted from the inventory after the apply.
    const after = afterApply(inventory, result);
    memory.owned = ownedAfter(after.owned, scope && memory.owned ? { names: scope, before: memory.owned } : undefined);
    const managed = memory.owned.size;
    const status: StatusReport = {
      provider,
      conditions: [providerReadyOf(snapshot, provider), withServiceEntries(syncedCondition(thePlan, result, desiredCount, skipped.length, spec.deletionGuard.maxDeletePercent), serviceEntries)],
      counts: {
        desiredEntries: desiredCount,
        managedEntries: managed,
        conflicts: thePlan.conflicts.length,
        skipped: skipped.length,
        heldBackDeletes: heldBackTotal(thePlan.heldBack),
        // Sources that never generated ServiceEntries keep a status without these counts.
        ...(serviceEntries.counts ?? (serviceEntryCountsOf(source.status) ? NO_SERVICE_ENTRIES : {})),
      },
    };
    this.setGauges(key, thePlan, desiredCount, managed, skipped.length);

    if (errors.length > 0) {
      const first = errors[0];
      return { status, error: new Error(`${errors.length} WorkloadEntry writes failed; first: ${first?.name}: ${first?.error.message}`) };
    }
    if (serviceEntries.errors.length > 0) {
      const first = serviceEntries.errors[0];
      return { status, error: new Error(`${serviceEntries.errors.length} ServiceEntry writes failed; first: ${first?.name}: ${first?.error.message}`) };
    }
    this.deps.metrics.lastSync.set({ source: key }, Date.now() / 1000);
    const requeueAfterMs = jitter(intervalMs);
    const due = Date.now() + requeueAfterMs - TICK_MARGIN_MS;
    memory.tick = { readAt, dueAt: Math.min(due, memory.tick?.readAt === readAt ? memory.tick.dueAt : Infinity) };
    memory.ledger = nextLedger(mapped.specKey, thePlan, after.owned, mapped.byName, scope === undefined ? undefined : inventory.owned);
    return { status, requeueAfterMs };
  }

  /** The inventory of WorkloadEntries (owned, and the holders of names to create) and the plan against it. */
  private async planEntries(
    key: string,
    source: VmRegistrySource,
    entries: readonly DesiredEntry[],
    unknownScopes: readonly string[],
    partial?: { readonly names: ReadonlySet<string>; readonly ownedTotal: number },
  ): Promise<{ plan: Plan; inventory: Inventory<WorkloadEntry> }> {
    const owned = new Map<string, WorkloadEntry>();
    for (const e of partial ? this.cachedOwned(source, partial.names) : await this.ownedEntries(key, source)) owned.set(e.metadata.name, e);
    const toCreate = entries.filter((d) => !owned.has(d.name)).map((d) => d.name);
    const holders = await lookUpNames(this.deps.client, WORKLOAD_ENTRY_KIND, source, toCreate, { keep: slimWorkloadEntry });
    // Entries of those names that are ours: the cache lagged behind.
    for (const e of holders.owned) owned.set(e.metadata.name, e);
    const inventory: Inventory<WorkloadEntry> = { ...inventoryOf([], holders.foreign, holders.unreadable), owned };
    const { spec } = source;
    const adoption = spec.adopt ? await this.adoptionCandidates(source) : undefined;
    const plan = makePlan({
      desired: entries,
      inventory,
      policy: spec.policy,
      unknownScopes,
      guard: spec.deletionGuard,
      ...(partial ? { ownedTotal: partial.ownedTotal } : {}),
      ...(adoption ? { adoption } : {}),
    });
    return { plan, inventory };
  }

  /** The source's entries of these names in the informer cache. */
  private cachedOwned(source: VmRegistrySource, names: Iterable<string>): WorkloadEntry[] {
    const out: WorkloadEntry[] = [];
    for (const name of names) {
      const e = this.deps.getManaged?.(source.metadata.namespace, name);
      if (e !== undefined && isOwnedBy(e, source)) out.push(e);
    }
    return out;
  }

  private setGauges(key: string, p: Plan, desired: number, managed: number, skipped: number): void {
    const metrics = this.deps.metrics;
    metrics.entries.set({ source: key, state: 'desired' }, desired);
    metrics.entries.set({ source: key, state: 'managed' }, managed);
    metrics.entries.set({ source: key, state: 'conflicts' }, p.conflicts.length);
    metrics.entries.set({ source: key, state: 'skipped' }, skipped);
    for (const reason of HOLD_REASONS) metrics.heldBackDeletes.set({ source: key, reason }, p.heldBack.get(reason) ?? 0);
  }

  /** The mapping memo of this spec; a new spec starts anew (its rules are compiled once). */
  private async memoFor(key: string, source: VmRegistrySource): Promise<{ readonly memo: MappingMemo; readonly grouped: GroupedMapping }> {
    const memory = this.memoryOf(key);
    const specKey = specKeyOf(source);
    if (memory.memo?.specKey !== specKey) {
      const factory = await this.deps.factories.load(providerOf(source.spec));
      const memo = new MappingMemo();
      // Grouped snapshots build their endpoints anew when a group changes: no per-endpoint memo.
      const mapOne = endpointMapper({
        sourceName: source.metadata.name,
        spec: source.spec,
        providerRules: factory?.defaultMapping(source.spec) ?? [],
        providerAnnotations: factory?.entryAnnotations?.(source.spec) ?? {},
      });
      memory.memo = { specKey, memo, grouped: new GroupedMapping(mapOne) };
    }
    return memory.memo;
  }

  /** The desired state of this snapshot and spec, built once; grouped snapshots map only the groups that changed. */
  private async mappingOf(key: string, source: VmRegistrySource, snapshot: Snapshot): Promise<MappedSnapshot> {
    const memory = this.memoryOf(key);
    const specKey = specKeyOf(source);
    const last = memory.mapped;
    // The same snapshot again (a reconcile caused by our own writes): nothing changed since.
    if (last !== undefined && last.snapshot === snapshot && last.specKey === specKey) return (memory.mapped = { ...last, changed: last.changed && NOTHING });
    const { memo, grouped } = await this.memoFor(key, source);
    let mapped: MappedSnapshot;
    if (snapshot.groups !== undefined) {
      const { byName, changed } = grouped.update(snapshot.groups);
      mapped = { specKey, snapshot, byName, changed, entries: () => grouped.state().entries, skipped: () => grouped.state().skipped };
    } else {
      const factory = await this.deps.factories.load(providerOf(source.spec));
      const desired = mapEndpoints({ sourceName: source.metadata.name, spec: source.spec, endpoints: snapshot.endpoints, mapping: factory, memo });
      mapped = { specKey, snapshot, byName: new Map(desired.entries.map((d) => [d.name, d])), changed: undefined, entries: () => desired.entries, skipped: () => desired.skipped };
    }
    memory.mapped = mapped;
    return mapped;
  }

  private memoryOf(key: string): SourceMemory {
    let m = this.memory.get(key);
    if (!m) {
      m = { lastDirectList: Date.now(), touched: new Set() };
      this.memory.set(key, m);
    }
    return m;
  }

  private async ownedEntries(key: string, source: VmRegistrySource): Promise<WorkloadEntry[]> {
    const memory = this.memoryOf(key);
    const period = this.deps.resyncPeriodMs ?? DEFAULT_RESYNC_PERIOD_MS;
    let candidates: readonly WorkloadEntry[];
    if (Date.now() - memory.lastDirectList > period) {
      candidates = await this.deps.client.list<WorkloadEntry>(WORKLOAD_ENTRIES, source.metadata.namespace, { labelSelector: sourceSelector(source.metadata.name), keep: slimWorkloadEntry });
      memory.lastDirectList = Date.now();
    } else {
      candidates = this.deps.listManaged(source.metadata.namespace);
    }
    return candidates.filter((e) => isOwnedBy(e, source));
  }

  /** Entries of the namespace nobody manages: one LIST, only for sources that adopt. */
  private async adoptionCandidates(source: VmRegistrySource): Promise<AdoptionInput> {
    const unmanaged = await this.deps.client.list<WorkloadEntry>(WORKLOAD_ENTRIES, source.metadata.namespace, { labelSelector: UNMANAGED_SELECTOR, keep: slimWorkloadEntry });
    return { candidates: unmanaged.filter(isAdoptable), serviceLabel: serviceLabelOf(source.spec) };
  }

  private countWrites(key: string, p: Plan, result: ApplyResult): void {
    const m = this.deps.metrics;
    m.entryWrites.inc({ operation: 'create' }, result.created.length + result.adopted.length);
    m.entryWrites.inc({ operation: 'update' }, result.updated.length);
    m.entryWrites.inc({ operation: 'delete' }, result.deleted.length + result.replaced.length);
    m.entryWrites.inc({ operation: 'status' }, result.healthWrites);
    const ownedBefore = this.memoryOf(key).owned;
    const recreated = result.created.filter((n) => ownedBefore?.has(n) === true).length;
    // An update whose desired content did not change means someone edited the object.
    const edited = p.updates.filter((u) => !u.fields.includes('applied-hash') && result.updated.includes(u.desired.name)).length;
    if (recreated > 0) m.driftCorrections.inc({ source: key, kind: 'deleted' }, recreated);
    if (edited > 0) m.driftCorrections.inc({ source: key, kind: 'edited' }, edited);
  }

  private recordEvents(source: VmRegistrySource, p: Plan, result: ApplyResult, desired: DesiredState): void {
    const ev = this.deps.events;
    const changed = result.created.length + result.updated.length + result.deleted.length;
    if (changed > 0) {
      ev.record(source, 'Normal', 'Synced', `created ${result.created.length}, updated ${result.updated.length}, deleted ${result.deleted.length} WorkloadEntries`);
    }
    if (result.replaced.length > 0) {
      ev.record(source, 'Normal', 'Adopted', `deleted ${result.replaced.length} hand-written WorkloadEntries now served by managed twins: ${result.replaced.slice(0, 5).join(', ')}`);
    }
    if (p.conflicts.length > 0) {
      ev.record(source, 'Warning', 'Conflict', conflictMessage(p.conflicts));
    }
    const guard = p.heldBack.get('DeletionGuard');
    if (guard) ev.record(source, 'Warning', 'DeletionGuard', guardMessage(guard, source.spec.deletionGuard.maxDeletePercent));
    if (desired.skipped.length > 0) {
      const sample = desired.skipped.slice(0, 5).map((s) => `${s.endpointId}: ${s.reason}`).join('; ');
      ev.record(source, 'Warning', 'EndpointsSkipped', `${desired.skipped.length} endpoints skipped: ${sample}`);
    }
    const dropped = [...new Set(desired.entries.flatMap((d) => d.droppedLabels ?? []))].sort();
    if (dropped.length > 0) {
      ev.record(source, 'Warning', 'LabelsDropped', `label keys that cannot be made valid (or are reserved) were left out: ${dropped.slice(0, 10).join(', ')}`);
    }
  }

  /** The one status write of a reconcile (none when nothing changed). */
  private async writeStatus(source: VmRegistrySource, next: StatusReport): Promise<void> {
    const generation = source.metadata.generation ?? 0;
    const now = new Date().toISOString();
    const all = [...next.conditions];
    for (const type of ['ProviderReady', 'Synced'] as const) {
      if (!all.some((c) => c.type === type)) all.push({ type, status: 'Unknown', reason: 'NotChecked', message: 'not reached in this sync' });
    }
    const ordered = [readyFrom(all), ...all];
    const previous = source.status;
    const status: VmRegistrySourceStatus = {
      observedGeneration: generation,
      ...(next.provider ? { provider: next.provider } : {}),
      conditions: mergeConditions(previous?.conditions, ordered, generation, now),
      desiredEntries: previous?.desiredEntries ?? 0,
      managedEntries: previous?.managedEntries ?? 0,
      conflicts: previous?.conflicts ?? 0,
      skipped: previous?.skipped ?? 0,
      heldBackDeletes: previous?.heldBackDeletes ?? 0,
      ...serviceEntryCountsOf(previous),
      ...next.counts,
      lastSyncTime: previous?.lastSyncTime ?? now,
    };
    if (statusEqual(previous, status)) return;
    status.lastSyncTime = now;
    await this.deps.client.mergeStatus(SOURCES, source.metadata.namespace, source.metadata.name, status);
  }

  async close(): Promise<void> {
    await this.providers.closeAll();
  }
}

const DEFAULT_RESYNC_PERIOD_MS = 10 * 60_000;
const NOTHING: ReadonlySet<string> = new Set();

const NO_SERVICE_ENTRIES = { desiredServiceEntries: 0, managedServiceEntries: 0, serviceEntryConflicts: 0, unselectedEntries: 0 } as const;

function serviceEntryCountsOf(status: VmRegistrySourceStatus | undefined): Partial<VmRegistrySourceStatus> | undefined {
  if (status?.managedServiceEntries === undefined) return undefined;
  const { desiredServiceEntries, managedServiceEntries, serviceEntryConflicts, unselectedEntries } = status;
  return { desiredServiceEntries, managedServiceEntries, serviceEntryConflicts, unselectedEntries };
}

/** The Synced condition with what the ServiceEntry half of the sync adds to it. */
function withServiceEntries(synced: ConditionInput, se: ServiceEntrySyncOutcome): ConditionInput {
  if (synced.status !== 'True') return synced;
  if (se.notSynced) return se.notSynced;
  return se.summary === '' ? synced : { ...synced, message: `${synced.message}; ${se.summary}` };
}

/** When the snapshot read at `readAt` is due to be read again: at the tick asked for since, else an interval after the read. */
function tickOf(memory: SourceMemory, readAt: number, intervalMs: number): number {
  return memory.tick?.readAt === readAt ? memory.tick.dueAt : readAt + intervalMs - TICK_MARGIN_MS;
}

function providerReadyOf(snapshot: Snapshot, provider: ProviderName): ConditionInput {
  if (snapshot.unknownScopes.length === 0) {
    return { type: 'ProviderReady', status: 'True', reason: 'SnapshotReceived', message: `${endpointCount(snapshot)} endpoints read from ${provider}` };
  }
  return {
    type: 'ProviderReady',
    status: 'False',
    reason: 'PartialSnapshot',
    message: `could not read ${snapshot.unknownScopes.join(', ')}: ${snapshot.warnings.join('; ') || 'no detail'}; entries there are kept`,
  };
}

export function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

/** ±10% so that many sources with one interval spread out. */
function jitter(ms: number): number {
  return Math.round(ms * (0.9 + Math.random() * 0.2));
}
