/**
 * Reconciles one VmRegistrySource, level-triggered: whatever caused the call, read the
 * registry snapshot, map it, plan against the entries the source owns, apply, and write
 * status when it changed. Data flows one way: snapshot → mapping → plan → apply → status.
 */
import { parseDuration } from '../api/duration.ts';
import { providerOf, SOURCES, type VmRegistrySource, type VmRegistrySourceStatus } from '../api/types.ts';
import { ValidationError } from '../api/validate.ts';
import type { ControllerMetrics } from '../metrics/controller-metrics.ts';
import type { Logger } from '../metrics/logger.ts';
import type { Snapshot } from '../providers/provider.ts';
import type { ProviderFactories } from '../providers/registry.ts';
import { applyPlan, type ApplyResult } from '../reconcile/apply.ts';
import { buildDesiredState, MappingMemo } from '../reconcile/desired.ts';
import { isRelabelError } from '../reconcile/relabel.ts';
import { isAdoptable, isOwnedBy, sourceSelector, UNMANAGED_SELECTOR } from '../reconcile/ownership.ts';
import { HOLD_REASONS, plan as makePlan, type AdoptionInput, type Plan } from '../reconcile/plan.ts';
import { serviceLabelOf } from '../reconcile/twins.ts';
import type { DesiredEntry, DesiredState } from '../reconcile/types.ts';
import { WORKLOAD_ENTRIES, type WorkloadEntry } from '../api/istio.ts';
import { slimWorkloadEntry } from '../reconcile/slim.ts';
import { mergeConditions, readyFrom, statusEqual, type ConditionInput } from './conditions.ts';
import { conflictMessage, describeProviderFailure, guardMessage, syncedCondition } from './status-messages.ts';
import type { EventRecorder } from './events.ts';
import type { ServiceEntry } from '../api/istio.ts';
import { syncServiceEntries, type ServiceEntrySyncOutcome } from './service-entry-sync.ts';
import type { KubeClient } from '../runtime/kube-client.ts';
import { ProviderSlots } from './provider-slots.ts';
import type { AmbientPolicy } from './consent.ts';

/** Istio's switch for WorkloadEntry health conditions written by a controller. */
export const HEALTH_CHECKS_ANNOTATION = 'proxy.istio.io/health-checks-enabled';

export type Outcome = { readonly requeueAfterMs?: number };

/** A reconcile failure that retrying cannot fix (the spec must change). */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

export interface ReconcilerDeps {
  readonly client: KubeClient;
  readonly getSource: (namespace: string, name: string) => VmRegistrySource | undefined;
  /** Managed WorkloadEntries in a namespace (from the informer cache). */
  readonly listManaged: (namespace: string) => readonly WorkloadEntry[];
  /** Managed ServiceEntries in a namespace (from the informer cache); listed from the API when absent. */
  readonly listManagedServiceEntries?: (namespace: string) => readonly ServiceEntry[];
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
  /** Names applied by the last successful sync: a create of one of these is a hand deletion put back. */
  applied: Set<string>;
  lastDirectList: number;
  /** Mapping results for this uid/generation; a new spec starts a new memo. */
  memo?: { readonly specKey: string; readonly memo: MappingMemo };
  /** The desired state of the last snapshot: reconciles caused by our own writes reuse it. */
  mapped?: { readonly specKey: string; readonly snapshot: Snapshot; readonly desired: DesiredState; readonly entries: readonly DesiredEntry[] };
}

function specKeyOf(source: VmRegistrySource): string {
  return `${source.metadata.uid}/${source.metadata.generation}`;
}

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

  /** Interval ticks and spec changes ask the registry again. */
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
    const log = this.deps.log.with({ source: key });
    const generation = source.metadata.generation ?? 0;

    let spec;
    try {
      spec = this.deps.factories.api.validateSpec(source.spec);
    } catch (e) {
      const message = e instanceof ValidationError ? e.message : String(e);
      await this.writeStatus(source, { provider: undefined, conditions: [{ type: 'Synced', status: 'False', reason: 'InvalidSpec', message }] });
      this.deps.events.record(source, 'Warning', 'InvalidSpec', message);
      throw new TerminalError(`invalid spec: ${message}`);
    }
    const validated: VmRegistrySource = { ...source, spec };
    const provider = providerOf(spec);
    const intervalMs = parseDuration(spec.interval);

    if (spec.suspend) {
      await this.providers.close(key);
      await this.writeStatus(source, {
        provider,
        conditions: [{ type: 'Synced', status: 'False', reason: 'Suspended', message: 'spec.suspend is true: entries are kept as they are and not synced' }],
      });
      return {};
    }

    // 1. Snapshot.
    let snapshot;
    try {
      snapshot = await this.providers.snapshot(key, validated, signal);
    } catch (e) {
      const { reason, message } = describeProviderFailure(e);
      log.warn('registry read failed; entries kept', { reason, error: e });
      this.deps.events.record(source, 'Warning', reason, `${message}; existing WorkloadEntries are kept`);
      await this.writeStatus(source, {
        provider,
        conditions: [
          { type: 'ProviderReady', status: 'False', reason, message: `${message}; existing WorkloadEntries are kept` },
          { type: 'Synced', status: 'Unknown', reason: 'RegistryUnavailable', message: 'waiting for a complete answer from the registry' },
        ],
      });
      throw e;
    }

    // 2. Mapping: only endpoints the last mapping has not seen (see MappingMemo).
    const factory = await this.deps.factories.load(provider);
    let desired: DesiredState;
    let entries: readonly DesiredEntry[];
    try {
      ({ desired, entries } = this.mappingOf(key, validated, snapshot, () =>
        buildDesiredState({ sourceName: name, spec, endpoints: snapshot.endpoints, providerRules: factory?.defaultMapping(spec) ?? [], memo: this.memoFor(key, validated) }),
      ));
    } catch (e) {
      if (!isRelabelError(e)) throw e;
      const message = `relabel rules cannot be used: ${e.message}`;
      await this.writeStatus(source, { provider, conditions: [{ type: 'Synced', status: 'False', reason: 'InvalidRelabelRule', message }] });
      this.deps.events.record(source, 'Warning', 'InvalidRelabelRule', message);
      throw new TerminalError(message);
    }

    // 3. Plan against what the source owns (listed from the API now and then, in case a watch missed something).
    const owned = await this.ownedEntries(key, validated);
    const adoption = spec.adopt ? await this.adoptionCandidates(validated) : undefined;
    const thePlan = makePlan({ desired: entries, owned, policy: spec.policy, unknownScopes: snapshot.unknownScopes, guard: spec.deletionGuard, ...(adoption ? { adoption } : {}) });

    // 4. Apply.
    const result = await applyPlan(this.deps.client, validated, thePlan);
    this.countWrites(key, thePlan, result);
    this.recordEvents(validated, thePlan, result, desired);
    // 4b. ServiceEntries (spec.serviceEntries), from the same desired entries.
    const serviceEntries = await syncServiceEntries(
      { client: this.deps.client, events: this.deps.events, ...(this.deps.listManagedServiceEntries ? { listManaged: this.deps.listManagedServiceEntries } : {}) },
      { source: validated, provider, entries, ...(snapshot.services ? { knownServices: snapshot.services } : {}) },
    );
    const memory = this.memoryOf(key);
    if (result.errors.length === 0) memory.applied = new Set(entries.map((d) => d.name).filter((n) => !result.conflicts.some((c) => c.name === n)));

    // 5. Status.
    const managed = owned.length + result.created.length + result.adopted.filter((n) => entries.some((d) => d.name === n)).length - result.deleted.length;
    const providerReady: ConditionInput =
      snapshot.unknownScopes.length > 0
        ? {
            type: 'ProviderReady',
            status: 'False',
            reason: 'PartialSnapshot',
            message: `could not read ${snapshot.unknownScopes.join(', ')}: ${snapshot.warnings.join('; ') || 'no detail'}; entries there are kept`,
          }
        : { type: 'ProviderReady', status: 'True', reason: 'SnapshotReceived', message: `${snapshot.endpoints.length} endpoints read from ${provider}` };
    await this.writeStatus(source, {
      provider,
      conditions: [providerReady, withServiceEntries(syncedCondition(thePlan, result, entries.length, desired.skipped.length, spec.deletionGuard.maxDeletePercent), serviceEntries)],
      counts: {
        desiredEntries: entries.length,
        managedEntries: Math.max(0, managed),
        conflicts: result.conflicts.length,
        skipped: desired.skipped.length,
        heldBackDeletes: [...thePlan.heldBack.values()].reduce((a, b) => a + b, 0),
        // Sources that never generated ServiceEntries keep a status without these counts.
        ...(serviceEntries.counts ?? (serviceEntryCountsOf(source.status) ? NO_SERVICE_ENTRIES : {})),
      },
    });
    const metrics = this.deps.metrics;
    metrics.entries.set({ source: key, state: 'desired' }, entries.length);
    metrics.entries.set({ source: key, state: 'managed' }, Math.max(0, managed));
    metrics.entries.set({ source: key, state: 'conflicts' }, result.conflicts.length);
    metrics.entries.set({ source: key, state: 'skipped' }, desired.skipped.length);
    for (const reason of HOLD_REASONS) metrics.heldBackDeletes.set({ source: key, reason }, thePlan.heldBack.get(reason) ?? 0);

    if (result.errors.length > 0) {
      const first = result.errors[0];
      throw new Error(`${result.errors.length} WorkloadEntry writes failed; first: ${first?.name}: ${first?.error.message}`);
    }
    if (serviceEntries.errors.length > 0) {
      const first = serviceEntries.errors[0];
      throw new Error(`${serviceEntries.errors.length} ServiceEntry writes failed; first: ${first?.name}: ${first?.error.message}`);
    }
    metrics.lastSync.set({ source: key }, Date.now() / 1000);
    return { requeueAfterMs: jitter(intervalMs) };
  }

  private memoFor(key: string, source: VmRegistrySource): MappingMemo {
    const memory = this.memoryOf(key);
    const specKey = specKeyOf(source);
    if (memory.memo?.specKey !== specKey) memory.memo = { specKey, memo: new MappingMemo() };
    return memory.memo.memo;
  }

  /** The desired state of this snapshot and spec, built once. */
  private mappingOf(key: string, source: VmRegistrySource, snapshot: Snapshot, build: () => DesiredState): { desired: DesiredState; entries: readonly DesiredEntry[] } {
    const memory = this.memoryOf(key);
    const specKey = specKeyOf(source);
    const last = memory.mapped;
    if (last !== undefined && last.snapshot === snapshot && last.specKey === specKey) return last;
    const desired = build();
    const entries = source.spec.consul?.health.mode === 'status' ? desired.entries.map(withHealthChecks) : desired.entries;
    memory.mapped = { specKey, snapshot, desired, entries };
    return memory.mapped;
  }

  private memoryOf(key: string): SourceMemory {
    let m = this.memory.get(key);
    if (!m) {
      m = { applied: new Set(), lastDirectList: Date.now() };
      this.memory.set(key, m);
    }
    return m;
  }

  private async ownedEntries(key: string, source: VmRegistrySource): Promise<WorkloadEntry[]> {
    const memory = this.memoryOf(key);
    const period = this.deps.resyncPeriodMs ?? 10 * 60_000;
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
    const applied = this.memoryOf(key).applied;
    const recreated = result.created.filter((n) => applied.has(n)).length;
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
    if (result.conflicts.length > 0) {
      ev.record(source, 'Warning', 'Conflict', conflictMessage(result));
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

  private async writeStatus(
    source: VmRegistrySource,
    next: { provider: VmRegistrySourceStatus['provider']; conditions: ConditionInput[]; counts?: Partial<VmRegistrySourceStatus> },
  ): Promise<void> {
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

// One annotated copy per desired entry, so the copies live (and keep their applied hash) as long as the memo's entries.
const withChecks = new WeakMap<DesiredEntry, DesiredEntry>();

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

function withHealthChecks(d: DesiredEntry): DesiredEntry {
  let annotated = withChecks.get(d);
  if (annotated === undefined) {
    annotated = { ...d, annotations: { ...d.annotations, [HEALTH_CHECKS_ANNOTATION]: 'true' } };
    withChecks.set(d, annotated);
  }
  return annotated;
}

export function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

/** ±10% so that many sources with one interval spread out. */
function jitter(ms: number): number {
  return Math.round(ms * (0.9 + Math.random() * 0.2));
}
