/** TypeScript types of the VmRegistrySource API, inferred from schema.ts. */
import type { FromSchema, FromSchemaDefaulted } from './schema-types.ts';
import type {
  consulSpecSchema,
  ec2SpecSchema,
  gceSpecSchema,
  relabelRuleSchema,
  serviceEntryTemplateSchema,
  specSchema,
  statusSchema,
  workloadEntryTemplateSchema,
} from './schema.ts';

export const GROUP = 'vmregistry.io';
export const VERSION = 'v1alpha1';
export const KIND = 'VmRegistrySource';
export const PLURAL = 'vmregistrysources';
export const API_VERSION = `${GROUP}/${VERSION}`;
/** The VmRegistrySource resource (runtime ResourceType). */
export const SOURCES = { group: GROUP, version: VERSION, plural: PLURAL } as const;

/** A spec as written by a user (defaults optional). */
export type VmRegistrySourceSpecInput = FromSchema<typeof specSchema>;
/** A spec after defaulting (what the apiserver stores, or what applyDefaults returns). */
export type VmRegistrySourceSpec = FromSchemaDefaulted<typeof specSchema>;
export type ConsulSpec = FromSchemaDefaulted<typeof consulSpecSchema>;
export type Ec2Spec = FromSchemaDefaulted<typeof ec2SpecSchema>;
export type GceSpec = FromSchemaDefaulted<typeof gceSpecSchema>;
export type WorkloadEntryTemplate = FromSchemaDefaulted<typeof workloadEntryTemplateSchema>;
export type ServiceEntryTemplate = FromSchemaDefaulted<typeof serviceEntryTemplateSchema>;
export type RelabelRule = FromSchemaDefaulted<typeof relabelRuleSchema>;
export type RelabelRuleInput = FromSchema<typeof relabelRuleSchema>;
export type VmRegistrySourceStatus = FromSchema<typeof statusSchema>;
export type Condition = NonNullable<VmRegistrySourceStatus['conditions']>[number];
export type Policy = VmRegistrySourceSpec['policy'];
export type ProviderName = 'consul' | 'ec2' | 'gce';
export const PROVIDER_NAMES: readonly ProviderName[] = ['consul', 'ec2', 'gce'];

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  deletionTimestamp?: string;
}

export interface VmRegistrySource {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: VmRegistrySourceSpec;
  status?: VmRegistrySourceStatus;
}

/** Which provider a (validated) spec selects. */
export function providerOf(spec: Pick<VmRegistrySourceSpecInput, ProviderName>): ProviderName {
  const set = PROVIDER_NAMES.filter((p) => spec[p] !== undefined);
  if (set.length !== 1 || set[0] === undefined) {
    throw new Error(`exactly one provider must be set: consul, ec2 or gce (found ${set.length})`);
  }
  return set[0];
}
