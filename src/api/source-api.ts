/**
 * The VmRegistrySource API for a set of registered providers: the schema of spec and
 * status, validation, defaulting and the CRD, all derived from the providers' schemas.
 * The API layer knows no provider by name; the provider registry (src/providers) builds
 * this from its descriptors.
 */
import { buildCrd } from './crd.ts';
import { applyDefaults } from './defaults.ts';
import type { JsonSchema } from './schema-types.ts';
import { buildSpecSchema, buildStatusSchema, type ProviderSchema } from './schema.ts';
import type { ProviderName, VmRegistrySourceSpec, VmRegistrySourceSpecInput } from './types.ts';
import { validateSpec } from './validate.ts';

export interface SourceApi {
  /** Registered provider names, in registration order. */
  readonly providerNames: readonly ProviderName[];
  readonly specSchema: JsonSchema;
  readonly statusSchema: JsonSchema;
  /** Validates and defaults a spec; throws ValidationError. */
  validateSpec(input: unknown): VmRegistrySourceSpec;
  /** Fills in schema defaults the way the apiserver does. */
  applyDefaults(input: VmRegistrySourceSpecInput): VmRegistrySourceSpec;
  /** The CustomResourceDefinition object. */
  crd(): Record<string, unknown>;
}

/** A provider as the API sees it: its name is one of the program's ProviderNames. */
export interface RegisteredProviderSchema extends ProviderSchema {
  readonly name: ProviderName;
}

export function sourceApi(providers: readonly RegisteredProviderSchema[]): SourceApi {
  const specSchema = buildSpecSchema(providers);
  const statusSchema = buildStatusSchema(providers);
  const providerNames = providers.map((p) => p.name);
  return {
    providerNames,
    specSchema,
    statusSchema,
    validateSpec: (input) => validateSpec(input, { specSchema, providerNames }),
    applyDefaults: (input) => applyDefaults(input, specSchema),
    crd: () => buildCrd(specSchema, statusSchema),
  };
}
