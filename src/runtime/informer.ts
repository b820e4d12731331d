/**
 * A list-watch cache that keeps going, like client-go's reflector: it lists (in pages,
 * slimming each object as its page arrives), then watches from the list's resourceVersion with bookmarks,
 * watches again from the last version when a watch ends, lists again on 410 Gone, and
 * retries any other failure (an apiserver restart, a refused connection) with
 * exponential backoff. Handlers only enqueue keys, so nothing async runs inside them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../metrics/logger.ts';
import { KubeApiError } from './api-error.ts';
import type { WatchEvent } from './api-watch.ts';
import type { KubeClient } from './kube-client.ts';
import type { ResourceType } from './resource.ts';
import { backoffDelay } from './backoff.ts';

/** A failed list or watch is retried after 0.5 s, 1 s, 2 s, … up to 30 s. */
const RESTART_BACKOFF = { baseMs: 500, maxMs: 30_000, jitter: 0.2 } as const;
/** The server ends each watch after 5 to 10 minutes (spread, as client-go does, so watches do not end together). */
const WATCH_SECONDS = { min: 300, spread: 300 } as const;
/** Bookmarks come about every minute: a watch silent for two is taken as hung. */
const WATCH_IDLE_MS = 120_000;
/** A watch ended by the server sooner than this, with no event, counts as a failure (no tight loop behind a proxy). */
const SHORTEST_WATCH_MS = 1_000;

export type InformerEvent = 'add' | 'update' | 'delete';

/** Objects come from JSON: timestamps are strings. */
export type WatchedObject = { metadata?: { name?: string; namespace?: string; resourceVersion?: string } };

export interface InformerOptions<T extends WatchedObject> {
  /** Lists and watches go through the client (rate-limited and counted). */
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

export class ResilientInformer<T extends WatchedObject> {
  private readonly o: InformerOptions<T>;
  private readonly slim: (obj: T) => T;
  /** namespace → name → object, as the last list and the watch since left them. */
  private objects = new Map<string, Map<string, T>>();
  private resourceVersion = '';
  /** Failures since the last list or watch that went well. */
  private failures = 0;
  private hasSynced = false;
  private stopping = new AbortController();
  private running: Promise<void> | undefined;

  constructor(options: InformerOptions<T>) {
    this.o = options;
    this.slim = options.slim ?? ((obj) => obj);
  }

  /** Lists (filling the cache; retried until it succeeds or stop()) and starts watching. */
  async start(): Promise<void> {
    this.stopping = new AbortController();
    const signal = this.stopping.signal;
    while (!this.hasSynced && !signal.aborted) {
      try {
        await this.relist();
        this.hasSynced = true;
      } catch (e) {
        await this.backOff('list failed; retrying', e, signal);
      }
    }
    if (!signal.aborted) this.running = this.watchLoop(signal);
  }

  get synced(): boolean {
    return this.hasSynced;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.objects.get(namespace ?? '')?.get(name);
  }

  list(namespace?: string): readonly T[] {
    if (namespace) return [...(this.objects.get(namespace)?.values() ?? [])];
    return [...this.objects.values()].flatMap((byName) => [...byName.values()]);
  }

  async stop(): Promise<void> {
    this.stopping.abort(new Error('informer stopped'));
    await this.running;
    this.running = undefined;
  }

  private async watchLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        if (this.resourceVersion === '') await this.relist();
        await this.watchOnce(signal);
      } catch (e) {
        if (signal.aborted) return;
        // 410 Gone: the cache's version is compacted away; list again.
        if (e instanceof KubeApiError && e.code === 410) {
          this.resourceVersion = '';
          continue;
        }
        await this.backOff('watch failed; restarting', e, signal);
      }
    }
  }

  /** One watch from the cache's version; throws when it fails or ends at once with nothing. */
  private async watchOnce(signal: AbortSignal): Promise<void> {
    const { client, type, namespace, labelSelector } = this.o;
    const startedAt = Date.now();
    let events = 0;
    const timeoutSeconds = WATCH_SECONDS.min + Math.floor(Math.random() * WATCH_SECONDS.spread);
    const options = { resourceVersion: this.resourceVersion, timeoutSeconds, idleMs: WATCH_IDLE_MS, ...(labelSelector ? { labelSelector } : {}) };
    await client.watch(type, namespace, options, (event) => {
      events++;
      this.failures = 0;
      this.see(event);
    }, signal);
    if (events === 0 && Date.now() - startedAt < SHORTEST_WATCH_MS) throw new Error('the watch ended as soon as it started');
    this.failures = 0;
  }

  private see(event: WatchEvent): void {
    const obj = event.object as T;
    switch (event.type) {
      case 'ADDED':
      case 'MODIFIED':
        this.put(this.slim(obj));
        break;
      case 'DELETED':
        this.remove(this.slim(obj));
        break;
      case 'BOOKMARK':
        break;
      default:
        return;
    }
    this.resourceVersion = obj.metadata?.resourceVersion ?? this.resourceVersion;
  }

  /** Lists again: objects gone since are deleted, new or changed ones added or updated. */
  private async relist(): Promise<void> {
    const { client, type, namespace, labelSelector } = this.o;
    const page = await client.listAll<T>(type, namespace, { ...(labelSelector ? { labelSelector } : {}), keep: this.slim });
    const listed = new Set(page.items.map(key));
    for (const byName of this.objects.values()) for (const obj of byName.values()) if (!listed.has(key(obj))) this.remove(obj);
    for (const obj of page.items) this.put(obj);
    this.resourceVersion = page.metadata?.resourceVersion ?? '';
    this.failures = 0;
  }

  private put(obj: T): void {
    const namespace = obj.metadata?.namespace ?? '';
    const name = obj.metadata?.name ?? '';
    let byName = this.objects.get(namespace);
    if (byName === undefined) this.objects.set(namespace, (byName = new Map()));
    const known = byName.get(name);
    if (known !== undefined && known.metadata?.resourceVersion !== undefined && known.metadata.resourceVersion === obj.metadata?.resourceVersion) return;
    byName.set(name, obj);
    this.o.onEvent(known === undefined ? 'add' : 'update', obj);
  }

  private remove(obj: T): void {
    const namespace = obj.metadata?.namespace ?? '';
    const byName = this.objects.get(namespace);
    if (!byName?.delete(obj.metadata?.name ?? '')) return;
    if (byName.size === 0) this.objects.delete(namespace);
    this.o.onEvent('delete', obj);
  }

  private async backOff(what: string, err: unknown, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const delayMs = backoffDelay(this.failures++, RESTART_BACKOFF);
    const status = err instanceof KubeApiError ? err.code : undefined;
    this.o.log.warn(what, { resource: this.o.type.plural, delayMs, status, error: err });
    await sleep(delayMs, undefined, { signal }).catch(() => undefined);
  }
}

function key(obj: WatchedObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}
