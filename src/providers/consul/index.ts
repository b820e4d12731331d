/** The Consul provider's factory: what the controller registers under "consul". */
import type { VmRegistrySourceSpec } from '../../api/types.ts';
import { originOfField, type CredentialUse } from '../credential-use.ts';
import type { ProviderContext, ProviderFactory, SecretKeyReference } from '../provider.ts';
import { consulDescriptor } from './descriptor.ts';
import { ConsulHub, type HubOptions } from './hub.ts';
import { consulDefaultMapping, consulEntryAnnotations } from './mapping.ts';
import { ConsulProvider } from './provider.ts';

export interface ConsulProviderFactory extends ProviderFactory {
  /** The connections and feeds shared by every source this factory creates. */
  readonly hub: ConsulHub;
}

/**
 * A factory whose sources share one pool per Consul endpoint, with at most
 * `maxConnections` sockets to it (`--consul-max-connections-per-agent`) and a liveness
 * bound (`--consul-liveness-bound`).
 */
export function createConsulProviderFactory(options: Partial<HubOptions> = {}): ConsulProviderFactory {
  const hub = new ConsulHub(options);
  return {
    descriptor: consulDescriptor,
    hub,
    secretRefs(spec: VmRegistrySourceSpec): SecretKeyReference[] {
      const c = spec.consul;
      const refs: SecretKeyReference[] = [];
      if (c?.tokenSecretRef) refs.push({ name: c.tokenSecretRef.name, key: c.tokenSecretRef.key });
      // The CA bundle only verifies the agent and is never sent: it needs no consent.
      if (c?.tls?.caSecretRef) refs.push({ name: c.tls.caSecretRef.name, key: c.tls.caSecretRef.key, use: 'trust' });
      return refs;
    },
    credentialUse(spec: VmRegistrySourceSpec): CredentialUse {
      // The token travels in X-Consul-Token to the address; the operator has no Consul identity of its own.
      const address = spec.consul?.address;
      if (address === undefined) return { destinations: [], ambient: false };
      return { destinations: [{ entry: originOfField('consul', 'spec.consul.address', address), field: 'spec.consul.address', override: true }], ambient: false };
    },
    create(ctx: ProviderContext): ConsulProvider {
      return new ConsulProvider(ctx, hub);
    },
    defaultMapping(): ReturnType<ProviderFactory['defaultMapping']> {
      return consulDefaultMapping();
    },
    entryAnnotations: consulEntryAnnotations,
  };
}

/** The factory with the default limits (64 connections per agent, liveness bound 15 s). */
export const consulProviderFactory: ConsulProviderFactory = createConsulProviderFactory();

export { ConsulProvider } from './provider.ts';
export type { HubOptions } from './hub.ts';
