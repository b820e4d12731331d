/**
 * What the informer caches keep of each object: only what the operator reads. A
 * WorkloadEntry as the apiserver sends it carries managedFields (one entry per writer,
 * often larger than the object itself), timestamps and whole status; at 20,000 entries
 * that is most of the operator's heap. The planner needs names, labels, our annotations,
 * owner references, the managed spec fields and the Healthy condition's status.
 */
import type { VmRegistrySource } from '../api/types.ts';
import type { WorkloadEntry, WorkloadEntrySpec } from '../api/istio.ts';
import { ValuePool } from '../runtime/value-pool.ts';
import { ENDPOINT_ANNOTATION } from '../api/ownership.ts';
import { APPLIED_HASH_ANNOTATION } from '../plan/plan.ts';

/** Values repeated across cached entries (owner references, label sets, label keys and values, ports) are kept once. */
const pool = new ValuePool();
/** Annotations whose value is one entry's own: pooled, they filled the pool and outlived their entries. */
const UNIQUE_ANNOTATIONS: ReadonlySet<string> = new Set([ENDPOINT_ANNOTATION, APPLIED_HASH_ANNOTATION]);

/** kubectl's copy of the whole object: never read by the operator and as large as the object. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

function withoutLastApplied(annotations: Record<string, string> | undefined): Record<string, string> | undefined {
  if (annotations === undefined || !(LAST_APPLIED in annotations)) return annotations;
  const { [LAST_APPLIED]: _dropped, ...rest } = annotations;
  return rest;
}

export function slimWorkloadEntry(e: WorkloadEntry): WorkloadEntry {
  const m = e.metadata;
  const annotations = withoutLastApplied(m.annotations);
  const healthy = e.status?.conditions?.find((c) => c.type === 'Healthy');
  return {
    apiVersion: pool.string(e.apiVersion),
    kind: pool.string(e.kind),
    metadata: {
      name: m.name,
      namespace: pool.string(m.namespace),
      ...(m.uid !== undefined ? { uid: m.uid } : {}),
      // The informer resumes its watch from the last object's resourceVersion.
      ...(m.resourceVersion !== undefined ? { resourceVersion: m.resourceVersion } : {}),
      ...(m.labels !== undefined ? { labels: pool.shared(pool.record(m.labels)) } : {}),
      ...(annotations !== undefined ? { annotations: pool.record(annotations, UNIQUE_ANNOTATIONS) } : {}),
      ...(m.ownerReferences !== undefined ? { ownerReferences: pool.shared(m.ownerReferences) } : {}),
      ...(m.deletionTimestamp !== undefined ? { deletionTimestamp: m.deletionTimestamp } : {}),
    },
    spec: slimSpec(e.spec),
    ...(healthy !== undefined ? { status: { conditions: [{ type: 'Healthy', status: healthy.status }] } } : {}),
  };
}

/** The spec as it came, with its repeated parts pooled (ports and labels are equal across many entries). */
function slimSpec(spec: WorkloadEntrySpec): WorkloadEntrySpec {
  if (spec === undefined || spec === null) return spec;
  const out: WorkloadEntrySpec = { ...spec };
  if (spec.labels !== undefined) out.labels = pool.shared(pool.record(spec.labels));
  if (spec.ports !== undefined) out.ports = pool.shared(spec.ports);
  if (spec.serviceAccount !== undefined) out.serviceAccount = pool.string(spec.serviceAccount);
  if (spec.network !== undefined) out.network = pool.string(spec.network);
  if (spec.locality !== undefined) out.locality = pool.string(spec.locality);
  return out;
}

/** Sources are few and their status is read back (conditions, counts); only the bulky metadata goes. */
export function slimSource(s: VmRegistrySource): VmRegistrySource {
  const { managedFields: _managed, annotations, ...metadata } = s.metadata as VmRegistrySource['metadata'] & { managedFields?: unknown; annotations?: Record<string, string> };
  const kept = withoutLastApplied(annotations);
  return { ...s, metadata: { ...metadata, ...(kept !== undefined ? { annotations: kept } : {}) } };
}

/** Any other cached object (generated ServiceEntries): the bulky metadata goes, the rest is read. */
export function slimObject<T extends { metadata: object }>(o: T): T {
  const { managedFields: _managed, annotations, ...metadata } = o.metadata as T['metadata'] & { managedFields?: unknown; annotations?: Record<string, string> };
  const kept = withoutLastApplied(annotations);
  return { ...o, metadata: { ...metadata, ...(kept !== undefined ? { annotations: kept } : {}) } };
}
