/**
 * The providers this build ships (PROVIDERS in index.ts), put to use: the API derived
 * from them and their factories, each module imported only when a source first names
 * its provider (see registry.ts).
 */
import { sourceApi, type SourceApi } from '../api/source-api.ts';
import type { ProviderOptions } from './descriptor.ts';
import { PROVIDERS } from './index.ts';
import { lazyFactories, type ProviderFactories } from './registry.ts';

/** The API of this build: what the CRD in crds/ is generated from and what `vmreg preview` validates with. */
export const BUILTIN_API: SourceApi = sourceApi(PROVIDERS);

export function builtinProviders(options: ProviderOptions = {}): ProviderFactories {
  return lazyFactories(PROVIDERS, options);
}
