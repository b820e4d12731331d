/**
 * Every provider this build ships. A new provider is one folder plus one line here.
 * Each module is imported only when a source first names its provider (see registry.ts).
 */
import { lazyFactories, type ProviderFactories } from './registry.ts';

export function builtinProviders(): ProviderFactories {
  return lazyFactories({
    consul: async () => (await import('./consul/index.ts')).consulProviderFactory,
    ec2: async () => (await import('./ec2/index.ts')).ec2ProviderFactory,
    gce: async () => (await import('./gce/index.ts')).gceProviderFactory,
  });
}
