/**
 * The applier: the only writer of generated objects. It executes a plan made by the
 * decision layer (decide.ts) and records what happened; it decides nothing. Server-side
 * apply with our field manager, bounded concurrency, deletes with a uid precondition
 * (a newer object of the same name is never deleted).
 */
import { WE_API_VERSION, WORKLOAD_ENTRIES, type WorkloadEntry } from '../api/istio.ts';
import type { VmRegistrySource } from '../api/types.ts';
import { isNotFound } from '../runtime/kube-client.ts';
import { mapLimit } from '../runtime/concurrency.ts';
import type { Changes, DesiredObject } from '../plan/decide.ts';
import type { ManagedObject, Written } from '../plan/inventory.ts';
import { WORKLOAD_ENTRY_KIND, type ManagedKind } from '../plan/kinds.ts';
import type { Plan } from '../plan/plan.ts';
import type { ObjectWriter } from './writer.ts';

export { toAppliedObject } from '../plan/kinds.ts';
export type { Conflict } from '../plan/decide.ts';

export interface WriteError {
  readonly name: string;
  readonly error: Error;
}

/** What the applier did. */
export interface Applied<C> extends Written<C> {
  readonly created: string[];
  /** Unowned objects taken over by name. */
  readonly adopted: string[];
  readonly updated: string[];
  readonly deleted: string[];
  /** Hand-written twins deleted. */
  readonly replaced: string[];
  readonly errors: WriteError[];
}

export interface ApplyOptions {
  readonly concurrency?: number;
  readonly now?: () => string;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** Executes the writes of a plan for one kind: applies, then deletes. */
export async function applyChanges<D extends DesiredObject, C extends ManagedObject>(
  writer: ObjectWriter,
  kind: ManagedKind<D, C>,
  source: VmRegistrySource,
  changes: Changes<D, C>,
  options: ApplyOptions = {},
): Promise<Applied<C>> {
  const ns = source.metadata.namespace;
  const limit = options.concurrency ?? 8;
  const applied = new Map<string, C>();
  const result: Applied<C> = { applied, created: [], adopted: [], updated: [], deleted: [], replaced: [], errors: [] };
  const write = async (desired: D, into: string[]): Promise<void> => {
    try {
      const object = kind.toApplied(desired, source);
      await writer.apply(kind.resource, object);
      applied.set(desired.name, object);
      into.push(desired.name);
    } catch (e) {
      result.errors.push({ name: desired.name, error: asError(e) });
    }
  };
  const remove = async (object: C, into: string[], goneCounts: boolean): Promise<void> => {
    const { name, uid } = object.metadata;
    try {
      await writer.delete(kind.resource, ns, name, uid);
      into.push(name);
    } catch (e) {
      if (!isNotFound(e)) result.errors.push({ name, error: asError(e) });
      else if (goneCounts) into.push(name);
    }
  };
  await mapLimit(changes.creates, limit, (d) => write(d, result.created));
  await mapLimit(changes.adopts, limit, (d) => write(d, result.adopted));
  await mapLimit(changes.updates, limit, (u) => write(u.desired, result.updated));
  await mapLimit(changes.deletes, limit, (c) => remove(c, result.deleted, true));
  await mapLimit(changes.replaces, limit, (r) => remove(r.twin, result.replaced, false));
  for (const list of [result.created, result.adopted, result.updated, result.deleted, result.replaced]) list.sort();
  return result;
}

export interface ApplyResult extends Applied<WorkloadEntry> {
  /** Healthy conditions written. */
  healthWrites: number;
}

/**
 * Executes a WorkloadEntry plan: the objects, then the Healthy condition of entries
 * created or taken over with a registry verdict and of those the plan lists.
 */
export async function applyPlan(writer: ObjectWriter, source: VmRegistrySource, plan: Plan, options: ApplyOptions = {}): Promise<ApplyResult> {
  const written = await applyChanges(writer, WORKLOAD_ENTRY_KIND, source, plan, options);
  const now = options.now ?? (() => new Date().toISOString());
  const healthOf = new Map<string, boolean>();
  const placed = new Set([...written.created, ...written.adopted]);
  for (const d of [...plan.creates, ...plan.adopts]) if (placed.has(d.name) && d.healthy !== undefined) healthOf.set(d.name, d.healthy);
  for (const h of plan.healthUpdates) healthOf.set(h.name, h.healthy);
  const result: ApplyResult = { ...written, healthWrites: 0 };
  await mapLimit([...healthOf], options.concurrency ?? 8, async ([name, healthy]) => {
    try {
      await writer.applyStatus(WORKLOAD_ENTRIES, healthStatus(source.metadata.namespace, name, healthy, now()));
      result.healthWrites++;
    } catch (e) {
      result.errors.push({ name, error: asError(e) });
    }
  });
  return result;
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
