/**
 * GceClient on top of @google-cloud/compute's InstancesClient (REST transport).
 *
 * Endpoint: spec.gce.endpoint is split into apiEndpoint, port and protocol; the port
 * is always passed, because a "host:port" apiEndpoint alone is sent to 443.
 *
 * Credentials, in order:
 * 1. A service-account key JSON from the Secret. The client signs its own JWT with the
 *    key and sends it as the bearer token (Google's "self-signed JWT" for service
 *    accounts, what its client libraries prefer): no round trip to a token endpoint,
 *    and the key never leaves the process. The local test server verifies these
 *    JWTs with the key's public half, so tests run this very path.
 * 2. No Secret and a plain-http endpoint: no credentials at all (PassThroughClient).
 *    Plain http only makes sense for a local test server or emulator, and looking up
 *    Application Default Credentials there would only stall on the metadata server.
 * 3. Otherwise Application Default Credentials (workload identity, GOOGLE_APPLICATION_CREDENTIALS).
 *
 * Retries: the client's own policy retries UNAVAILABLE for up to 10 minutes, which
 * would hide an outage inside one endless call. It is switched off; each request has
 * a timeout, and the reconcile loop retries the whole sync with its own backoff.
 */
import { createPrivateKey } from 'node:crypto';
import { InstancesClient, type protos } from '@google-cloud/compute';
import { JWT, PassThroughClient } from 'google-auth-library';
import { ProviderError } from '../errors.ts';
import type { AggregatedPage, GceClient, GceInstance, GceWarning, ListRequest, ScopedInstances, ZonePage } from './client.ts';

type IInstance = protos.google.cloud.compute.v1.IInstance;
type IWarning = protos.google.cloud.compute.v1.IWarning;
type IInstanceAggregatedList = protos.google.cloud.compute.v1.IInstanceAggregatedList;

const READONLY_SCOPE = 'https://www.googleapis.com/auth/compute.readonly';

export interface ComputeClientOptions {
  /** spec.gce.endpoint, e.g. "https://compute-psc.p.example.internal" or "http://127.0.0.1:8085". */
  readonly endpoint?: string | undefined;
  /** The service-account key JSON from the Secret, if one is configured. */
  readonly credentialsJson?: string | undefined;
  /** Timeout of one request (one page). */
  readonly requestTimeoutMs: number;
}

export interface ParsedEndpoint {
  readonly apiEndpoint: string;
  readonly port: number;
  readonly protocol: 'http' | 'https';
}

export function parseEndpoint(endpoint: string): ParsedEndpoint {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch (e) {
    throw new ProviderError('gce', 'BadConfig', `spec.gce.endpoint ${JSON.stringify(endpoint)} is not a URL`, { cause: e });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ProviderError('gce', 'BadConfig', `spec.gce.endpoint must be http or https, got ${url.protocol}`);
  }
  // The client builds paths itself (/compute/v1/...): a base path cannot be honoured.
  if (url.pathname !== '/' || url.search !== '' || url.username !== '' || url.password !== '') {
    throw new ProviderError('gce', 'BadConfig', 'spec.gce.endpoint must be scheme://host[:port] without path, query or user info');
  }
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  const port = url.port === '' ? (protocol === 'http' ? 80 : 443) : Number(url.port);
  // URL keeps IPv6 hosts in brackets; the client wants the bare address.
  const apiEndpoint = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { apiEndpoint, port, protocol };
}

interface ServiceAccountKey {
  readonly client_email: string;
  readonly private_key: string;
  readonly private_key_id?: string;
  readonly universe_domain?: string;
}

/** Validates the key JSON up front: a broken key would otherwise fail later as a transport error. */
export function parseServiceAccountKey(json: string): ServiceAccountKey {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    // The parser's message may quote the input: never repeat it.
    throw new ProviderError('gce', 'BadConfig', 'the credentials Secret does not hold valid JSON (expected a service-account key file)');
  }
  const v = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  if (v['type'] !== undefined && v['type'] !== 'service_account') {
    throw new ProviderError('gce', 'BadConfig', `the credentials Secret holds a key of type ${JSON.stringify(v['type'])}; only service_account keys are supported`);
  }
  const email = v['client_email'];
  const key = v['private_key'];
  if (typeof email !== 'string' || email === '' || typeof key !== 'string' || key === '') {
    throw new ProviderError('gce', 'BadConfig', 'the service-account key JSON lacks client_email or private_key');
  }
  try {
    createPrivateKey(key);
  } catch {
    throw new ProviderError('gce', 'BadConfig', `the private_key of service account ${email} is not a valid PEM key`);
  }
  const keyId = v['private_key_id'];
  const universe = v['universe_domain'];
  return {
    client_email: email,
    private_key: key,
    ...(typeof keyId === 'string' ? { private_key_id: keyId } : {}),
    ...(typeof universe === 'string' ? { universe_domain: universe } : {}),
  };
}

function toWarning(w: IWarning | null | undefined): GceWarning | undefined {
  if (!w) return undefined;
  return {
    code: w.code ?? null,
    message: w.message ?? null,
    data: (w.data ?? []).map((d) => ({ key: d.key ?? null, value: d.value ?? null })),
  };
}

export function toInstance(p: IInstance): GceInstance {
  return {
    id: p.id === null || p.id === undefined ? null : String(p.id),
    name: p.name ?? null,
    status: p.status ?? null,
    zone: p.zone ?? null,
    machineType: p.machineType ?? null,
    networkInterfaces: (p.networkInterfaces ?? []).map((n) => ({
      name: n.name ?? null,
      network: n.network ?? null,
      subnetwork: n.subnetwork ?? null,
      networkIP: n.networkIP ?? null,
      accessConfigs: (n.accessConfigs ?? []).map((a) => ({ natIP: a.natIP ?? null })),
    })),
    labels: p.labels ?? null,
    metadata: { items: (p.metadata?.items ?? []).map((i) => ({ key: i.key ?? null, value: i.value ?? null })) },
    tags: { items: p.tags?.items ?? [] },
    serviceAccounts: (p.serviceAccounts ?? []).map((s) => ({ email: s.email ?? null })),
  };
}

type AggregatedCall = (
  request: protos.google.cloud.compute.v1.IAggregatedListInstancesRequest,
  options: object,
) => Promise<[unknown, unknown, IInstanceAggregatedList | undefined]>;

export function createComputeClient(opts: ComputeClientOptions): GceClient {
  const endpoint = opts.endpoint ? parseEndpoint(opts.endpoint) : undefined;
  const key = opts.credentialsJson !== undefined ? parseServiceAccountKey(opts.credentialsJson) : undefined;

  let authClient: JWT | PassThroughClient | undefined;
  if (key) {
    const jwt = new JWT({
      email: key.client_email,
      key: key.private_key,
      ...(key.private_key_id ? { keyId: key.private_key_id } : {}),
      scopes: [READONLY_SCOPE],
      ...(key.universe_domain ? { universeDomain: key.universe_domain } : {}),
    });
    jwt.useJWTAccessWithScope = true;
    authClient = jwt;
  } else if (endpoint?.protocol === 'http') {
    authClient = new PassThroughClient();
  }

  const client = new InstancesClient({
    ...(endpoint ?? {}),
    ...(authClient ? { authClient } : {}),
    ...(key?.universe_domain ? { universeDomain: key.universe_domain } : {}),
  });

  const callOptions = (signal: AbortSignal) => ({ autoPaginate: false, retry: null, timeout: opts.requestTimeoutMs, signal });
  const pageFields = (r: ListRequest) => ({
    project: r.project,
    ...(r.filter ? { filter: r.filter } : {}),
    ...(r.maxResults !== undefined ? { maxResults: r.maxResults } : {}),
    ...(r.pageToken ? { pageToken: r.pageToken } : {}),
  });

  return {
    async aggregatedListPage(request, signal): Promise<AggregatedPage> {
      // The public aggregatedListAsync() yields only the zone entries and drops the
      // response's `unreachables`, which decide whether a zone is known. The page call
      // underneath it (a public field of the client) returns the raw response.
      await client.initialize();
      const call = client.innerApiCalls['aggregatedList'] as AggregatedCall | undefined;
      if (typeof call !== 'function') {
        throw new ProviderError('gce', 'BadResponse', 'the installed @google-cloud/compute has no aggregatedList call');
      }
      const [, , raw] = await call(pageFields(request), callOptions(signal));
      const items: Record<string, ScopedInstances> = {};
      for (const [scope, scoped] of Object.entries(raw?.items ?? {})) {
        const warning = toWarning(scoped.warning);
        items[scope] = { instances: (scoped.instances ?? []).map(toInstance), ...(warning ? { warning } : {}) };
      }
      return {
        items,
        unreachables: raw?.unreachables ?? [],
        ...(raw?.nextPageToken ? { nextPageToken: raw.nextPageToken } : {}),
      };
    },

    async listPage(request, signal): Promise<ZonePage> {
      const [instances, , raw] = await client.list({ ...pageFields(request), zone: request.zone }, callOptions(signal));
      const warning = toWarning(raw?.warning);
      return {
        items: instances.map(toInstance),
        ...(warning ? { warning } : {}),
        ...(raw?.nextPageToken ? { nextPageToken: raw.nextPageToken } : {}),
      };
    },

    async close(): Promise<void> {
      await client.close();
    },
  };
}
