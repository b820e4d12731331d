/** The Google Compute Engine provider: a polling provider (no watch) over the Compute API. */
import type { VmRegistrySourceSpec } from '../../api/types.ts';
import { originOf, originOfField, type CredentialDestination, type CredentialUse } from '../credential-use.ts';
import { ProviderError } from '../errors.ts';
import { secretKey, type ProviderContext, type ProviderFactory, type SecretKeyReference } from '../provider.ts';
import { clientKey, SharedClients } from '../shared-clients.ts';
import type { GceClient } from './client.ts';
import { createComputeClient } from './compute-client.ts';
import { gceDefaultMapping } from './mapping.ts';
import { GceProvider } from './provider.ts';
import { gceDescriptor } from './descriptor.ts';

export { GceProvider } from './provider.ts';
export type { GceClient } from './client.ts';

/** Timeout of one page request; a sync reads several pages. */
const REQUEST_TIMEOUT_MS = 30_000;

/** Compute clients of this process, shared per endpoint and credentials (projects and zones are per request). */
export const gceClients = new SharedClients<GceClient>((c) => void c.close().catch(() => undefined));

/** A handle on the shared client for these settings; its close() gives the client back. */
function sharedComputeClient(endpoint: string | undefined, credentialsJson: string | undefined): GceClient {
  const lease = gceClients.acquire(clientKey({ endpoint, requestTimeoutMs: REQUEST_TIMEOUT_MS }, [credentialsJson]), () =>
    createComputeClient({ endpoint, credentialsJson, requestTimeoutMs: REQUEST_TIMEOUT_MS }),
  );
  return {
    aggregatedListPage: (request, signal) => lease.client.aggregatedListPage(request, signal),
    listPage: (request, signal) => lease.client.listPage(request, signal),
    close: async () => lease.release(),
  };
}

function credentialsRef(spec: VmRegistrySourceSpec): SecretKeyReference | undefined {
  const ref = spec.gce?.credentialsSecretRef;
  return ref ? { name: ref.name, key: ref.key ?? 'key.json' } : undefined;
}

/** token_uri and universe_domain of a key JSON; nothing when it does not parse (create() reports that). */
function keyEndpoints(json: string | undefined): { tokenUri?: string; universe?: string } {
  if (json === undefined) return {};
  try {
    const v = JSON.parse(json) as Record<string, unknown>;
    return {
      ...(typeof v['token_uri'] === 'string' ? { tokenUri: v['token_uri'] } : {}),
      ...(typeof v['universe_domain'] === 'string' ? { universe: v['universe_domain'] } : {}),
    };
  } catch {
    return {};
  }
}

/**
 * The key signs a bearer token sent to the Compute endpoint (self-signed JWT). Its
 * token_uri is where an OAuth exchange with the key would go, so it must be consented to
 * as well. Without a Secret, Application Default Credentials are used, except against a
 * plain-http endpoint (a local server), where the client sends no credentials at all.
 */
function gceCredentialUse(spec: VmRegistrySourceSpec, secrets: ReadonlyMap<string, string>): CredentialUse {
  const ref = credentialsRef(spec);
  const key = keyEndpoints(ref ? secrets.get(secretKey(ref)) : undefined);
  const endpoint = spec.gce?.endpoint;
  const destinations: CredentialDestination[] = [
    endpoint !== undefined
      ? { entry: originOfField('gce', 'spec.gce.endpoint', endpoint), field: 'spec.gce.endpoint', override: true }
      : { entry: `https://compute.${(key.universe ?? 'googleapis.com').toLowerCase()}`, field: 'the default Compute endpoint', override: false },
  ];
  if (key.tokenUri !== undefined) {
    const origin = originOf(key.tokenUri);
    if (origin === undefined) throw new ProviderError('gce', 'BadConfig', 'the token_uri of the service-account key is not an http(s) URL');
    destinations.push({ entry: origin, field: 'token_uri of the service-account key', override: false });
  }
  const plainHttp = endpoint !== undefined && originOf(endpoint)?.startsWith('http:') === true;
  return { destinations, ambient: ref === undefined && !plainHttp };
}

export const gceProviderFactory: ProviderFactory = {
  descriptor: gceDescriptor,

  secretRefs(spec) {
    const ref = credentialsRef(spec);
    return ref ? [ref] : [];
  },

  create(ctx: ProviderContext) {
    const gce = ctx.spec.gce;
    if (!gce) throw new ProviderError('gce', 'BadConfig', `${ctx.source}: spec.gce is not set`);
    const ref = credentialsRef(ctx.spec);
    const credentialsJson = ref ? ctx.secrets.get(secretKey(ref)) : undefined;
    if (ref && credentialsJson === undefined) {
      throw new ProviderError('gce', 'BadConfig', `${ctx.source}: Secret key ${secretKey(ref)} (spec.gce.credentialsSecretRef) was not resolved`);
    }
    return new GceProvider({
      project: gce.project,
      zones: gce.zones ?? [],
      filter: gce.filter,
      labels: {
        project: gce.project,
        addressType: gce.addressType ?? 'internal',
        networkInterface: gce.networkInterface ?? 'nic0',
        portsMetadataKey: gce.portsMetadataKey,
      },
      metrics: ctx.metrics,
      client: () => sharedComputeClient(gce.endpoint, credentialsJson),
    });
  },

  credentialUse: gceCredentialUse,

  defaultMapping: gceDefaultMapping,
};
