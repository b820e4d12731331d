/**
 * GceClient over Compute Engine's REST API, with google-auth-library for credentials.
 *
 * Why not @google-cloud/compute: its generated gax/protobuf stack costs about 95 MB of
 * heap and 190 MiB resident memory when loaded, for the two GET calls this provider
 * makes (instances.aggregatedList and instances.list, JSON over HTTPS). Calling them
 * directly keeps the whole provider at a few MB (docs/decisions.md).
 *
 * Endpoint: spec.gce.endpoint (scheme://host[:port]) or https://compute.<universe domain>.
 *
 * Credentials, in order:
 * 1. A service-account key JSON from the Secret. The client signs its own JWT with the
 *    key and sends it as the bearer token (Google's "self-signed JWT" for service
 *    accounts, what its client libraries prefer): no round trip to a token endpoint,
 *    and the key never leaves the process. The local test server verifies these
 *    JWTs with the key's public half, so tests run this very path.
 * 2. No Secret and a plain-http endpoint: no credentials at all.
 *    Plain http only makes sense for a local test server or emulator, and looking up
 *    Application Default Credentials there would only stall on the metadata server.
 * 3. Otherwise Application Default Credentials (workload identity, GOOGLE_APPLICATION_CREDENTIALS).
 *
 * Retries: none here. Each request has a timeout, and the reconcile loop retries the
 * whole sync with its own backoff, so an outage shows in status instead of hiding
 * inside one endless call. Errors carry `httpStatusCode` and the gRPC-style `code`
 * Google's libraries use, which errors.ts classifies.
 */
import { createPrivateKey } from 'node:crypto';
import { GoogleAuth, JWT } from 'google-auth-library';
import { ProviderError } from '../errors.ts';
import { linkSignals } from '../../runtime/linked-signal.ts';
import type { AggregatedPage, GceClient, GceInstance, GceWarning, ListRequest, ScopedInstances, ZonePage } from './client.ts';

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

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : null;
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function toWarning(v: unknown): GceWarning | undefined {
  const w = obj(v);
  if (!w) return undefined;
  return {
    code: str(w['code']),
    message: str(w['message']),
    data: arr(w['data']).map((d) => ({ key: str(obj(d)?.['key']), value: str(obj(d)?.['value']) })),
  };
}

/** The fields the provider reads, from the API's JSON (ids are uint64 sent as strings). */
export function toInstance(v: unknown): GceInstance {
  const p = obj(v) ?? {};
  const labels = obj(p['labels']);
  return {
    id: str(p['id']),
    name: str(p['name']),
    status: str(p['status']),
    zone: str(p['zone']),
    machineType: str(p['machineType']),
    networkInterfaces: arr(p['networkInterfaces']).map((x) => {
      const n = obj(x) ?? {};
      return {
        name: str(n['name']),
        network: str(n['network']),
        subnetwork: str(n['subnetwork']),
        networkIP: str(n['networkIP']),
        accessConfigs: arr(n['accessConfigs']).map((a) => ({ natIP: str(obj(a)?.['natIP']) })),
      };
    }),
    labels: labels ? Object.fromEntries(Object.entries(labels).flatMap(([k, val]) => (typeof val === 'string' ? [[k, val]] : []))) : null,
    metadata: { items: arr(obj(p['metadata'])?.['items']).map((i) => ({ key: str(obj(i)?.['key']), value: str(obj(i)?.['value']) })) },
    tags: { items: arr(obj(p['tags'])?.['items']).flatMap((t) => (typeof t === 'string' ? [t] : [])) },
    serviceAccounts: arr(p['serviceAccounts']).map((a) => ({ email: str(obj(a)?.['email']) })),
  };
}

// gRPC codes Google's libraries put on errors; errors.ts classifies by them and by HTTP status.
const GRPC_BY_HTTP: Readonly<Record<number, number>> = { 400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 412: 9, 429: 8, 499: 1, 500: 13, 501: 12, 503: 14, 504: 4 };

/** An error as errors.ts expects it: message, gRPC-style code, HTTP status. */
export class ComputeHttpError extends Error {
  override readonly name = 'ComputeHttpError';
  readonly code: number;
  readonly httpStatusCode: number | undefined;
  constructor(message: string, code: number, httpStatusCode?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.httpStatusCode = httpStatusCode;
  }
}

/** Google's error body {error: {code, message, status}} → its message. */
function errorMessage(status: number, text: string): string {
  try {
    const m = str(obj(obj(JSON.parse(text))?.['error'])?.['message']);
    if (m) return m;
  } catch {
    // not JSON
  }
  return `HTTP ${status}`;
}

type HeaderSource = (url: string) => Promise<Headers | undefined>;

function authHeaders(key: ServiceAccountKey | undefined, endpoint: ParsedEndpoint | undefined): HeaderSource {
  if (key) {
    const jwt = new JWT({
      email: key.client_email,
      key: key.private_key,
      ...(key.private_key_id ? { keyId: key.private_key_id } : {}),
      scopes: [READONLY_SCOPE],
      ...(key.universe_domain ? { universeDomain: key.universe_domain } : {}),
    });
    jwt.useJWTAccessWithScope = true;
    return (url) => jwt.getRequestHeaders(url);
  }
  if (endpoint?.protocol === 'http') return async () => undefined;
  const adc = new GoogleAuth({ scopes: [READONLY_SCOPE] });
  return (url) => adc.getRequestHeaders(url);
}

function baseUrl(endpoint: ParsedEndpoint | undefined, universe: string | undefined): string {
  if (!endpoint) return `https://compute.${universe ?? 'googleapis.com'}`;
  const host = endpoint.apiEndpoint.includes(':') ? `[${endpoint.apiEndpoint}]` : endpoint.apiEndpoint;
  return `${endpoint.protocol}://${host}:${endpoint.port}`;
}

function query(r: ListRequest): string {
  const q = new URLSearchParams();
  if (r.filter) q.set('filter', r.filter);
  if (r.maxResults !== undefined) q.set('maxResults', String(r.maxResults));
  if (r.pageToken) q.set('pageToken', r.pageToken);
  const text = q.toString();
  return text ? `?${text}` : '';
}

export function createComputeClient(opts: ComputeClientOptions): GceClient {
  const endpoint = opts.endpoint ? parseEndpoint(opts.endpoint) : undefined;
  const key = opts.credentialsJson !== undefined ? parseServiceAccountKey(opts.credentialsJson) : undefined;
  const headers = authHeaders(key, endpoint);
  const base = baseUrl(endpoint, key?.universe_domain);

  async function get(path: string, signal: AbortSignal): Promise<Json> {
    const url = `${base}${path}`;
    let auth: Headers | undefined;
    try {
      auth = await headers(url);
    } catch (e) {
      throw new ComputeHttpError(`cannot get credentials: ${(e as Error).message}`, 16, undefined, { cause: e });
    }
    const timeout = AbortSignal.timeout(opts.requestTimeoutMs);
    // Linked until the answer is read (the body streams under the same signal), then unlinked from the caller's.
    const link = linkSignals([signal, timeout]);
    let res: Response;
    try {
      res = await fetch(url, { headers: { accept: 'application/json', ...(auth ? Object.fromEntries(auth) : {}) }, signal: link.signal });
    } catch (e) {
      link.release();
      if (timeout.aborted) throw new ComputeHttpError(`no answer within ${opts.requestTimeoutMs} ms`, 4, undefined, { cause: e });
      if (signal.aborted) throw new ComputeHttpError('cancelled', 1, undefined, { cause: e });
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new ComputeHttpError(`request failed: ${cause?.code ?? cause?.message ?? (e as Error).message}`, 14, undefined, { cause: e });
    }
    const text = await res.text().finally(() => link.release());
    if (!res.ok) throw new ComputeHttpError(errorMessage(res.status, text), GRPC_BY_HTTP[res.status] ?? (res.status >= 500 ? 14 : 9), res.status);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ProviderError('gce', 'BadResponse', `${path.split('?')[0]}: the answer is not JSON`);
    }
    const o = obj(body);
    if (!o) throw new ProviderError('gce', 'BadResponse', `${path.split('?')[0]}: the answer is not a JSON object`);
    return o;
  }

  const project = (p: string): string => `/compute/v1/projects/${encodeURIComponent(p)}`;

  return {
    async aggregatedListPage(request, signal): Promise<AggregatedPage> {
      const raw = await get(`${project(request.project)}/aggregated/instances${query(request)}`, signal);
      const items: Record<string, ScopedInstances> = {};
      for (const [scope, v] of Object.entries(obj(raw['items']) ?? {})) {
        const scoped = obj(v) ?? {};
        const warning = toWarning(scoped['warning']);
        items[scope] = { instances: arr(scoped['instances']).map(toInstance), ...(warning ? { warning } : {}) };
      }
      const next = str(raw['nextPageToken']);
      return {
        items,
        unreachables: arr(raw['unreachables']).flatMap((u) => (typeof u === 'string' ? [u] : [])),
        ...(next ? { nextPageToken: next } : {}),
      };
    },

    async listPage(request, signal): Promise<ZonePage> {
      const raw = await get(`${project(request.project)}/zones/${encodeURIComponent(request.zone)}/instances${query(request)}`, signal);
      const warning = toWarning(raw['warning']);
      const next = str(raw['nextPageToken']);
      return {
        items: arr(raw['items']).map(toInstance),
        ...(warning ? { warning } : {}),
        ...(next ? { nextPageToken: next } : {}),
      };
    },

    async close(): Promise<void> {
      // fetch's connections are pooled by the runtime; nothing to free.
    },
  };
}
