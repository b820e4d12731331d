/**
 * One catalog feed per Consul endpoint and read scope (token, datacenter, namespace,
 * partition, node meta), shared by every source that reads with that scope. It holds
 * the latest answer of each service any of its sources selects, and keeps it current
 * with blocking queries whose number does not grow with the number of services:
 *
 * - /v1/catalog/services: its index moves on every registration, deregistration or
 *   change of a service instance (address, port, tags, meta), with or without checks,
 *   even when the list of names does not change. Each move starts a sweep: a cheap
 *   probe per service (an answer filtered to nothing, which still carries the service's
 *   own X-Consul-Index) finds the services whose index moved, and only those are read.
 * - /v1/health/state/any: its answer says which services' checks changed; those are
 *   read at once, without a sweep.
 * A third, /v1/catalog/nodes, starts a sweep when a node changes (a new node address
 * changes the address of its services that have none of their own).
 *
 * Sources are told which services changed (FeedSubscriber.changed). A full read
 * (catalog and every selected service) serves first snapshots, the interval's re-read,
 * and recovery after errors; concurrent full reads are one.
 */
import type { Logger } from '../../metrics/logger.ts';
import { parseCatalogServices, parseCheckStates, parseHealthEntries, type CatalogServices, type HealthEntry } from './api-types.ts';
import { runBlockingLoop, type BlockingTuning } from './blocking-loop.ts';
import type { ConsulResponse, Query } from './client.ts';
import type { AgentPool, PoolRequest } from './pool.ts';

/** What a feed needs of its endpoint's pool (a narrow seam, so tests can stand in for Consul). */
export type FeedPool = Pick<AgentPool, 'read' | 'block' | 'onLiveness'>;
import { createHash } from 'node:crypto';
import { serviceCheckFingerprints } from './check-fingerprints.ts';

export interface FeedScope {
  readonly token?: string;
  readonly datacenter?: string;
  readonly namespace?: string;
  readonly partition?: string;
  readonly nodeMeta: Readonly<Record<string, string>>;
}

/** Query parameters of a scope; ns and partition only when set (the community edition rejects them). */
export function scopeQuery(scope: FeedScope): Query {
  const q: Array<readonly [string, string]> = [];
  if (scope.datacenter) q.push(['dc', scope.datacenter]);
  if (scope.namespace) q.push(['ns', scope.namespace]);
  if (scope.partition) q.push(['partition', scope.partition]);
  for (const [k, v] of Object.entries(scope.nodeMeta).sort(([a], [b]) => a.localeCompare(b))) q.push(['node-meta', `${k}:${v}`]);
  return q;
}

/** A key that is equal for scopes that read the same data (the token included: ACLs filter answers). */
export function scopeKey(scope: FeedScope): string {
  return JSON.stringify([scope.token ?? '', scopeQuery(scope)]);
}

/** A filter no instance matches: node names are never empty. The answer is [] with the service's index. */
export const PROBE_FILTER = 'Node.Node == ""';

export interface ServiceAnswer {
  readonly entries: readonly HealthEntry[];
  readonly index: number;
  readonly filteredByAcls: boolean;
  readonly fingerprint: string;
}

export interface FeedSubscriber {
  /** Whether this source wants changes pushed (a watching provider) or only reads on demand. */
  readonly watching: boolean;
  readonly timeoutMs: number;
  /** Names of the services this source selects from a catalog answer. */
  select(catalog: CatalogServices): readonly string[];
  /**
   * Cached answers changed: the services (undefined: anything may have, e.g. the endpoint
   * went down or came back). `ownRead` is true when this source's own full read found them.
   */
  changed(services: ReadonlySet<string> | undefined, ownRead: boolean): void;
}

export interface FeedView {
  readonly answers: ReadonlyMap<string, ServiceAnswer>;
  readonly filteredByAcls: boolean;
}

export class CatalogFeed {
  private readonly pool: FeedPool;
  private readonly scope: FeedScope;
  private readonly query: Query;
  private readonly log: Logger;
  private readonly tuning: BlockingTuning;
  private readonly closed = new AbortController();
  private readonly subs = new Map<FeedSubscriber, ReadonlySet<string>>();
  private readonly answers = new Map<string, ServiceAnswer>();
  private readonly stopLiveness: () => void;
  private catalog: CatalogServices | undefined;
  private catalogFiltered = false;
  private wanted = new Set<string>();
  /** Start time of the last complete full read; 0 when there is none or the cache is not trusted. */
  private fullReadAt = 0;
  private fullRun: Promise<void> | undefined;
  private loops: AbortController | undefined;
  private readonly running = new Set<Promise<unknown>>();
  private catalogLive = false;
  private stateLive = false;
  private checkPrints: Map<string, string> | undefined;
  private pendingReads = new Set<string>();
  private sweepPending = false;
  private draining: Promise<void> | undefined;

  constructor(pool: FeedPool, scope: FeedScope, log: Logger, tuning: BlockingTuning) {
    this.pool = pool;
    this.scope = scope;
    this.query = scopeQuery(scope);
    this.log = log;
    this.tuning = tuning;
    this.stopLiveness = pool.onLiveness((alive) => {
      // Down: sources report it. Back: nothing cached is trusted until read again.
      if (alive) this.fullReadAt = 0;
      this.notify(undefined);
    });
  }

  subscribe(sub: FeedSubscriber): () => void {
    const selected = new Set(this.catalog ? sub.select(this.catalog) : []);
    this.subs.set(sub, selected);
    // A source joining a running feed wants its services read too (readMissing keeps only wanted answers).
    for (const name of selected) this.wanted.add(name);
    if (sub.watching) this.startWatching();
    return () => {
      this.subs.delete(sub);
      if (![...this.subs.keys()].some((s) => s.watching)) this.stopWatching();
    };
  }

  get subscribers(): number {
    return this.subs.size;
  }

  /** The blocking queries run and the cache holds a complete answer younger than maxAgeMs. */
  isCurrent(maxAgeMs: number): boolean {
    return this.loops !== undefined && this.catalogLive && this.stateLive && this.fullReadAt > 0 && Date.now() - this.fullReadAt < maxAgeMs;
  }

  /** The services sub selected from the latest catalog answer. */
  viewSelection(sub: FeedSubscriber): ReadonlySet<string> {
    return this.subs.get(sub) ?? new Set();
  }

  /** The cached answers of the services sub selects, or undefined when one is missing. */
  viewFor(sub: FeedSubscriber): FeedView | undefined {
    const selected = this.subs.get(sub);
    if (!selected || this.catalog === undefined) return undefined;
    const answers = new Map<string, ServiceAnswer>();
    let filteredByAcls = this.catalogFiltered;
    for (const name of selected) {
      const a = this.answers.get(name);
      if (!a) return undefined;
      answers.set(name, a);
      filteredByAcls ||= a.filteredByAcls;
    }
    return { answers, filteredByAcls };
  }

  /** Reads the catalog and every selected service; one read serves every caller that asks meanwhile. */
  async fullRead(signal: AbortSignal, initiator?: FeedSubscriber): Promise<void> {
    if (!this.fullRun) {
      const run = this.readEverything(initiator).finally(() => {
        if (this.fullRun === run) this.fullRun = undefined;
      });
      this.fullRun = run;
    }
    await untilAborted(this.fullRun, signal);
  }

  /** Reads the selected services of sub that have no cached answer yet (a source that joined a running feed). */
  async readMissing(sub: FeedSubscriber, signal: AbortSignal): Promise<void> {
    const missing = [...(this.subs.get(sub) ?? [])].filter((n) => !this.answers.has(n));
    if (missing.length === 0) return;
    const changed = await untilAborted(this.readServices(missing), signal);
    if (changed.size > 0) this.notify(changed, sub);
  }

  /** Stops every query; resolves when none is in flight any more. */
  async close(): Promise<void> {
    this.closed.abort(new Error('feed closed'));
    this.stopWatching();
    this.stopLiveness();
    this.subs.clear();
    await Promise.allSettled([...this.running, this.draining, this.fullRun]);
    this.answers.clear();
  }

  private track(p: Promise<void>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private request(operation: string, sub?: { timeoutMs: number }): PoolRequest {
    const timeoutMs = sub?.timeoutMs ?? Math.min(...[...this.subs.keys()].map((s) => s.timeoutMs), 10_000);
    return { operation, signal: this.closed.signal, timeoutMs, ...(this.scope.token ? { token: this.scope.token } : {}) };
  }

  private async readEverything(initiator?: FeedSubscriber): Promise<void> {
    const started = Date.now();
    const res = await this.pool.read('/v1/catalog/services', this.query, this.request('catalog_services'));
    const removed = this.setCatalog(res);
    const changed = await this.readServices([...this.wanted]);
    for (const n of removed) changed.add(n);
    this.fullReadAt = started;
    this.notify(changed, initiator);
  }

  /** Takes a catalog answer: the selection of every source, and the answers no longer wanted. */
  private setCatalog(res: ConsulResponse): Set<string> {
    const catalog = parseCatalogServices(res.body);
    this.catalog = catalog;
    this.catalogFiltered = res.filteredByAcls;
    const wanted = new Set<string>();
    for (const sub of this.subs.keys()) {
      const selected = new Set(sub.select(catalog));
      this.subs.set(sub, selected);
      for (const n of selected) wanted.add(n);
    }
    this.wanted = wanted;
    const removed = new Set<string>();
    for (const name of this.answers.keys()) {
      if (!wanted.has(name)) {
        this.answers.delete(name);
        removed.add(name);
      }
    }
    return removed;
  }

  /** Reads services (all must succeed); returns those whose answer changed. */
  private async readServices(names: readonly string[]): Promise<Set<string>> {
    const results = await Promise.all(names.map((name) => this.readService(name)));
    const changed = new Set<string>();
    for (const [i, answer] of results.entries()) {
      const name = names[i] as string;
      const old = this.answers.get(name);
      if (!this.wanted.has(name)) continue;
      if (old?.fingerprint !== answer.fingerprint) changed.add(name);
      // An unchanged answer keeps its entries, so the endpoints and mappings made of them are reused.
      this.answers.set(name, old !== undefined && old.fingerprint === answer.fingerprint ? { ...answer, entries: old.entries } : answer);
    }
    return changed;
  }

  private async readService(name: string): Promise<ServiceAnswer> {
    const res = await this.pool.read(`/v1/health/service/${encodeURIComponent(name)}`, this.query, this.request('health_service'));
    const entries = parseHealthEntries(res.body, name);
    // A digest, not the JSON itself: the JSON of every answer kept was as large as the answers.
    return { entries, index: res.index, filteredByAcls: res.filteredByAcls, fingerprint: createHash('sha256').update(JSON.stringify(entries)).digest('base64') };
  }

  /** Services whose own index moved since their cached answer. */
  private async sweep(skip: ReadonlySet<string>): Promise<string[]> {
    const names = [...this.answers.keys()].filter((n) => !skip.has(n));
    const indexes = await Promise.all(
      names.map(async (name) => {
        const res = await this.pool.read(`/v1/health/service/${encodeURIComponent(name)}`, [...this.query, ['filter', PROBE_FILTER]], this.request('probe_health_service'));
        return res.index;
      }),
    );
    return names.filter((name, i) => this.answers.get(name)?.index !== indexes[i]);
  }

  private startWatching(): void {
    if (this.loops || this.closed.signal.aborted) return;
    const loops = new AbortController();
    this.loops = loops;
    const signal = AbortSignal.any([loops.signal, this.closed.signal]);
    this.track(runBlockingLoop({
      signal,
      tuning: this.tuning,
      query: (index, s) => this.pool.block('/v1/catalog/services', this.query, { ...this.request('watch_catalog_services'), signal: s, index, waitMs: this.tuning.waitMs }),
      onAnswer: (res, sent) => this.onCatalog(res, sent),
      onError: (e, failures) => this.onLoopError('catalog', e, failures),
    }));
    this.track(runBlockingLoop({
      signal,
      tuning: this.tuning,
      query: (index, s) => this.pool.block('/v1/health/state/any', this.query, { ...this.request('watch_health_state'), signal: s, index, waitMs: this.tuning.waitMs }),
      onAnswer: (res) => this.onChecks(res),
      onError: (e, failures) => this.onLoopError('health-state', e, failures),
    }));
    // A node re-addressed (its services keep their own records) moves only the node list's index.
    this.track(runBlockingLoop({
      signal,
      tuning: this.tuning,
      query: (index, s) => this.pool.block('/v1/catalog/nodes', this.query, { ...this.request('watch_catalog_nodes'), signal: s, index, waitMs: this.tuning.waitMs }),
      onAnswer: (res, sent) => this.onNodes(res, sent),
      onError: (e, failures) => {
        if (failures === 1) this.log.debug('Consul node-list watch failed; retrying with backoff', { err: e });
      },
    }));
  }

  private stopWatching(): void {
    this.loops?.abort(new Error('no source watches'));
    this.loops = undefined;
    this.catalogLive = false;
    this.stateLive = false;
    this.checkPrints = undefined;
  }

  private onCatalog(res: ConsulResponse, sent: number): void {
    const recovered = !this.catalogLive;
    this.catalogLive = true;
    const removed = this.setCatalog(res);
    // Regained Consul: sources look again (a snapshot reads everything when nothing is trusted).
    if (recovered && sent === 0) this.notify(undefined);
    else if (removed.size > 0) this.notify(removed);
    if (this.fullReadAt === 0) return;
    for (const name of this.wanted) if (!this.answers.has(name)) this.pendingReads.add(name);
    // The first answer (sent 0) may follow changes made since the last full read.
    if (sent === 0 || res.index !== sent) this.sweepPending = true;
    this.kick();
  }

  private onNodes(res: ConsulResponse, sent: number): void {
    if (sent === 0 || res.index === sent || this.fullReadAt === 0) return;
    this.sweepPending = true;
    this.kick();
  }

  private onChecks(res: ConsulResponse): void {
    this.stateLive = true;
    const prints = serviceCheckFingerprints(parseCheckStates(res.body));
    if (this.checkPrints && this.fullReadAt > 0) {
      for (const name of this.wanted) if (prints.get(name) !== this.checkPrints.get(name)) this.pendingReads.add(name);
    }
    this.checkPrints = prints;
    this.kick();
  }

  private onLoopError(which: string, e: unknown, failures: number): void {
    if (failures > 1) return;
    this.log.warn(`Consul ${which} watch failed; retrying with backoff`, { err: e });
    if (which === 'catalog') this.catalogLive = false;
    else {
      this.stateLive = false;
      this.checkPrints = undefined;
    }
    this.fullReadAt = 0;
    this.notify(undefined);
  }

  private kick(): void {
    if (this.draining || (!this.sweepPending && this.pendingReads.size === 0)) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      this.kick();
    });
  }

  /** Sweeps and targeted reads, one batch at a time; changes that arrive meanwhile form the next batch. */
  private async drain(): Promise<void> {
    while (!this.closed.signal.aborted && (this.sweepPending || this.pendingReads.size > 0)) {
      const sweep = this.sweepPending;
      const reads = this.pendingReads;
      this.sweepPending = false;
      this.pendingReads = new Set();
      try {
        if (sweep) for (const name of await this.sweep(reads)) reads.add(name);
        const changed = await this.readServices([...reads]);
        if (changed.size > 0) this.notify(changed);
      } catch (e) {
        if (this.closed.signal.aborted) return;
        this.log.debug('re-reading changed Consul services failed; the next snapshot reads everything', { err: e });
        this.fullReadAt = 0;
        this.notify(undefined);
      }
    }
  }

  private notify(services: ReadonlySet<string> | undefined, initiator?: FeedSubscriber): void {
    if (this.closed.signal.aborted) return;
    for (const sub of [...this.subs.keys()]) sub.changed(services, sub === initiator);
  }
}

/** Waits for p, or rejects with the signal's reason when it aborts first (p goes on for others). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}
