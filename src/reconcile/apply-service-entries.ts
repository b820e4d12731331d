/**
 * The only writer of ServiceEntries. Carries out an object plan with server-side apply,
 * after checking against every ServiceEntry of the namespace that neither the name nor
 * any host is held by a ServiceEntry this source does not own (those are conflicts:
 * reported, never touched).
 */
import type { VmRegistrySource } from '../api/types.ts';
import { isNotFound, type KubeClient } from '../runtime/kube-client.ts';
import { mapLimit } from '../runtime/rate-limit.ts';
import { type Conflict } from './apply.ts';
import type { ObjectPlan } from './object-plan.ts';
import { objectHash } from './object-plan.ts';
import { isOwnedBy, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ownerReference, SOURCE_LABEL } from './ownership.ts';
import { APPLIED_HASH_ANNOTATION } from './plan.ts';
import { type DesiredServiceEntry } from './service-entries.ts';
import { SE_API_VERSION, SERVICE_ENTRIES, type ServiceEntry } from '../api/istio.ts';

export type ServiceEntryPlan = ObjectPlan<DesiredServiceEntry, ServiceEntry>;

export interface ServiceEntryApplyResult {
  readonly created: string[];
  readonly updated: string[];
  readonly deleted: string[];
  readonly conflicts: Conflict[];
  readonly errors: { readonly name: string; readonly error: Error }[];
}

/** The object we apply for a desired ServiceEntry: our fields only. */
export function toAppliedServiceEntry(desired: DesiredServiceEntry, source: VmRegistrySource): ServiceEntry {
  return {
    apiVersion: SE_API_VERSION,
    kind: 'ServiceEntry',
    metadata: {
      name: desired.name,
      namespace: source.metadata.namespace,
      labels: { ...desired.labels, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [SOURCE_LABEL]: source.metadata.name },
      annotations: { ...desired.annotations, [APPLIED_HASH_ANNOTATION]: objectHash(desired) },
      ownerReferences: [ownerReference(source)],
    },
    spec: desired.spec,
  };
}

function describeForeign(se: ServiceEntry): string {
  const controller = se.metadata.ownerReferences?.find((r) => r.controller);
  if (controller) return `owned by ${controller.kind} ${controller.name}`;
  const manager = se.metadata.labels?.[MANAGED_BY_LABEL];
  return manager ? `managed by ${manager}` : 'not owned by this source';
}

/** Why a desired ServiceEntry may not be written, or undefined when it may. */
export function foreignClash(desired: DesiredServiceEntry, foreign: readonly ServiceEntry[]): string | undefined {
  for (const se of foreign) {
    if (se.metadata.name === desired.name) return `the name is taken by a ServiceEntry ${describeForeign(se)}`;
    const host = (se.spec?.hosts ?? []).find((h) => desired.spec.hosts.includes(h));
    if (host !== undefined) return `host ${host} is already declared by ServiceEntry ${se.metadata.name} (${describeForeign(se)})`;
  }
  return undefined;
}

/**
 * Applies the plan. `inNamespace` is every ServiceEntry of the source's namespace, read
 * just before: foreign ones block creates and updates that would clash with them, and
 * a clash with an unchanged ServiceEntry of ours (a foreign one added later) is
 * reported too, without touching either.
 */
export async function applyServiceEntryPlan(
  client: KubeClient,
  source: VmRegistrySource,
  plan: ServiceEntryPlan,
  inNamespace: readonly ServiceEntry[],
  unchanged: readonly DesiredServiceEntry[] = [],
  concurrency = 8,
): Promise<ServiceEntryApplyResult> {
  const ns = source.metadata.namespace;
  const foreign = inNamespace.filter((se) => !isOwnedBy(se, source));
  const result: ServiceEntryApplyResult = { created: [], updated: [], deleted: [], conflicts: [], errors: [] };
  const fail = (name: string, e: unknown): void => {
    result.errors.push({ name, error: e instanceof Error ? e : new Error(String(e)) });
  };
  const write = async (desired: DesiredServiceEntry, into: string[]): Promise<void> => {
    const clash = foreignClash(desired, foreign);
    if (clash !== undefined) {
      result.conflicts.push({ name: desired.name, reason: clash });
      return;
    }
    try {
      await client.apply(SERVICE_ENTRIES, toAppliedServiceEntry(desired, source));
      into.push(desired.name);
    } catch (e) {
      fail(desired.name, e);
    }
  };
  for (const desired of unchanged) {
    const clash = foreignClash(desired, foreign);
    if (clash !== undefined) result.conflicts.push({ name: desired.name, reason: clash });
  }
  await mapLimit(plan.creates, concurrency, (d) => write(d, result.created));
  await mapLimit(plan.updates, concurrency, (u) => write(u.desired, result.updated));
  await mapLimit(plan.deletes, concurrency, async (se) => {
    try {
      await client.delete(SERVICE_ENTRIES, ns, se.metadata.name, se.metadata.uid);
      result.deleted.push(se.metadata.name);
    } catch (e) {
      if (isNotFound(e)) result.deleted.push(se.metadata.name);
      else fail(se.metadata.name, e);
    }
  });
  for (const list of [result.created, result.updated, result.deleted]) list.sort();
  result.conflicts.sort((a, b) => a.name.localeCompare(b.name));
  return result;
}
