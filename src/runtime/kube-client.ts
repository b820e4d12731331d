/**
 * The one door to the Kubernetes API: informers' lists, leases, objects, Secrets and
 * Events all go through it. Every call is rate-limited and counted in
 * rest_client_requests_total (so tests and the benchmark can count writes), and API
 * errors become KubeApiError with the Status reason parsed out of the body. Every write passes the WriteFence: when leadership is not confirmed
 * no write starts, and closing the fence aborts the writes in flight.
 */
import {
  type ConfigurationOptions,
  CoreV1Api,
  type CoreV1Event,
  CustomObjectsApi,
  Observable,
  type ObservableMiddleware,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { isNotFound, KubeApiError, RequestAbortedError, toKubeError } from './api-error.ts';
import { ConnectionReuse } from './connection-reuse.ts';
import { sendDirect, serverBase, type DirectRequest } from './direct-request.ts';
import { DispatcherHttpLibrary } from './dispatcher-http.ts';
import { TokenBucket } from './rate-limit.ts';
import { FencedError, WriteFence } from './write-fence.ts';
import { LEASE_API, type Lease } from './lease.ts';
import type { ListOptions, ListPage, NamedObject, ResourceType } from './resource.ts';

export { isConflict, isNotFound, KubeApiError, RequestAbortedError } from './api-error.ts';

/**
 * Per-request options: the HTTP library that sends through the dispatcher
 * (dispatcher-http.ts), the shared connection pool, and (with a signal) abort of the
 * request with the signal.
 */
function requestOptions(pool: ObservableMiddleware, signal: AbortSignal | undefined, base?: ConfigurationOptions<ObservableMiddleware>): ConfigurationOptions<ObservableMiddleware> {
  const middleware: ObservableMiddleware[] = [...(base?.middleware ?? []), pool];
  if (signal) {
    middleware.push({
      pre: (context) => {
        context.setSignal(signal);
        return new Observable(Promise.resolve(context));
      },
      post: (response) => new Observable(Promise.resolve(response)),
    });
  }
  return { ...base, httpApi: HTTP, middleware, middlewareMergeStrategy: 'append' };
}

const HTTP = new DispatcherHttpLibrary();

const SSA = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

const WRITE_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

type RequestOptions = ConfigurationOptions<ObservableMiddleware> | undefined;
/** One request: through the client library (with these options), or sent directly (with this signal). */
type Send = (options: RequestOptions, signal: AbortSignal) => Promise<unknown>;

interface CallOptions {
  /** Bounds the call (lease calls: the renew deadline). */
  readonly signal?: AbortSignal;
  /** Per-request options such as the patch content type. */
  readonly base?: RequestOptions;
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
  readonly kc: KubeConfig;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly metrics: RequestMetrics;
  /** The field manager of every apply and status write. */
  readonly fieldManager: string;
  private readonly bucket: TokenBucket;
  private readonly host: string;
  private readonly server: { readonly origin: string; readonly prefix: string } | undefined;
  /** Writes pass it; the leader elector opens and closes it. Open by default (no leader election). */
  readonly fence: WriteFence;
  private readonly writesInFlight = new Set<Promise<unknown>>();
  /** Writes sent straight through the pool (direct-request.ts), and through the client library. */
  readonly writesSent = { direct: 0, library: 0 };
  /** Every request shares one connection pool (client-node would open a connection per request). */
  readonly connections = new ConnectionReuse();

  constructor(kc: KubeConfig, fieldManager: string, metrics: RequestMetrics, options: KubeClientOptions = {}, fence = new WriteFence(true)) {
    this.kc = kc;
    this.fieldManager = fieldManager;
    this.fence = fence;
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
    this.metrics = metrics;
    this.bucket = new TokenBucket(options.qps ?? DEFAULT_KUBE_API_QPS, options.burst ?? DEFAULT_KUBE_API_BURST);
    const server = kc.getCurrentCluster()?.server ?? '';
    this.host = server.replace(/^https?:\/\//, '');
    this.server = server === '' ? undefined : serverBase(server);
  }

  /**
   * One request. Writes pass the fence and carry its signal, so closing the fence
   * aborts them; reads carry it too (a replica that lost the lease has nothing left to
   * read for). `o.signal` bounds a call instead (lease calls: the renew deadline).
   */
  private call<T>(method: string, operation: string, fn: Send, o: CallOptions = {}): Promise<T> {
    const fenced = WRITE_METHODS.has(method) && !o.unfenced;
    if (!fenced) return this.send(method, operation, fn, o.signal ?? this.fence.signal, o.base, false);
    const write = this.send<T>(method, operation, fn, this.fence.signal, o.base, true);
    this.writesInFlight.add(write);
    const forget = (): void => void this.writesInFlight.delete(write);
    write.then(forget, forget);
    return write;
  }

  private async send<T>(method: string, operation: string, fn: Send, signal: AbortSignal, base: RequestOptions, fenced: boolean): Promise<T> {
    try {
      await this.bucket.take(signal);
    } catch (e) {
      throw this.aborted(operation, signal, fenced, e);
    }
    if (fenced) this.fence.check(operation);
    try {
      const result = (await fn(requestOptions(this.connections.middleware, signal, base), signal)) as T;
      this.metrics.restRequest(method, '200', this.host);
      return result;
    } catch (e) {
      const err = signal.aborted ? this.aborted(operation, signal, fenced, e) : toKubeError(operation, e);
      this.metrics.restRequest(method, err instanceof KubeApiError && err.code > 0 ? String(err.code) : '<error>', this.host);
      throw err;
    }
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

  // --- Leases (not fenced: they are how leadership is confirmed; bounded by the caller's deadline) ---

  /** The Lease, or undefined when there is none. */
  async getLease(namespace: string, name: string, signal: AbortSignal): Promise<Lease | undefined> {
    try {
      return await this.call<Lease>('GET', `get lease ${namespace}/${name}`, (o) => this.custom.getNamespacedCustomObject({ ...LEASE_API, namespace, name }, o), { signal });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  createLease(lease: Lease, signal: AbortSignal): Promise<Lease> {
    const { namespace, name } = lease.metadata;
    return this.call('POST', `create lease ${namespace}/${name}`, (o) => this.custom.createNamespacedCustomObject({ ...LEASE_API, namespace, body: lease }, o), { signal, unfenced: true });
  }

  /** Replaces the Lease; its metadata.resourceVersion makes a concurrent change a 409. */
  replaceLease(lease: Lease, signal: AbortSignal): Promise<Lease> {
    const { namespace, name } = lease.metadata;
    return this.call('PUT', `replace lease ${namespace}/${name}`, (o) => this.custom.replaceNamespacedCustomObject({ ...LEASE_API, namespace, name, body: lease }, o), { signal, unfenced: true });
  }

  // --- Objects of any resource type (custom resources: sources and the Istio objects) ---

  /** One object; KubeApiError 404 when there is none. */
  get<T>(type: ResourceType, namespace: string, name: string): Promise<T> {
    return this.call('GET', `get ${type.plural} ${namespace}/${name}`, (o) => this.custom.getNamespacedCustomObject({ ...type, namespace, name }, o));
  }

  /** One page of a list, in one namespace or (namespace undefined) the whole cluster. */
  listPage<T>(type: ResourceType, namespace: string | undefined, options: ListOptions = {}): Promise<ListPage<T>> {
    const query = {
      ...type,
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
      ...(options.labelSelector ? { labelSelector: options.labelSelector } : {}),
      ...(options.continue ? { _continue: options.continue } : {}),
    };
    const where = namespace === undefined ? 'all namespaces' : namespace;
    return this.call('LIST', `list ${type.plural} in ${where}`, (o) =>
      namespace === undefined ? this.custom.listClusterCustomObject(query, o) : this.custom.listNamespacedCustomObject({ ...query, namespace }, o),
    );
  }

  /**
   * Every object of a list, read in pages of 500; `keep` reduces each item as its page
   * arrives, so a namespace of 20,000 objects is never held whole.
   */
  async list<T>(type: ResourceType, namespace: string | undefined, options: { labelSelector?: string; keep?: (item: T) => T } = {}): Promise<T[]> {
    const items: T[] = [];
    let cont: string | undefined;
    do {
      const page: ListPage<T> = await this.listPage<T>(type, namespace, { limit: 500, ...(options.labelSelector ? { labelSelector: options.labelSelector } : {}), ...(cont ? { continue: cont } : {}) });
      for (const item of page.items) items.push(options.keep ? options.keep(item) : item);
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return items;
  }

  /** Server-side apply of the fields this client manages, taking them over from anyone who changed them. */
  async apply<T extends NamedObject>(type: ResourceType, object: T): Promise<void> {
    const { namespace = '', name } = object.metadata;
    const operation = `apply ${type.plural} ${namespace}/${name}`;
    await this.call('PATCH', operation, (o, signal) =>
      this.direct({ method: 'PATCH', path: `${objectPath(type, namespace, name)}?${this.applyQuery}`, contentType: PatchStrategy.ServerSideApply, body: JSON.stringify(object), operation }, signal) ??
      this.custom.patchNamespacedCustomObject({ ...type, namespace, name, body: object, fieldManager: this.fieldManager, force: true }, o),
      { base: SSA },
    );
  }

  /** Server-side apply of the status subresource (the body holds apiVersion, kind, metadata and status). */
  async applyStatus<T extends NamedObject>(type: ResourceType, object: T): Promise<void> {
    const { namespace = '', name } = object.metadata;
    const operation = `apply ${type.plural} status ${namespace}/${name}`;
    await this.call('PATCH', operation, (o, signal) =>
      this.direct({ method: 'PATCH', path: `${objectPath(type, namespace, name)}/status?${this.applyQuery}`, contentType: PatchStrategy.ServerSideApply, body: JSON.stringify(object), operation }, signal) ??
      this.custom.patchNamespacedCustomObjectStatus({ ...type, namespace, name, body: object, fieldManager: this.fieldManager, force: true }, o),
      { base: SSA },
    );
  }

  /** A JSON merge patch of the status subresource (a status computed in full each time). */
  mergeStatus<T>(type: ResourceType, namespace: string, name: string, status: unknown): Promise<T> {
    return this.call(
      'PATCH',
      `patch ${type.plural} status ${namespace}/${name}`,
      (o) => this.custom.patchNamespacedCustomObjectStatus({ ...type, namespace, name, body: { status }, fieldManager: this.fieldManager }, o),
      { base: MERGE },
    );
  }

  /** Deletes only the object with this uid (a precondition), never a newer one of the same name. */
  async delete(type: ResourceType, namespace: string, name: string, uid: string | undefined): Promise<void> {
    const operation = `delete ${type.plural} ${namespace}/${name}`;
    const options = { propagationPolicy: 'Background', ...(uid ? { preconditions: { uid } } : {}) };
    await this.call('DELETE', operation, (o, signal) =>
      this.direct({ method: 'DELETE', path: objectPath(type, namespace, name), contentType: 'application/json', body: JSON.stringify({ apiVersion: 'v1', kind: 'DeleteOptions', ...options }), operation }, signal) ??
      this.custom.deleteNamespacedCustomObject({ ...type, namespace, name, propagationPolicy: 'Background', ...(uid ? { body: { preconditions: { uid } } } : {}) }, o),
    );
  }

  /** The write sent straight through the pool, when it holds current credentials; undefined: use the library. */
  private direct(req: DirectRequest, signal: AbortSignal): Promise<void> | undefined {
    const channel = this.connections.channel();
    if (channel === undefined || this.server === undefined) {
      this.writesSent.library++;
      return undefined;
    }
    this.writesSent.direct++;
    return sendDirect(channel, this.server, req, signal);
  }

  private get applyQuery(): string {
    return `fieldManager=${encodeURIComponent(this.fieldManager)}&force=true`;
  }

  // --- Secrets ----------------------------------------------------------------------

  /** One GET: the Secret's annotations (consent) and its decoded values. */
  async getSecret(namespace: string, name: string): Promise<SecretContent> {
    const secret = await this.call<{ metadata?: { annotations?: Record<string, string> }; data?: Record<string, string> }>('GET', `get secret ${namespace}/${name}`, (o) =>
      this.core.readNamespacedSecret({ namespace, name }, o),
    );
    const data = new Map(Object.entries(secret.data ?? {}).map(([k, b64]) => [k, Buffer.from(b64, 'base64').toString('utf8')]));
    return { annotations: secret.metadata?.annotations ?? {}, data };
  }

  // --- Events -------------------------------------------------------------------------

  async createEvent(namespace: string, event: CoreV1Event): Promise<void> {
    await this.call('POST', 'create event', (o) => this.core.createNamespacedEvent({ namespace, body: event }, o));
  }

  readEvent(namespace: string, name: string): Promise<CoreV1Event> {
    return this.call('GET', `get event ${namespace}/${name}`, (o) => this.core.readNamespacedEvent({ namespace, name }, o));
  }

  /** A JSON merge patch of an Event (count and lastTimestamp of a repeated one). */
  async patchEvent(namespace: string, name: string, patch: Record<string, unknown>): Promise<void> {
    await this.call('PATCH', `patch event ${namespace}/${name}`, (o) => this.core.patchNamespacedEvent({ namespace, name, body: patch }, o), { base: MERGE });
  }
}

/** The API path of a namespaced custom object. */
function objectPath(type: ResourceType, namespace: string, name: string): string {
  return `/apis/${type.group}/${type.version}/namespaces/${encodeURIComponent(namespace)}/${type.plural}/${encodeURIComponent(name)}`;
}
