/**
 * The kinds the operator generates, described once for the decision layer and the
 * applier: where they live in the API, the object we apply for a desired one (our
 * fields and ownership metadata only), and the planning rules.
 */
import { SE_API_VERSION, SERVICE_ENTRIES, WE_API_VERSION, WORKLOAD_ENTRIES, type ServiceEntry, type WorkloadEntry } from '../api/istio.ts';
import type { VmRegistrySource } from '../api/types.ts';
import type { ResourceType } from '../runtime/resource.ts';
import type { DesiredObject, KindRules } from './decide.ts';
import type { ManagedObject } from './inventory.ts';
import { objectHash, SERVICE_ENTRY_RULES } from './object-plan.ts';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, ownerReference, SOURCE_LABEL } from '../api/ownership.ts';
import { APPLIED_HASH_ANNOTATION, appliedHash, WORKLOAD_ENTRY_RULES } from './plan.ts';
import type { DesiredServiceEntry } from '../mapping/service-entries.ts';
import type { DesiredEntry } from '../mapping/types.ts';

export interface ManagedKind<D extends DesiredObject, C extends ManagedObject> {
  /** The kind's name, for messages. */
  readonly kind: string;
  readonly resource: ResourceType;
  readonly rules: KindRules<D, C>;
  /** The object applied for a desired one: our fields only, with the ownership labels and reference. */
  toApplied(desired: D, source: VmRegistrySource): C & { metadata: { namespace: string } };
}

function ownershipMetadata(desired: DesiredObject, source: VmRegistrySource, hash: string) {
  return {
    name: desired.name,
    namespace: source.metadata.namespace,
    labels: { ...desired.labels, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [SOURCE_LABEL]: source.metadata.name },
    annotations: { ...desired.annotations, [APPLIED_HASH_ANNOTATION]: hash },
    ownerReferences: [ownerReference(source)],
  };
}

/** The WorkloadEntry we apply for a desired entry. */
export function toAppliedObject(desired: DesiredEntry, source: VmRegistrySource): WorkloadEntry {
  return { apiVersion: WE_API_VERSION, kind: 'WorkloadEntry', metadata: ownershipMetadata(desired, source, appliedHash(desired)), spec: desired.spec };
}

/** The ServiceEntry we apply for a desired one. */
export function toAppliedServiceEntry(desired: DesiredServiceEntry, source: VmRegistrySource): ServiceEntry {
  return { apiVersion: SE_API_VERSION, kind: 'ServiceEntry', metadata: ownershipMetadata(desired, source, objectHash(desired)), spec: desired.spec };
}

export const WORKLOAD_ENTRY_KIND: ManagedKind<DesiredEntry, WorkloadEntry> = {
  kind: 'WorkloadEntry',
  resource: WORKLOAD_ENTRIES,
  rules: WORKLOAD_ENTRY_RULES,
  toApplied: toAppliedObject,
};

export const SERVICE_ENTRY_KIND: ManagedKind<DesiredServiceEntry, ServiceEntry> = {
  kind: 'ServiceEntry',
  resource: SERVICE_ENTRIES,
  rules: SERVICE_ENTRY_RULES,
  toApplied: toAppliedServiceEntry,
};
