/**
 * The ServiceEntry half of a sync (spec.serviceEntries), run by the reconciler after the
 * WorkloadEntries: desired entries → one ServiceEntry per service → plan → apply, and
 * what status and Events should say about it. Turning the section off deletes the
 * ServiceEntries the source generated (policy permitting).
 */
import type { ProviderName, VmRegistrySource } from '../api/types.ts';
import { applyServiceEntryPlan, type ServiceEntryApplyResult } from '../reconcile/apply-service-entries.ts';
import { planObjects, type ObjectPlan } from '../reconcile/object-plan.ts';
import { isOwnedBy, sourceSelector } from '../reconcile/ownership.ts';
import { buildDesiredServiceEntries, SERVICE_ANNOTATION, serviceKeys, type DesiredServiceEntries, type DesiredServiceEntry } from '../reconcile/service-entries.ts';
import { SERVICE_ENTRIES, type ServiceEntry } from '../api/istio.ts';
import type { DesiredEntry } from '../reconcile/types.ts';
import type { ConditionInput } from './conditions.ts';
import type { EventRecorder } from './events.ts';
import type { KubeClient } from '../runtime/kube-client.ts';
import { guardMessage } from './status-messages.ts';

export interface ServiceEntrySyncDeps {
  readonly client: KubeClient;
  readonly events: EventRecorder;
  /** Managed ServiceEntries of a namespace from an informer cache; without one, they are listed. */
  readonly listManaged?: (namespace: string) => readonly ServiceEntry[];
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
  readonly errors: ServiceEntryApplyResult['errors'];
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
    const cached = deps.listManaged?.(ns);
    const owned = (cached ?? (await deps.client.list<ServiceEntry>(SERVICE_ENTRIES, ns, { labelSelector: sourceSelector(source.metadata.name) }))).filter((se) => isOwnedBy(se, source));
    if (owned.length === 0) return NONE;
    const plan = planObjects({ desired: [], owned, policy: source.spec.policy, guard: source.spec.deletionGuard, guarded: false });
    const result = await applyServiceEntryPlan(deps.client, source, plan, owned);
    record(deps.events, source, plan, result, undefined);
    const counts = { desiredServiceEntries: 0, managedServiceEntries: owned.length - result.deleted.length, serviceEntryConflicts: 0, unselectedEntries: 0 };
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
  // Every ServiceEntry of the namespace: ours to plan against, the others to check names and hosts against.
  const inNamespace = await deps.client.list<ServiceEntry>(SERVICE_ENTRIES, ns);
  const owned = inNamespace.filter((se) => isOwnedBy(se, source));
  const known = serviceKeys(input.knownServices);
  const plan = planObjects<DesiredServiceEntry['spec'], DesiredServiceEntry, ServiceEntry>({
    desired: desired.serviceEntries,
    owned,
    policy: source.spec.policy,
    guard: source.spec.deletionGuard,
    keep: (se) => known?.has(se.metadata.annotations?.[SERVICE_ANNOTATION] ?? '') ?? false,
  });
  const planned = new Set([...plan.creates.map((d) => d.name), ...plan.updates.map((u) => u.desired.name)]);
  const unchanged = desired.serviceEntries.filter((d) => !planned.has(d.name));
  const result = await applyServiceEntryPlan(deps.client, source, plan, inNamespace, unchanged);
  record(deps.events, source, plan, result, desired);
  const counts: ServiceEntryCounts = {
    desiredServiceEntries: desired.serviceEntries.length,
    managedServiceEntries: Math.max(0, owned.length + result.created.length - result.deleted.length),
    serviceEntryConflicts: result.conflicts.length,
    unselectedEntries: desired.unselected.length,
  };
  return { counts, ...describe(source, plan, result, desired), errors: result.errors };
}

function describe(
  source: VmRegistrySource,
  plan: ObjectPlan<DesiredServiceEntry, ServiceEntry>,
  result: ServiceEntryApplyResult,
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
  if (result.conflicts.length > 0) return { summary, notSynced: { type: 'Synced', status: 'False', reason: 'ServiceEntryConflict', message: conflictText(result) } };
  const guard = plan.heldBack.get('DeletionGuard');
  if (guard) {
    return { summary, notSynced: { type: 'Synced', status: 'False', reason: 'DeletionGuard', message: `ServiceEntries: ${guardMessage(guard, source.spec.deletionGuard.maxDeletePercent)}` } };
  }
  return { summary };
}

function conflictText(result: ServiceEntryApplyResult): string {
  const list = result.conflicts.slice(0, 5).map((c) => `${c.name}: ${c.reason}`).join('; ');
  return `${result.conflicts.length} ServiceEntries not written because a ServiceEntry this source does not own holds the name or a host: ${list}. Delete or change that ServiceEntry (or the host templates)`;
}

function record(
  events: EventRecorder,
  source: VmRegistrySource,
  plan: ObjectPlan<DesiredServiceEntry, ServiceEntry>,
  result: ServiceEntryApplyResult,
  desired: DesiredServiceEntries | undefined,
): void {
  if (result.created.length + result.updated.length + result.deleted.length > 0) {
    events.record(source, 'Normal', 'ServiceEntriesSynced', `created ${result.created.length}, updated ${result.updated.length}, deleted ${result.deleted.length} ServiceEntries`);
  }
  if (result.conflicts.length > 0) events.record(source, 'Warning', 'ServiceEntryConflict', conflictText(result));
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
