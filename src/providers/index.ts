/**
 * Every provider this build ships. A new provider is one folder plus one line here.
 * Each module is imported only when a source first names its provider (see registry.ts).
 */
import type { HubOptions } from './consul/hub.ts';
import { lazyFactories, type ProviderFactories } from './registry.ts';

export interface BuiltinProviderOptions {
  /** Connection cap and liveness bound shared by every Consul source (vmreg run flags). */
  readonly consul?: Partial<HubOptions>;
}

export function builtinProviders(options: BuiltinProviderOptions = {}): ProviderFactories {
  return lazyFactories({
    consul: async () => (await import('./consul/index.ts')).createConsulProviderFactory(options.consul),
    ec2: async () => (await import('./ec2/index.ts')).ec2ProviderFactory,
    gce: async () => (await import('./gce/index.ts')).gceProviderFactory,
  });
}
