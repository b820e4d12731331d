/** TypeScript types of the VmRegistrySource API, inferred from schema.ts and the providers' schemas. */
import type { FromSchema, FromSchemaDefaulted } from './schema-types.ts';
import {
  commonSpecSchema,
  type relabelRuleSchema,
  type serviceEntryTemplateSchema,
  type statusSchema,
  type workloadEntryTemplateSchema,
} from './schema.ts';

export const GROUP = 'vmregistry.io';
export const VERSION = 'v1alpha1';
export const KIND = 'VmRegistrySource';
export const PLURAL = 'vmregistrysources';
export const API_VERSION = `${GROUP}/${VERSION}`;
/** The VmRegistrySource resource (runtime ResourceType). */
export const SOURCES = { group: GROUP, version: VERSION, plural: PLURAL } as const;

/**
 * The schema of each provider's spec block, by provider name. Empty here: the API knows
 * no provider. Each provider adds its own entry from its descriptor with a module
 * augmentation, so the types below list exactly the providers in the program:
 *
 *   declare module '../../api/types.ts' {
 *     interface ProviderSpecSchemas { consul: typeof consulSpecSchema }
 *   }
 *
 * At run time the same list comes from the registered descriptors (buildSpecSchema).
 */
export interface ProviderSpecSchemas {}

/** The name of a provider, which is also the name of its spec field. */
export type ProviderName = keyof ProviderSpecSchemas & string;

/** One provider's spec block after defaulting, e.g. ProviderSpec<'consul'>. */
export type ProviderSpec<N extends ProviderName> = FromSchemaDefaulted<ProviderSpecSchemas[N]>;
/** One provider's spec block as a user writes it. */
export type ProviderSpecInput<N extends ProviderName> = FromSchema<ProviderSpecSchemas[N]>;

type CommonSpecInput = FromSchema<typeof commonSpecSchema>;
type CommonSpec = FromSchemaDefaulted<typeof commonSpecSchema>;
type Prettify<T> = { [K in keyof T]: T[K] } & {};

/** A spec as written by a user (defaults optional). */
export type VmRegistrySourceSpecInput = Prettify<CommonSpecInput & { [N in ProviderName]?: ProviderSpecInput<N> }>;
/** A spec after defaulting (what the apiserver stores, or what applyDefaults returns). */
export type VmRegistrySourceSpec = Prettify<CommonSpec & { [N in ProviderName]?: ProviderSpec<N> }>;
export type WorkloadEntryTemplate = FromSchemaDefaulted<typeof workloadEntryTemplateSchema>;
export type ServiceEntryTemplate = FromSchemaDefaulted<typeof serviceEntryTemplateSchema>;
export type RelabelRule = FromSchemaDefaulted<typeof relabelRuleSchema>;
export type RelabelRuleInput = FromSchema<typeof relabelRuleSchema>;
export type VmRegistrySourceStatus = Prettify<Omit<FromSchema<typeof statusSchema>, 'provider'> & { provider?: ProviderName }>;
export type Condition = NonNullable<VmRegistrySourceStatus['conditions']>[number];
export type Policy = VmRegistrySourceSpec['policy'];

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

/** Spec fields that are not a provider block. */
const COMMON_FIELDS: ReadonlySet<string> = new Set(Object.keys(commonSpecSchema.properties));

/**
 * Which provider a validated spec selects: its one field that is not a common field.
 * Validation (against the registered providers) has made sure there is exactly one.
 */
export function providerOf(spec: VmRegistrySourceSpecInput): ProviderName {
  const set = Object.entries(spec).filter(([field, value]) => value !== undefined && !COMMON_FIELDS.has(field));
  const first = set[0];
  if (set.length !== 1 || first === undefined) {
    throw new Error(`exactly one provider must be set (found ${set.length}: ${set.map(([f]) => f).join(', ') || 'none'})`);
  }
  return first[0] as ProviderName;
}
