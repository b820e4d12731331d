/**
 * A list-watch cache that keeps going. client-node's informer relists on 410 Gone and
 * re-watches after a quiet timeout, but stops for good on any other error (an apiserver
 * restart, a refused connection): this wrapper restarts it with exponential backoff.
 * Handlers only enqueue keys, so nothing async runs inside informer callbacks.
 */
import { ListWatch, Watch, type Informer, type KubeConfig, type KubernetesListObject, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from '../metrics/logger.ts';
import type { KubeClient } from './kube-client.ts';
import { resourcePath, type ResourceType } from './resource.ts';
import { backoffDelay } from './backoff.ts';

/** A failed watch is restarted after 0.5 s, 1 s, 2 s, … up to 30 s. */
const RESTART_BACKOFF = { baseMs: 500, maxMs: 30_000, jitter: 0.2 } as const;

export type InformerEvent = 'add' | 'update' | 'delete';

/** Objects come from JSON: timestamps are strings, so our types are not client-node's classes. */
export type WatchedObject = { metadata?: { name?: string; namespace?: string } };

export interface InformerOptions<T extends WatchedObject> {
  /** Lists go through the client (rate-limited and counted); the watch uses its KubeConfig. */
  readonly client: KubeClient;
  readonly type: ResourceType;
  /** One namespace, or undefined for the whole cluster. */
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly log: Logger;
  readonly onEvent: (event: InformerEvent, obj: T) => void;
  /**
   * What the cache keeps of each object (see slim.ts). Applied to listed items and to
   * every watch event before caching, so neither whole objects nor raw event bodies
   * stay referenced.
   */
  readonly slim?: (obj: T) => T;
}

type Page<T> = { items: T[]; metadata?: { resourceVersion?: string; continue?: string } };

/**
 * Lists in pages of `limit` objects, slimming each page as it arrives, so a large
 * collection is never held whole (one 20,000-object response is tens of MB of JSON).
 * All pages come from one consistent snapshot; its resourceVersion starts the watch.
 */
export async function listInPages<T>(fetchPage: (limit: number, cont: string | undefined) => Promise<Page<T>>, slim: (obj: T) => T, limit = 500): Promise<Page<T>> {
  const items: T[] = [];
  let cont: string | undefined;
  let resourceVersion: string | undefined;
  do {
    const page = await fetchPage(limit, cont);
    for (const item of page.items) items.push(slim(item));
    resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    cont = page.metadata?.continue || undefined;
  } while (cont);
  return { items, metadata: { ...(resourceVersion !== undefined ? { resourceVersion } : {}) } };
}

type WatchCallback = (phase: string, obj: unknown, raw: unknown) => void;

/** A Watch that hands the informer slimmed objects and drops the raw event. */
function slimmingWatch<T>(kc: KubeConfig, slim: (obj: T) => T): Watch {
  const inner = new Watch(kc);
  const wrapper = {
    watch(path: string, params: Record<string, string | number | boolean | undefined>, callback: WatchCallback, done: (err: unknown) => void) {
      const slimmed: WatchCallback = (phase, obj, _raw) => {
        const keep = phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED';
        callback(phase, keep && obj !== null && typeof obj === 'object' ? slim(obj as T) : obj, undefined);
      };
      return inner.watch(path, params, slimmed, done);
    },
  };
  return wrapper as unknown as Watch;
}

export class ResilientInformer<T extends WatchedObject> {
  private readonly inner: Informer<KubernetesObject> & ObjectCache<KubernetesObject>;
  private readonly log: Logger;
  private stopped = false;
  /** Restarts since the watch last connected. */
  private restarts = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private hasSynced = false;

  constructor(options: InformerOptions<T>) {
    this.log = options.log;
    const { client, type, namespace, labelSelector, slim } = options;
    const list = (() =>
      listInPages<T>(
        (limit, cont) => client.listPage<T>(type, namespace, { limit, ...(labelSelector ? { labelSelector } : {}), ...(cont ? { continue: cont } : {}) }),
        slim ?? ((o) => o),
      )) as unknown as () => Promise<KubernetesListObject<KubernetesObject>>;
    const watch = slim === undefined ? new Watch(client.kc) : slimmingWatch(client.kc, slim);
    this.inner = new ListWatch(resourcePath(type, namespace), watch, list, false, labelSelector);
    this.inner.on('add', (o) => options.onEvent('add', o as T));
    this.inner.on('update', (o) => options.onEvent('update', o as T));
    this.inner.on('delete', (o) => options.onEvent('delete', o as T));
    this.inner.on('connect', () => {
      this.restarts = 0;
    });
    this.inner.on('error', (err: unknown) => this.scheduleRestart(err));
  }

  /** Lists (filling the cache) and starts watching; resolves once the first list is in. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.inner.start();
    this.hasSynced = true;
  }

  get synced(): boolean {
    return this.hasSynced;
  }

  private scheduleRestart(err: unknown): void {
    if (this.stopped) return;
    const delayMs = backoffDelay(this.restarts++, RESTART_BACKOFF);
    const status = (err as { statusCode?: number; code?: number | string } | undefined)?.statusCode ?? (err as { code?: unknown })?.code;
    this.log.warn('watch failed; restarting', { delayMs, status, error: err });
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (this.stopped) return;
      this.inner.start().then(
        () => {
          this.hasSynced = true;
        },
        (e: unknown) => this.scheduleRestart(e),
      );
    }, delayMs);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.inner.get(name, namespace) as T | undefined;
  }

  list(namespace?: string): readonly T[] {
    return this.inner.list(namespace) as readonly T[];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    await this.inner.stop();
  }
}
