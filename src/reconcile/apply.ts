/**
 * The only writer of WorkloadEntries. Carries out a plan with server-side apply (our own
 * field manager), bounded concurrency, and a check before every create that the name is
 * not taken by an object this source does not own.
 */
import type { VmRegistrySource } from '../api/types.ts';
import { isNotFound, type KubeClient } from '../runtime/kube-client.ts';
import { mapLimit } from '../runtime/rate-limit.ts';
import { isAdoptable, isOwnedBy, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ownerReference, SOURCE_LABEL } from './ownership.ts';
import { APPLIED_HASH_ANNOTATION, appliedHash, type Plan } from './plan.ts';
import type { DesiredEntry } from './types.ts';
import { WE_API_VERSION, WORKLOAD_ENTRIES, type WorkloadEntry } from '../api/istio.ts';
import { slimWorkloadEntry } from './slim.ts';

export interface Conflict {
  readonly name: string;
  readonly reason: string;
}

export interface ApplyResult {
  readonly created: string[];
  readonly updated: string[];
  readonly deleted: string[];
  /** Unowned entries taken over by name. */
  readonly adopted: string[];
  /** Hand-written twins deleted (plan.replaces). */
  readonly replaced: string[];
  readonly conflicts: Conflict[];
  readonly errors: { readonly name: string; readonly error: Error }[];
  healthWrites: number;
}

/** Above this many creates in one sync, one LIST replaces a GET per create. */
export const LIST_INSTEAD_OF_GET = 20;

export interface ApplyOptions {
  readonly concurrency?: number;
  readonly now?: () => string;
}

/** The object we apply for a desired entry: our fields only. */
export function toAppliedObject(desired: DesiredEntry, source: VmRegistrySource): WorkloadEntry {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: {
      name: desired.name,
      namespace: source.metadata.namespace,
      labels: { ...desired.labels, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [SOURCE_LABEL]: source.metadata.name },
      annotations: { ...desired.annotations, [APPLIED_HASH_ANNOTATION]: appliedHash(desired) },
      ownerReferences: [ownerReference(source)],
    },
    spec: desired.spec,
  };
}

export async function applyPlan(client: KubeClient, source: VmRegistrySource, plan: Plan, options: ApplyOptions = {}): Promise<ApplyResult> {
  const ns = source.metadata.namespace;
  const limit = options.concurrency ?? 8;
  const now = options.now ?? (() => new Date().toISOString());
  const result: ApplyResult = { created: [], updated: [], deleted: [], adopted: [], replaced: [], conflicts: [], errors: [], healthWrites: 0 };
  const fail = (name: string, e: unknown): void => {
    result.errors.push({ name, error: e instanceof Error ? e : new Error(String(e)) });
  };

  // Before a create, the name must not be taken by an object this source does not own.
  // For a few creates a GET each is cheapest; for many (the first sync of a large
  // registry) one paged LIST of the namespace halves the requests.
  let existingByName: Map<string, WorkloadEntry> | undefined;
  if (plan.creates.length > LIST_INSTEAD_OF_GET) {
    const all = await client.list<WorkloadEntry>(WORKLOAD_ENTRIES, ns, { keep: slimWorkloadEntry });
    existingByName = new Map(all.map((e) => [e.metadata.name, e]));
  }
  const lookUp = async (name: string): Promise<WorkloadEntry | undefined> => {
    if (existingByName) return existingByName.get(name);
    try {
      return await client.get<WorkloadEntry>(WORKLOAD_ENTRIES, ns, name);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  };

  const healthOf = new Map<string, boolean>();
  await mapLimit(plan.creates, limit, async (desired) => {
    try {
      const existing = await lookUp(desired.name);
      if (existing && !isOwnedBy(existing, source)) {
        if (!(source.spec.adopt && isAdoptable(existing))) {
          result.conflicts.push({ name: desired.name, reason: describeForeign(existing) });
          return;
        }
        result.adopted.push(desired.name);
      }
      await client.apply(WORKLOAD_ENTRIES, toAppliedObject(desired, source));
      if (!existing) result.created.push(desired.name);
      if (desired.healthy !== undefined) healthOf.set(desired.name, desired.healthy);
    } catch (e) {
      fail(desired.name, e);
    }
  });

  await mapLimit(plan.updates, limit, async ({ desired }) => {
    try {
      await client.apply(WORKLOAD_ENTRIES, toAppliedObject(desired, source));
      result.updated.push(desired.name);
    } catch (e) {
      fail(desired.name, e);
    }
  });

  await mapLimit(plan.deletes, limit, async (entry) => {
    try {
      await client.delete(WORKLOAD_ENTRIES, ns, entry.metadata.name, entry.metadata.uid);
      result.deleted.push(entry.metadata.name);
    } catch (e) {
      if (isNotFound(e)) result.deleted.push(entry.metadata.name);
      else fail(entry.metadata.name, e);
    }
  });

  // Hand-written twins the planner chose to replace; the uid precondition spares a newer object of that name.
  await mapLimit(plan.replaces, limit, async ({ twin }) => {
    try {
      await client.delete(WORKLOAD_ENTRIES, ns, twin.metadata.name, twin.metadata.uid);
      result.replaced.push(twin.metadata.name);
    } catch (e) {
      if (!isNotFound(e)) fail(twin.metadata.name, e);
    }
  });

  for (const h of plan.healthUpdates) healthOf.set(h.name, h.healthy);
  await mapLimit([...healthOf], limit, async ([name, healthy]) => {
    try {
      await client.applyStatus(WORKLOAD_ENTRIES, healthStatus(ns, name, healthy, now()));
      result.healthWrites++;
    } catch (e) {
      fail(name, e);
    }
  });
  for (const list of [result.created, result.updated, result.deleted, result.adopted, result.replaced]) list.sort();
  result.conflicts.sort((a, b) => a.name.localeCompare(b.name));
  return result;
}

function describeForeign(entry: WorkloadEntry): string {
  const controller = entry.metadata.ownerReferences?.find((r) => r.controller);
  if (controller) return `owned by ${controller.kind} ${controller.name}`;
  const manager = entry.metadata.labels?.[MANAGED_BY_LABEL];
  if (manager) return `managed by ${manager}`;
  return 'not owned by this source (set spec.adopt to take it over)';
}

/** The status body that sets the Healthy condition istiod reads for entries with health checks enabled. */
function healthStatus(namespace: string, name: string, healthy: boolean, at: string) {
  return {
    apiVersion: WE_API_VERSION,
    kind: 'WorkloadEntry',
    metadata: { name, namespace },
    status: {
      conditions: [
        {
          type: 'Healthy',
          status: healthy ? 'True' : 'False',
          lastProbeTime: at,
          lastTransitionTime: at,
          reason: healthy ? 'HealthCheckPassing' : 'HealthCheckFailing',
          message: healthy ? 'the registry reports the instance healthy' : 'the registry reports the instance unhealthy',
        },
      ],
    },
  };
}
