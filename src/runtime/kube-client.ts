/**
 * The one door to the Kubernetes API: informers' lists and watches, leases, objects,
 * Secrets and Events all go through it, over one connection pool (api-channel.ts) with
 * the credentials of client-node's KubeConfig. Every call is rate-limited and counted in
 * rest_client_requests_total (so tests and the benchmark can count writes), and API
 * errors become KubeApiError with the Status reason parsed out of the body. Every write
 * passes the WriteFence: when leadership is not confirmed no write starts, and closing
 * the fence aborts the writes in flight.
 */
import type { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import type { CoreV1Event } from '@kubernetes/client-node';
import { isNotFound, KubeApiError, RequestAbortedError, toKubeError } from './api-error.ts';
import { ApiChannel, type Channel } from './api-channel.ts';
import { sendApiRequest, type ApiMethod } from './api-request.ts';
import { streamWatch, type WatchEvent, type WatchOptions } from './api-watch.ts';
import { withLinkedSignal } from './linked-signal.ts';
import { TokenBucket } from './rate-limit.ts';
import { FencedError, WriteFence } from './write-fence.ts';
import { LEASE_API, type Lease } from './lease.ts';
import { resourcePath, type ListOptions, type ListPage, type NamedObject, type ResourceType } from './resource.ts';

export { isConflict, isNotFound, KubeApiError, RequestAbortedError } from './api-error.ts';

const APPLY_PATCH = 'application/apply-patch+yaml';
const MERGE_PATCH = 'application/merge-patch+json';
const JSON_BODY = 'application/json';

const WRITE_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** One request, given the channel (pool and credentials) and the signal that bounds it. */
type Send = (channel: Channel, signal: AbortSignal) => Promise<unknown>;

interface CallOptions {
  /** Bounds the call (lease calls: the renew deadline; watches: the informer's stop). */
  readonly signal?: AbortSignal;
  /** Lease writes skip the fence: they are how leadership is confirmed. */
  readonly unfenced?: boolean;
}

export interface SecretContent {
  readonly annotations: Readonly<Record<string, string>>;
  readonly data: ReadonlyMap<string, string>;
}
/** The default client-side limit (kept from before the flags existed; see `vmreg run --help`). */
export const DEFAULT_KUBE_API_QPS = 50;
export const DEFAULT_KUBE_API_BURST = 100;

export interface KubeClientOptions {
  /** Client-side rate limit, like client-go's QPS and burst. */
  readonly qps?: number;
  readonly burst?: number;
}

/** Where each request is counted (rest_client_requests_total). */
export interface RequestMetrics {
  restRequest(method: string, code: string, host: string): void;
}

export class KubeClient {
  private readonly metrics: RequestMetrics;
  /** The field manager of every apply and status write. */
  readonly fieldManager: string;
  private readonly bucket: TokenBucket;
  /** Writes pass it; the leader elector opens and closes it. Open by default (no leader election). */
  readonly fence: WriteFence;
  private readonly writesInFlight = new Set<Promise<unknown>>();
  /** The one connection pool and the credentials of every request. */
  readonly channel: ApiChannel;

  constructor(kc: KubeConfig, fieldManager: string, metrics: RequestMetrics, options: KubeClientOptions = {}, fence = new WriteFence(true)) {
    this.fieldManager = fieldManager;
    this.fence = fence;
    this.metrics = metrics;
    this.bucket = new TokenBucket(options.qps ?? DEFAULT_KUBE_API_QPS, options.burst ?? DEFAULT_KUBE_API_BURST);
    this.channel = new ApiChannel(kc);
  }

  /**
   * One request. Writes pass the fence and carry its signal, so closing the fence
   * aborts them; reads carry it too (a replica that lost the lease has nothing left to
   * read for). `o.signal` bounds a call instead (lease calls: the renew deadline).
   */
  private call<T>(method: string, operation: string, fn: Send, o: CallOptions = {}): Promise<T> {
    const fenced = WRITE_METHODS.has(method) && !o.unfenced;
    if (!fenced) return this.send(method, operation, fn, o.signal ?? this.fence.signal, false);
    const write = this.send<T>(method, operation, fn, this.fence.signal, true);
    this.writesInFlight.add(write);
    const forget = (): void => void this.writesInFlight.delete(write);
    write.then(forget, forget);
    return write;
  }

  private async send<T>(method: string, operation: string, fn: Send, signal: AbortSignal, fenced: boolean): Promise<T> {
    try {
      await this.bucket.take(signal);
    } catch (e) {
      throw this.aborted(operation, signal, fenced, e);
    }
    if (fenced) this.fence.check(operation);
    try {
      const result = (await fn(await this.channel.get(), signal)) as T;
      this.metrics.restRequest(method, '200', this.channel.host);
      return result;
    } catch (e) {
      const err = signal.aborted ? this.aborted(operation, signal, fenced, e) : toKubeError(operation, e);
      if (err instanceof KubeApiError && err.code === 401) this.channel.invalidate();
      this.metrics.restRequest(method, err instanceof KubeApiError && err.code > 0 ? String(err.code) : '<error>', this.channel.host);
      throw err;
    }
  }

  /** A request whose answer is wanted (parsed JSON). */
  private request<T>(method: ApiMethod, operation: string, path: string, body?: { readonly json: unknown; readonly contentType: string }, o: CallOptions = {}): Promise<T> {
    return this.call<T>(method, operation, (channel, signal) => sendApiRequest(channel, { method, path, operation, ...encoded(body) }, signal, true), o);
  }

  /** A write whose answer is not needed (the informers see the result). */
  private async write(method: ApiMethod, operation: string, path: string, body: { readonly json: unknown; readonly contentType: string }): Promise<void> {
    await this.call(method, operation, (channel, signal) => sendApiRequest(channel, { method, path, operation, ...encoded(body) }, signal, false));
  }

  private aborted(operation: string, signal: AbortSignal, fenced: boolean, cause: unknown): Error {
    if (fenced) {
      this.fence.refused();
      return new FencedError(operation, this.fence.reason, { cause });
    }
    const reason = signal.reason as unknown;
    return new RequestAbortedError(operation, reason instanceof Error ? reason.message : String(reason ?? 'aborted'), { cause });
  }

  /** Resolves once no write is in flight (with the fence closed, none can start). */
  async writesSettled(): Promise<void> {
    while (this.writesInFlight.size > 0) await Promise.allSettled([...this.writesInFlight]);
  }

  /** Ends every connection; call after stopping the watches and settling the writes. */
  close(): Promise<void> {
    return this.channel.close();
  }

  // --- Leases (not fenced: they are how leadership is confirmed; bounded by the caller's deadline) ---

  /** The Lease, or undefined when there is none. */
  async getLease(namespace: string, name: string, signal: AbortSignal): Promise<Lease | undefined> {
    try {
      return await this.request<Lease>('GET', `get lease ${namespace}/${name}`, objectPath(LEASE_API, namespace, name), undefined, { signal });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  createLease(lease: Lease, signal: AbortSignal): Promise<Lease> {
    const { namespace, name } = lease.metadata;
    return this.request('POST', `create lease ${namespace}/${name}`, resourcePath(LEASE_API, namespace), { json: lease, contentType: JSON_BODY }, { signal, unfenced: true });
  }

  /** Replaces the Lease; its metadata.resourceVersion makes a concurrent change a 409. */
  replaceLease(lease: Lease, signal: AbortSignal): Promise<Lease> {
    const { namespace, name } = lease.metadata;
    return this.request('PUT', `replace lease ${namespace}/${name}`, objectPath(LEASE_API, namespace, name), { json: lease, contentType: JSON_BODY }, { signal, unfenced: true });
  }

  // --- Objects of any resource type (custom resources: sources and the Istio objects) ---

  /** One object; KubeApiError 404 when there is none. */
  get<T>(type: ResourceType, namespace: string, name: string): Promise<T> {
    return this.request('GET', `get ${type.plural} ${namespace}/${name}`, objectPath(type, namespace, name));
  }

  /** One page of a list, in one namespace or (namespace undefined) the whole cluster. */
  listPage<T>(type: ResourceType, namespace: string | undefined, options: ListOptions = {}): Promise<ListPage<T>> {
    const query = new URLSearchParams();
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    if (options.labelSelector) query.set('labelSelector', options.labelSelector);
    if (options.continue) query.set('continue', options.continue);
    const where = namespace === undefined ? 'all namespaces' : namespace;
    return this.request('GET', `list ${type.plural} in ${where}`, withQuery(resourcePath(type, namespace), query));
  }

  /**
   * Every object of a list, read in pages of 500 from one consistent snapshot (its
   * resourceVersion starts a watch); `keep` reduces each item as its page arrives, so a
   * namespace of 20,000 objects (tens of MB of JSON) is never held whole.
   */
  listAll<T>(type: ResourceType, namespace: string | undefined, options: { labelSelector?: string; keep?: (item: T) => T } = {}): Promise<ListPage<T>> {
    const { labelSelector, keep = (item: T) => item } = options;
    return listInPages((limit, cont) => this.listPage<T>(type, namespace, { limit, ...(labelSelector ? { labelSelector } : {}), ...(cont ? { continue: cont } : {}) }), keep);
  }

  /** The items of listAll. */
  async list<T>(type: ResourceType, namespace: string | undefined, options: { labelSelector?: string; keep?: (item: T) => T } = {}): Promise<T[]> {
    return (await this.listAll(type, namespace, options)).items;
  }

  /**
   * Watches a collection from a resourceVersion until the server ends the watch, the
   * stream stays quiet for `options.idleMs`, or `signal` aborts (or the fence closes);
   * every event goes to `onEvent`. Rejects with the apiserver's Status (410 Gone: relist).
   */
  watch(type: ResourceType, namespace: string | undefined, options: WatchOptions, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    const where = namespace === undefined ? 'all namespaces' : namespace;
    return withLinkedSignal([signal, this.fence.signal], (linked) =>
      this.call('GET', `watch ${type.plural} in ${where}`, (channel, s) => streamWatch(channel, resourcePath(type, namespace), options, onEvent, s), { signal: linked }),
    );
  }

  /** Server-side apply of the fields this client manages, taking them over from anyone who changed them. */
  async apply<T extends NamedObject>(type: ResourceType, object: T): Promise<void> {
    const { namespace = '', name } = object.metadata;
    await this.write('PATCH', `apply ${type.plural} ${namespace}/${name}`, `${objectPath(type, namespace, name)}?${this.applyQuery}`, { json: object, contentType: APPLY_PATCH });
  }

  /** Server-side apply of the status subresource (the body holds apiVersion, kind, metadata and status). */
  async applyStatus<T extends NamedObject>(type: ResourceType, object: T): Promise<void> {
    const { namespace = '', name } = object.metadata;
    await this.write('PATCH', `apply ${type.plural} status ${namespace}/${name}`, `${objectPath(type, namespace, name)}/status?${this.applyQuery}`, { json: object, contentType: APPLY_PATCH });
  }

  /** A JSON merge patch of the status subresource (a status computed in full each time). */
  mergeStatus<T>(type: ResourceType, namespace: string, name: string, status: unknown): Promise<T> {
    const path = `${objectPath(type, namespace, name)}/status?fieldManager=${encodeURIComponent(this.fieldManager)}`;
    return this.request('PATCH', `patch ${type.plural} status ${namespace}/${name}`, path, { json: { status }, contentType: MERGE_PATCH });
  }

  /** Deletes only the object with this uid (a precondition), never a newer one of the same name. */
  async delete(type: ResourceType, namespace: string, name: string, uid: string | undefined): Promise<void> {
    const options = { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background', ...(uid ? { preconditions: { uid } } : {}) };
    await this.write('DELETE', `delete ${type.plural} ${namespace}/${name}`, objectPath(type, namespace, name), { json: options, contentType: JSON_BODY });
  }

  private get applyQuery(): string {
    return `fieldManager=${encodeURIComponent(this.fieldManager)}&force=true`;
  }

  // --- Secrets ----------------------------------------------------------------------

  /** One GET: the Secret's annotations (consent) and its decoded values. */
  async getSecret(namespace: string, name: string): Promise<SecretContent> {
    const secret = await this.request<{ metadata?: { annotations?: Record<string, string> }; data?: Record<string, string> }>('GET', `get secret ${namespace}/${name}`, corePath('secrets', namespace, name));
    const data = new Map(Object.entries(secret.data ?? {}).map(([k, b64]) => [k, Buffer.from(b64, 'base64').toString('utf8')]));
    return { annotations: secret.metadata?.annotations ?? {}, data };
  }

  // --- Events -------------------------------------------------------------------------

  async createEvent(namespace: string, event: CoreV1Event): Promise<void> {
    await this.write('POST', 'create event', corePath('events', namespace), { json: event, contentType: JSON_BODY });
  }

  readEvent(namespace: string, name: string): Promise<CoreV1Event> {
    return this.request('GET', `get event ${namespace}/${name}`, corePath('events', namespace, name));
  }

  /** A JSON merge patch of an Event (count and lastTimestamp of a repeated one). */
  async patchEvent(namespace: string, name: string, patch: Record<string, unknown>): Promise<void> {
    await this.write('PATCH', `patch event ${namespace}/${name}`, corePath('events', namespace, name), { json: patch, contentType: MERGE_PATCH });
  }
}

/** Follows continue tokens page by page, reducing each item as its page arrives; keeps the snapshot's resourceVersion. */
export async function listInPages<T>(fetchPage: (limit: number, cont: string | undefined) => Promise<ListPage<T>>, keep: (item: T) => T, limit = 500): Promise<ListPage<T>> {
  const items: T[] = [];
  let cont: string | undefined;
  let resourceVersion: string | undefined;
  do {
    const page = await fetchPage(limit, cont);
    for (const item of page.items) items.push(keep(item));
    resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    cont = page.metadata?.continue || undefined;
  } while (cont);
  return { items, metadata: resourceVersion !== undefined ? { resourceVersion } : {} };
}

function encoded(body: { readonly json: unknown; readonly contentType: string } | undefined): { body?: string; contentType?: string } {
  return body === undefined ? {} : { body: JSON.stringify(body.json), contentType: body.contentType };
}

function withQuery(path: string, query: URLSearchParams): string {
  const q = query.toString();
  return q === '' ? path : `${path}?${q}`;
}

/** The API path of a namespaced object of a group (custom resources, Leases). */
function objectPath(type: ResourceType, namespace: string, name: string): string {
  return `${resourcePath(type, namespace)}/${encodeURIComponent(name)}`;
}

/** The API path of a core (v1) collection in a namespace, or of one of its objects. */
function corePath(plural: string, namespace: string, name?: string): string {
  const collection = `/api/v1/namespaces/${encodeURIComponent(namespace)}/${plural}`;
  return name === undefined ? collection : `${collection}/${encodeURIComponent(name)}`;
}
