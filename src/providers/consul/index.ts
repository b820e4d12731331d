/** The Consul provider's factory: what the controller registers under "consul". */
import type { VmRegistrySourceSpec } from '../../api/types.ts';
import type { ProviderContext, ProviderFactory, SecretKeyReference } from '../provider.ts';
import { consulDefaultMapping } from './mapping.ts';
import { ConsulProvider } from './provider.ts';

export const consulProviderFactory: ProviderFactory = {
  name: 'consul',
  secretRefs(spec: VmRegistrySourceSpec): SecretKeyReference[] {
    const c = spec.consul;
    const refs: SecretKeyReference[] = [];
    if (c?.tokenSecretRef) refs.push({ name: c.tokenSecretRef.name, key: c.tokenSecretRef.key });
    if (c?.tls?.caSecretRef) refs.push({ name: c.tls.caSecretRef.name, key: c.tls.caSecretRef.key });
    return refs;
  },
  create(ctx: ProviderContext): ConsulProvider {
    return new ConsulProvider(ctx);
  },
  defaultMapping(): ReturnType<ProviderFactory['defaultMapping']> {
    return consulDefaultMapping();
  },
};

export { ConsulProvider } from './provider.ts';
export type { WatchTuning } from './watcher.ts';
