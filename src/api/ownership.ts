/**
 * Ownership: which objects (WorkloadEntries, ServiceEntries) a source owns, and the metadata that marks them.
 * Anything without our labels and a controller ownerReference to the source's uid is
 * foreign and is never updated or deleted.
 */
import { API_VERSION, KIND, type VmRegistrySource } from './types.ts';
import type { OwnerReference, WorkloadEntry } from './istio.ts';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'vm-registry-operator';
export const SOURCE_LABEL = 'vmregistry.io/source';
export const ENDPOINT_ANNOTATION = 'vmregistry.io/endpoint';
export const SCOPE_ANNOTATION = 'vmregistry.io/scope';
export const FIELD_MANAGER = 'vm-registry-operator';

/** Label selector of every WorkloadEntry this operator manages. */
export const MANAGED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;

/** Label selector of the WorkloadEntries no one marks as managed (adoption candidates). */
export const UNMANAGED_SELECTOR = `!${MANAGED_BY_LABEL}`;

export function sourceSelector(sourceName: string): string {
  return `${MANAGED_SELECTOR},${SOURCE_LABEL}=${sourceName}`;
}

export function ownerReference(source: VmRegistrySource): OwnerReference {
  if (!source.metadata.uid) throw new Error(`source ${source.metadata.namespace}/${source.metadata.name} has no uid`);
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: source.metadata.name,
    uid: source.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** True when the object (WorkloadEntry or ServiceEntry) carries our labels and a controller reference to this source. */
export function isOwnedBy(entry: { metadata: Pick<WorkloadEntry['metadata'], 'labels' | 'ownerReferences'> }, source: VmRegistrySource): boolean {
  const labels = entry.metadata.labels ?? {};
  if (labels[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE || labels[SOURCE_LABEL] !== source.metadata.name) return false;
  return (entry.metadata.ownerReferences ?? []).some((r) => r.controller === true && r.uid === source.metadata.uid);
}

/** True when no controller owns the entry and it is not marked as managed by anyone. */
export function isAdoptable(entry: WorkloadEntry): boolean {
  const controlled = (entry.metadata.ownerReferences ?? []).some((r) => r.controller === true);
  return !controlled && entry.metadata.labels?.[MANAGED_BY_LABEL] === undefined;
}

/** Who holds an object this source does not own, for conflict messages. */
export function describeForeign(object: { metadata: Pick<WorkloadEntry['metadata'], 'labels' | 'ownerReferences'> }, unownedText = 'not owned by this source'): string {
  const controller = object.metadata.ownerReferences?.find((r) => r.controller);
  if (controller) return `owned by ${controller.kind} ${controller.name}`;
  const manager = object.metadata.labels?.[MANAGED_BY_LABEL];
  if (manager) return `managed by ${manager}`;
  return unownedText;
}
