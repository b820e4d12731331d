/**
 * The ServiceEntry half of a sync (spec.serviceEntries), run by the reconciler after the
 * WorkloadEntries: desired entries → one ServiceEntry per service → plan (the decision
 * layer with the ServiceEntry rules) → apply (the shared applier), and
 * what status and Events should say about it. Turning the section off deletes the
 * ServiceEntries the source generated (policy permitting).
 */
import type { ProviderName, VmRegistrySource } from '../api/types.ts';
import { applyChanges, type Applied } from '../apply/apply.ts';
import { afterApply, inventoryOf } from '../plan/inventory.ts';
import { SERVICE_ENTRY_KIND } from '../plan/kinds.ts';
import { planObjects, SERVICE_ENTRY_RULES, type ObjectPlan } from '../plan/object-plan.ts';
import { isOwnedBy, sourceSelector } from '../api/ownership.ts';
import type { ObjectWriter } from '../apply/writer.ts';
import { buildDesiredServiceEntries, SERVICE_ANNOTATION, serviceKeys, type DesiredServiceEntries, type DesiredServiceEntry } from '../mapping/service-entries.ts';
import { SERVICE_ENTRIES, type ServiceEntry } from '../api/istio.ts';
import type { DesiredEntry } from '../mapping/types.ts';
import type { ConditionInput } from './conditions.ts';
import type { EventRecorder } from './events.ts';
import { guardMessage } from './status-messages.ts';

export interface ServiceEntrySyncDeps {
  readonly client: ObjectWriter;
  readonly events: EventRecorder;
  /** Every ServiceEntry of a namespace from an informer cache; without one, they are listed. */
  readonly listAll?: (namespace: string) => readonly ServiceEntry[];
}

export interface ServiceEntrySyncInput {
  readonly source: VmRegistrySource;
  readonly provider: ProviderName;
  readonly entries: readonly DesiredEntry[];
  /** Services the registry lists even without a selected instance (a Consul service whose instances all fail). */
  readonly knownServices?: readonly string[];
}

export interface ServiceEntryCounts {
  desiredServiceEntries: number;
  managedServiceEntries: number;
  serviceEntryConflicts: number;
  unselectedEntries: number;
}

export interface ServiceEntrySyncOutcome {
  /** Undefined when the source has and wants no ServiceEntries (its status then has no such counts). */
  readonly counts: ServiceEntryCounts | undefined;
  /** Set when the ServiceEntries are not in sync: it replaces a Synced=True condition. */
  readonly notSynced?: ConditionInput;
  /** Appended to a Synced=True message. */
  readonly summary: string;
  readonly errors: Applied<ServiceEntry>['errors'];
}

const NONE: ServiceEntrySyncOutcome = {
  counts: undefined,
  summary: '',
  errors: [],
};

export async function syncServiceEntries(deps: ServiceEntrySyncDeps, input: ServiceEntrySyncInput): Promise<ServiceEntrySyncOutcome> {
  const { source } = input;
  const ns = source.metadata.namespace;
  const template = source.spec.serviceEntries;
  if (template === undefined) {
    // Off: only what the source generated before is looked at (from the cache when there is one).
    const cached = deps.listAll?.(ns);
    const owned = (cached ?? (await deps.client.list<ServiceEntry>(SERVICE_ENTRIES, ns, { labelSelector: sourceSelector(source.metadata.name) }))).filter((se) => isOwnedBy(se, source));
    if (owned.length === 0) return NONE;
    const plan = planObjects({ desired: [], owned, policy: source.spec.policy, guard: source.spec.deletionGuard, guarded: false }, SERVICE_ENTRY_RULES);
    const result = await applyChanges(deps.client, SERVICE_ENTRY_KIND, source, plan);
    record(deps.events, source, plan, result, undefined);
    const managed = afterApply(inventoryOf(owned), result).owned.size;
    const counts = { desiredServiceEntries: 0, managedServiceEntries: managed, serviceEntryConflicts: 0, unselectedEntries: 0 };
    return { ...NONE, counts, errors: result.errors };
  }

  const desired = buildDesiredServiceEntries({
    sourceName: source.metadata.name,
    namespace: ns,
    provider: input.provider,
    template,
    serviceLabel: source.spec.workloadEntry.serviceLabel,
    entries: input.entries,
  });
  // Every ServiceEntry of the namespace: ours to plan against, the others to check names
  // and hosts against. The cache serves; a create or a change of hosts is checked against
  // a fresh list, so a host the cache has not seen yet is never declared twice.
  const known = serviceKeys(input.knownServices);
  const planAgainst = (inNamespace: readonly ServiceEntry[]) => {
    const owned = inNamespace.filter((se) => isOwnedBy(se, source));
    const foreign = inNamespace.filter((se) => !isOwnedBy(se, source));
    const plan = planObjects<DesiredServiceEntry, ServiceEntry>(
      {
        desired: desired.serviceEntries,
        owned,
        foreign,
        policy: source.spec.policy,
        guard: source.spec.deletionGuard,
        keep: (se) => known?.has(se.metadata.annotations?.[SERVICE_ANNOTATION] ?? '') ?? false,
      },
      SERVICE_ENTRY_RULES,
    );
    return { owned, foreign, plan };
  };
  const cached = deps.listAll?.(ns);
  let planned = planAgainst(cached ?? (await deps.client.list<ServiceEntry>(SERVICE_ENTRIES, ns)));
  const declaresHosts = planned.plan.creates.length > 0 || planned.plan.updates.some((u) => u.fields.includes('spec.hosts'));
  if (cached !== undefined && declaresHosts) planned = planAgainst(await deps.client.list<ServiceEntry>(SERVICE_ENTRIES, ns));
  const { owned, foreign, plan } = planned;
  const result = await applyChanges(deps.client, SERVICE_ENTRY_KIND, source, plan);
  record(deps.events, source, plan, result, desired);
  const counts: ServiceEntryCounts = {
    desiredServiceEntries: desired.serviceEntries.length,
    managedServiceEntries: afterApply(inventoryOf(owned, foreign), result).owned.size,
    serviceEntryConflicts: plan.conflicts.length,
    unselectedEntries: desired.unselected.length,
  };
  return { counts, ...describe(source, plan, result, desired), errors: result.errors };
}

function describe(
  source: VmRegistrySource,
  plan: ObjectPlan<DesiredServiceEntry, ServiceEntry>,
  result: Applied<ServiceEntry>,
  desired: DesiredServiceEntries,
): Pick<ServiceEntrySyncOutcome, 'notSynced' | 'summary'> {
  const parts = [`${desired.serviceEntries.length} ServiceEntries match the services`];
  if (plan.kept.length > 0) parts.push(`${plan.kept.length} kept for services without a selected instance`);
  if (desired.unselected.length > 0) parts.push(`${desired.unselected.length} entries with a DNS-name address are not selected by the STATIC ServiceEntries`);
  if (desired.skipped.length > 0) parts.push(`${desired.skipped.length} services or ports left out (see Events)`);
  const summary = parts.join('; ');
  if (result.errors.length > 0) {
    const first = result.errors[0];
    return { summary, notSynced: { type: 'Synced', status: 'False', reason: 'ServiceEntryApplyFailed', message: `${result.errors.length} ServiceEntry writes failed; first: ${first?.name}: ${first?.error.message}` } };
  }
  if (plan.conflicts.length > 0) return { summary, notSynced: { type: 'Synced', status: 'False', reason: 'ServiceEntryConflict', message: conflictText(plan) } };
  const guard = plan.heldBack.get('DeletionGuard');
  if (guard) {
    return { summary, notSynced: { type: 'Synced', status: 'False', reason: 'DeletionGuard', message: `ServiceEntries: ${guardMessage(guard, source.spec.deletionGuard.maxDeletePercent)}` } };
  }
  return { summary };
}

function conflictText(plan: ObjectPlan<DesiredServiceEntry, ServiceEntry>): string {
  const list = plan.conflicts.slice(0, 5).map((c) => `${c.name}: ${c.reason}`).join('; ');
  return `${plan.conflicts.length} ServiceEntries not written because a ServiceEntry this source does not own holds the name or a host: ${list}. Delete or change that ServiceEntry (or the host templates)`;
}

function record(
  events: EventRecorder,
  source: VmRegistrySource,
  plan: ObjectPlan<DesiredServiceEntry, ServiceEntry>,
  result: Applied<ServiceEntry>,
  desired: DesiredServiceEntries | undefined,
): void {
  if (result.created.length + result.updated.length + result.deleted.length > 0) {
    events.record(source, 'Normal', 'ServiceEntriesSynced', `created ${result.created.length}, updated ${result.updated.length}, deleted ${result.deleted.length} ServiceEntries`);
  }
  if (plan.conflicts.length > 0) events.record(source, 'Warning', 'ServiceEntryConflict', conflictText(plan));
  const guard = plan.heldBack.get('DeletionGuard');
  if (guard) events.record(source, 'Warning', 'DeletionGuard', `ServiceEntries: ${guardMessage(guard, source.spec.deletionGuard.maxDeletePercent)}`);
  if (desired === undefined) return;
  if (desired.skipped.length > 0) {
    const sample = desired.skipped.slice(0, 5).map((s) => `${s.service}: ${s.reason}`).join('; ');
    events.record(source, 'Warning', 'ServiceEntrySkipped', `${desired.skipped.length} services or ports left out of ServiceEntries: ${sample}`);
  }
  if (desired.unselected.length > 0) {
    events.record(
      source,
      'Warning',
      'EntriesNotSelected',
      `${desired.unselected.length} WorkloadEntries have a DNS-name address, which a STATIC ServiceEntry does not select: ${desired.unselected.slice(0, 5).join(', ')}. Use IP addresses (e.g. addressType private-ipv4) for them to carry traffic`,
    );
  }
}
