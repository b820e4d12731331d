/**
 * Every provider this build ships, in the order of the CRD's spec fields. A new provider
 * is one folder (with its descriptor.ts) plus one entry in PROVIDERS; the CRD, the
 * exactly-one-provider rule, status.provider, validation and the status reasons follow
 * from it (docs/providers.md). A provider's module is imported only when a source first
 * names it (see registry.ts).
 */
import { sourceApi, type SourceApi } from '../api/source-api.ts';
import { consulDescriptor } from './consul/descriptor.ts';
import type { ProviderDescriptor, ProviderOptions } from './descriptor.ts';
import { ec2Descriptor } from './ec2/descriptor.ts';
import { gceDescriptor } from './gce/descriptor.ts';
import { lazyFactories, type ProviderFactories } from './registry.ts';

export const PROVIDERS: readonly ProviderDescriptor[] = [consulDescriptor, ec2Descriptor, gceDescriptor];

/** The API of this build: what the CRD in crds/ is generated from and what `vmreg preview` validates with. */
export const BUILTIN_API: SourceApi = sourceApi(PROVIDERS);

/** Kept under its old name for `vmreg run` callers. */
export type BuiltinProviderOptions = ProviderOptions;

export function builtinProviders(options: ProviderOptions = {}): ProviderFactories {
  return lazyFactories(PROVIDERS, options);
}
