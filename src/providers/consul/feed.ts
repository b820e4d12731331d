/**
 * One catalog feed per Consul endpoint and read scope (token, datacenter, namespace,
 * partition, node meta), shared by every source that reads with that scope. It holds
 * the latest answer of each service any of its sources selects, and keeps it current
 * with three blocking queries, with work proportional to the change, not to the fleet:
 *
 * - /v1/health/state/any filtered to non-passing checks (check-fingerprints.ts): a check
 *   that changed says which service to read, or for a node-level check which node
 *   (node-index.ts knows the cached services on it).
 * - /v1/catalog/services: its index moves on every registration, deregistration or
 *   change of a service instance, with or without checks. Each move reads the catalog
 *   summary (ui-summary.ts, one request, coalesced) and reads the services whose
 *   instances were added or removed. In-place edits (same node and count) are left to
 *   the sweep (sweep.ts), run at most once per sweepEveryMs (sweep-schedule.ts).
 * - /v1/catalog/nodes: each move reads the node list; the nodes that changed (added,
 *   re-addressed) are looked up and their services read.
 *
 * The node list is MBs at fleet size, and a blocking query answers with its whole result
 * also when its wait runs out unchanged. Its blocking query therefore asks with a filter
 * that matches nothing (NODES_INDEX_ONLY): the answer is empty and only its index says
 * whether the list moved; the list itself is read once per move, one read at a time.
 * (The service list is a tenth of its size, and Consul answers it filtered three times
 * slower than whole: its blocking query answers with the list.)
 *
 * The services of small sources also have a blocking query each (service-watches.ts);
 * over HTTP/2 (an https endpoint, h2-sessions.ts) every selected service has one. A move
 * of the service or node list that their answers explain reads neither list
 * (watched-moves.ts).
 *
 * Changed services are read one by one, never behind a sweep or another source's full
 * read, and sources are told per service (FeedSubscriber.changed). The blocking queries
 * wait at most 0.4 × the smallest subscriber interval, so each answer (also one that
 * says nothing changed) confirms the cache: isCurrent() needs no re-read while they
 * answer. A full read (the catalog and every service of one source) serves first
 * snapshots and recovery; reads of the same service at the same time are one.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../metrics/logger.ts';
import { withLinkedSignal } from '../../runtime/linked-signal.ts';
import { parseCatalogServices, parseCheckStates, parseHealthEntries, type CatalogServices, type HealthEntry } from './api-types.ts';
import { runBlockingLoop, type BlockingTuning } from './blocking-loop.ts';
import { parseJsonBytes, type ConsulResponse, type Query } from './client.ts';
import { changedChecks, nonPassingSet, NON_PASSING_FILTER, type NonPassingSet } from './check-fingerprints.ts';
import { NodeIndex } from './node-index.ts';
import { nodesChangedSince, servicesOfNode } from './node-changes.ts';
import type { AgentPool, PoolRequest } from './pool.ts';
import { Sweeper } from './sweep.ts';
import { ServiceWatches } from './service-watches.ts';
import { StreamWatches } from './stream-watches.ts';
import { SweepSchedule } from './sweep-schedule.ts';
import { OneAtATime } from './one-at-a-time.ts';
import { changedSummaries, parseServiceSummaries, scanServiceSummaries, UI_SERVICES_PATH, type ServiceSummaries } from './ui-summary.ts';
import { changedNodes, WatchedMoves, type CatalogList } from './watched-moves.ts';

/** What a feed needs of its endpoint's pool (a narrow seam, so tests can stand in for Consul). */
export type FeedPool = Pick<AgentPool, 'read' | 'block' | 'onLiveness' | 'readSlots' | 'claimWatches' | 'releaseWatches' | 'feedQueriesChanged' | 'multiplexed' | 'onWatchCapacity' | 'watchStream'>;

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
  /** The source's interval: the feed's blocking waits and sweeps are shorter than it. */
  readonly intervalMs: number;
  /** Names of the services this source selects from a catalog answer. */
  select(catalog: CatalogServices): readonly string[];
  /**
   * Cached answers changed: the services (undefined: anything may have, e.g. the endpoint
   * went down or came back). `ownRead` is true when this source's own full read found them.
   */
  changed(services: ReadonlySet<string> | undefined, ownRead: boolean): void;
}

export interface FeedOptions {
  /** Monotonic time in ms (tests move it by hand). */
  readonly now?: () => number;
}

/** Blocking waits and sweeps take this share of the smallest subscriber interval, so answers confirm the cache well within it. */
export const SHARE_OF_INTERVAL = 0.4;
/** The shortest blocking wait and sweep period, whatever the interval. */
export const MIN_PERIOD_MS = 1000;

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
  /** When each source's latest complete full read started: it covers catalog moves before it. */
  private readonly fullReadAt = new Map<FeedSubscriber, number>();
  /** When each cached answer's request started (performance.now()). */
  private readonly readAt = new Map<string, number>();
  /** One read in flight per service; `again` holds services that changed while theirs ran. */
  private readonly reading = new Map<string, Promise<boolean>>();
  private readonly again = new Set<string>();
  private readonly sweeper: Sweeper;
  private readonly schedule: SweepSchedule;
  private readonly nodeIndex = new NodeIndex();
  /** Blocking queries on the services of small sources, as many as the pool grants. */
  private readonly watches: ServiceWatches;
  /** Moves of the service and node lists that those watches explain need no summary or node-list read. */
  private readonly moves = new WatchedMoves();
  private spared = 0;
  private watchesGranted = 0;
  private readonly now: () => number;
  /** Read slots one full read or the sweep may hold, so changed services always find one free. */
  private readonly bulkSlots: number;
  private readonly stopLiveness: () => void;
  private readonly stopCapacity: () => void;
  /** Watches over HTTP/2 (every selected service), instead of `watches`, when the pool multiplexes. */
  private readonly streams: StreamWatches;
  private readonly running = new Set<Promise<unknown>>();
  private catalog: CatalogServices | undefined;
  private catalogFiltered = false;
  /** A digest of the latest catalog answer's bytes: an answer equal to it changes no selection. */
  private catalogDigest: string | undefined;
  private catalogAt = 0;
  private catalogRun: Promise<void> | undefined;
  /** The index of the node list last scanned (or of the first answer): later changes have a higher ModifyIndex. */
  private nodesSeen = 0;
  /** Node-list reads after moves: one at a time, once more if the list moved during one. */
  private readonly nodeScans: OneAtATime;
  private wanted = new Set<string>();
  /** Services of small sources, probed first on every catalog move. */
  private firstToProbe: string[] = [];
  /** The latest catalog summary; undefined before the first or after a failed read. */
  private summary: ServiceSummaries | undefined;
  /** Summaries under a stream of changes: one at a time, each pausing as long as the last took. */
  private readonly summaries: OneAtATime;
  private summaryFailureLogged = false;
  /** The last summary read failed: the next answer is only a baseline, so its move is swept at once. */
  private summaryFailed = false;
  /** Answers read before this time are not trusted (the endpoint came back, a watch failed). */
  private trustedFrom = 0;
  private loops: AbortController | undefined;
  private catalogLive = false;
  /** The health-state and node-list queries whose last attempt failed. */
  private readonly failedQueries = new Set<'health-state' | 'node-list'>();
  private stateLive = false;
  private nodesLive = false;
  /** When each blocking query last answered (also without a change). */
  private catalogAnsweredAt = -Infinity;
  private stateAnsweredAt = -Infinity;
  private nodesAnsweredAt = -Infinity;
  private nonPassing: NonPassingSet | undefined;
  /** The longest wait the blocking queries were last sent with; aborting waitCut resends them shorter. */
  private sentWaitMs = 0;
  private waitCut = new AbortController();

  constructor(pool: FeedPool, scope: FeedScope, log: Logger, tuning: BlockingTuning, options: FeedOptions = {}) {
    this.pool = pool;
    this.scope = scope;
    this.query = scopeQuery(scope);
    this.log = log;
    this.tuning = tuning;
    this.now = options.now ?? (() => performance.now());
    this.bulkSlots = Math.max(1, Math.floor(pool.readSlots / 2));
    this.sweeper = new Sweeper(
      {
        cachedIndex: (name) => this.answers.get(name)?.index,
        probe: (name) => this.probe(name),
        moved: (name) => this.readChanged(name),
        failed: (e) => this.onSweepFailed(e),
        idle: () => {
          this.schedule.passEnded();
          if (this.pool.multiplexed) this.watchServices();
        },
      },
      this.bulkSlots,
    );
    this.schedule = new SweepSchedule({
      now: this.now,
      // As long as a blocking wait: in-place edits arrive within a minute even with long intervals.
      everyMs: () => this.waitMs(),
      startPass: () => this.sweeper.enqueue(this.answers.keys(), this.firstToProbe),
    });
    this.summaries = new OneAtATime({
      run: () => this.compareSummary(),
      track: (p) => this.track(p),
      closed: () => this.closed.signal.aborted,
      now: this.now,
      // Back to back, summaries would keep the agent busy with the whole catalog under a
      // stream of changes: the next one waits as long as this one took.
      pauseMs: (tookMs) => Math.min(MAX_SUMMARY_PAUSE_MS, tookMs),
      delayMs: () => this.graceMs('services'),
    });
    this.nodeScans = new OneAtATime({
      run: () => this.readChangedNodes(),
      track: (p) => this.track(p),
      closed: () => this.closed.signal.aborted,
      now: this.now,
      delayMs: () => this.graceMs('nodes'),
    });
    this.watches = new ServiceWatches(
      {
        query: (name, index, signal) => this.watchService(name, index, signal),
        answered: (name, res, sentAt) => this.takeWatchAnswer(name, res, sentAt),
        cachedIndex: (name) => this.trustedIndex(name),
        now: this.now,
        failed: (name, e) => this.log.debug('a Consul service watch failed; retrying with backoff (the catalog-wide queries still see its changes)', { err: e, service: name }),
      },
      tuning,
    );
    this.streams = new StreamWatches(
      {
        send: (name, index, onAnswer, onError) => this.streamService(name, index, onAnswer, onError),
        answered: (name, res, sentAt) => this.takeWatchAnswer(name, res, sentAt),
        failed: (name, e) => this.log.debug('a Consul service watch (HTTP/2) failed; retrying with backoff (the catalog-wide queries still see its changes)', { err: e, service: name }),
        cachedIndex: (name) => this.trustedIndex(name),
        now: this.now,
      },
      {
        waitMs: this.streamWaitMs(),
        deadlineMs: STREAM_DEADLINE_MS,
        backoff: { baseMs: tuning.backoffBaseMs, maxMs: tuning.backoffMaxMs, jitter: 0.5 },
      },
    );
    this.stopCapacity = pool.onWatchCapacity(() => this.watchServices());
    this.stopLiveness = pool.onLiveness((alive) => {
      // Down: sources report it. Back: nothing cached is trusted until read again.
      if (alive) this.distrust();
      this.notify(undefined);
    });
  }

  subscribe(sub: FeedSubscriber): () => void {
    const selected = new Set(this.catalog ? sub.select(this.catalog) : []);
    this.subs.set(sub, selected);
    // The next catalog answer selects for every source again, even if the list is the same.
    this.catalogDigest = undefined;
    // A source joining a running feed wants its services read too (store keeps only wanted answers).
    for (const name of selected) this.wanted.add(name);
    if (sub.watching) this.startWatching();
    // A source with a shorter interval: the waits under way would outlast its age limit.
    if (this.loops && this.waitMs() < this.sentWaitMs) this.shortenWaits();
    this.schedule.periodChanged();
    return () => {
      this.subs.delete(sub);
      this.catalogDigest = undefined;
      this.fullReadAt.delete(sub);
      if (![...this.subs.keys()].some((s) => s.watching)) this.stopWatching();
    };
  }

  get subscribers(): number {
    return this.subs.size;
  }

  /** Services waiting for their probe (for tests and diagnostics). */
  get sweepQueued(): number {
    return this.sweeper.queued;
  }

  /** Reads of the summary or the node list left out because watches explained their moves (for tests and diagnostics). */
  get readsSpared(): number {
    return this.spared;
  }

  /** A sweep pass is under way (for tests and diagnostics). */
  get sweepPassRunning(): boolean {
    return this.schedule.passRunning;
  }

  /**
   * The cache is as fresh as maxAgeMs allows, without reading it again: the three blocking
   * queries run and each answered within maxAgeMs (an answer that says nothing changed
   * confirms too), no catalog move has waited longer than that for the sweep, and every
   * service sub selects has an answer read since the cache was last trusted.
   */
  isCurrent(sub: FeedSubscriber, maxAgeMs: number): boolean {
    if (!this.loops || !this.catalogLive || !this.stateLive || !this.nodesLive || this.catalogAt < this.trustedFrom) return false;
    const now = this.now();
    const oldest = Math.max(this.trustedFrom, now - maxAgeMs);
    if (Math.min(this.catalogAnsweredAt, this.stateAnsweredAt, this.nodesAnsweredAt) < oldest) return false;
    // A move the sweep has not covered for longer than maxAgeMs: unless this source's own full
    // read since then covered it (so a lagging sweep costs one full read per maxAgeMs, not one per snapshot).
    const uncovered = this.schedule.uncoveredSince;
    if (uncovered !== undefined && uncovered < now - maxAgeMs && (this.fullReadAt.get(sub) ?? -Infinity) < now - maxAgeMs) return false;
    for (const name of this.subs.get(sub) ?? []) {
      if ((this.readAt.get(name) ?? -Infinity) < this.trustedFrom) return false;
    }
    return true;
  }

  /** A share of the smallest subscriber interval, at least MIN_PERIOD_MS; waits and sweep periods take at most tuning.waitMs of it. */
  private periodMs(): number {
    const smallest = Math.min(...[...this.subs.keys()].map((s) => s.intervalMs));
    return Number.isFinite(smallest) ? Math.max(MIN_PERIOD_MS, SHARE_OF_INTERVAL * smallest) : this.tuning.waitMs;
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

  /** Reads the catalog and every service sub selects; reads of a service already under way are shared. */
  async fullRead(signal: AbortSignal, sub: FeedSubscriber): Promise<void> {
    const started = this.now();
    await untilAborted(this.readCatalog(), signal);
    const changed = await untilAborted(this.readMany([...(this.subs.get(sub) ?? [])]), signal);
    if (this.subs.has(sub)) this.fullReadAt.set(sub, started);
    if (this.pool.multiplexed) this.watchServices();
    this.notify(changed, sub);
  }

  /** Reads the selected services of sub that have no cached answer yet (a source that joined a running feed). */
  async readMissing(sub: FeedSubscriber, signal: AbortSignal): Promise<void> {
    const missing = [...(this.subs.get(sub) ?? [])].filter((n) => !this.answers.has(n));
    if (missing.length === 0) return;
    const changed = await untilAborted(this.readMany(missing), signal);
    if (this.pool.multiplexed) this.watchServices();
    if (changed.size > 0) this.notify(changed, sub);
  }

  /** Stops every query; resolves when none is in flight any more. */
  async close(): Promise<void> {
    this.closed.abort(new Error('feed closed'));
    this.summaries.cancel();
    this.stopWatching();
    this.stopLiveness();
    this.stopCapacity();
    this.schedule.stop();
    this.subs.clear();
    this.streams.close();
    await Promise.allSettled([this.sweeper.stop(), this.watches.close(), ...this.running, this.catalogRun]);
    this.answers.clear();
    this.nodeIndex.clear();
  }

  private track(p: Promise<unknown>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private request(operation: string): PoolRequest {
    const timeoutMs = Math.min(...[...this.subs.keys()].map((s) => s.timeoutMs), 10_000);
    return { operation, signal: this.closed.signal, timeoutMs, ...(this.scope.token ? { token: this.scope.token } : {}) };
  }

  private distrust(): void {
    this.trustedFrom = performance.now();
  }

  /** One catalog read at a time; callers meanwhile share it. */
  private readCatalog(): Promise<void> {
    if (!this.catalogRun) {
      const started = this.now();
      const run = this.pool
        .read('/v1/catalog/services', this.query, { ...this.request('catalog_services'), raw: true })
        .then((res) => this.takeCatalog(res, started))
        .finally(() => {
          if (this.catalogRun === run) this.catalogRun = undefined;
        });
      this.catalogRun = run;
    }
    return this.catalogRun;
  }

  /** Takes a catalog answer: every source's selection; services gone are dropped, services new are read. */
  private takeCatalog(res: ConsulResponse, at: number): void {
    const hadCatalog = this.catalog !== undefined;
    this.catalogFiltered = res.filteredByAcls;
    this.catalogAt = Math.max(this.catalogAt, at);
    const bytes = Buffer.isBuffer(res.body) ? res.body : undefined;
    const digest = bytes && createHash('sha256').update(bytes).digest('base64');
    // The same list as before (an instance added or removed moves the index, not the list): no selection changes.
    if (hadCatalog && digest !== undefined && digest === this.catalogDigest) return;
    const catalog = parseCatalogServices(bytes ? parseJsonBytes(bytes, 'GET /v1/catalog/services') : res.body);
    this.catalogDigest = digest;
    this.catalog = catalog;
    const wanted = new Set<string>();
    for (const sub of this.subs.keys()) {
      const selected = new Set(sub.select(catalog));
      this.subs.set(sub, selected);
      for (const n of selected) wanted.add(n);
    }
    const before = this.wanted;
    this.wanted = wanted;
    this.firstToProbe = smallSelections([...this.subs.values()]);
    this.watchServices();
    const removed = new Set<string>();
    for (const name of this.answers.keys()) {
      if (wanted.has(name)) continue;
      this.answers.delete(name);
      this.readAt.delete(name);
      this.nodeIndex.delete(name);
      removed.add(name);
    }
    if (removed.size > 0) this.notify(removed);
    if (hadCatalog) for (const name of wanted) if (!before.has(name) && !this.answers.has(name)) this.readChanged(name);
  }

  /** Reads services with at most bulkSlots requests at a time (all must succeed); returns those whose answer changed. */
  private async readMany(names: readonly string[]): Promise<Set<string>> {
    const changed = new Set<string>();
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < names.length && !failed) {
        const name = names[next++] as string;
        try {
          if (await this.readOne(name)) changed.add(name);
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.bulkSlots, names.length) }, worker));
    return changed;
  }

  /** A changed service: read now, beside any sweep or full read, and its sources told. */
  private readChanged(name: string): void {
    if (this.closed.signal.aborted || !this.wanted.has(name)) return;
    // The read under way may have started before the change: read once more after it.
    if (this.reading.has(name)) {
      this.again.add(name);
      return;
    }
    this.track(
      this.readOne(name).then(
        (changed) => {
          if (changed) this.notify(new Set([name]));
        },
        (e: unknown) => this.onReadFailed(name, e),
      ),
    );
  }

  /** Reads one service; a read of it already under way is shared. Resolves whether its answer changed. */
  private readOne(name: string): Promise<boolean> {
    const inFlight = this.reading.get(name);
    if (inFlight) return inFlight;
    const started = this.now();
    const p = this.pool
      .read(`/v1/health/service/${encodeURIComponent(name)}`, this.query, this.request('health_service'))
      .then((res) => this.store(name, res, started))
      .finally(() => {
        this.reading.delete(name);
        if (this.again.delete(name)) this.readChanged(name);
      });
    this.reading.set(name, p);
    return p;
  }

  private store(name: string, res: ConsulResponse, started: number): boolean {
    if (!this.wanted.has(name)) return false;
    const entries = parseHealthEntries(res.body, name);
    // A digest, not the JSON itself: the JSON of every answer kept was as large as the answers.
    const fingerprint = createHash('sha256').update(JSON.stringify(entries)).digest('base64');
    const old = this.answers.get(name);
    this.readAt.set(name, started);
    if (old?.fingerprint === fingerprint && old.filteredByAcls === res.filteredByAcls) {
      if (old.index !== res.index) this.answers.set(name, { ...old, index: res.index });
      return false;
    }
    this.answers.set(name, { entries, index: res.index, filteredByAcls: res.filteredByAcls, fingerprint });
    this.nodeIndex.set(name, entries);
    return true;
  }

  private onReadFailed(name: string, e: unknown): void {
    if (this.closed.signal.aborted) return;
    this.log.debug('reading a changed Consul service failed; its sources read it again', { err: e, service: name });
    // Not current any more: the next snapshot of its sources reads in full and reports the error.
    this.readAt.delete(name);
    this.notify(new Set([name]));
  }

  /** A service's own index, from an answer filtered to nothing. */
  private async probe(name: string): Promise<number> {
    const res = await this.pool.read(`/v1/health/service/${encodeURIComponent(name)}`, [...this.query, ['filter', PROBE_FILTER]], this.request('probe_health_service'));
    return res.index;
  }

  private onSweepFailed(e: unknown): void {
    if (this.closed.signal.aborted) return;
    this.log.debug('probing Consul services failed; the next snapshots read everything', { err: e });
    this.distrust();
    this.notify(undefined);
  }

  /** The blocking wait: shorter than every subscriber's interval, so answers keep confirming the cache. */
  private waitMs(): number {
    return Math.min(this.tuning.waitMs, this.periodMs());
  }

  private startWatching(): void {
    if (this.loops || this.closed.signal.aborted) return;
    const loops = new AbortController();
    this.loops = loops;
    this.pool.feedQueriesChanged(FEED_QUERIES);
    const signal = AbortSignal.any([loops.signal, this.closed.signal]);
    const watch =
      (path: string, operation: string, query = this.query, raw = false) =>
      (index: number, s: AbortSignal) =>
        this.block(path, operation, query, index, s, raw);
    this.track(
      runBlockingLoop({
        signal,
        tuning: this.tuning,
        // Most moves (an instance added or removed) leave the list as it was: compared as bytes first.
        query: watch('/v1/catalog/services', 'watch_catalog_services', this.query, true),
        onAnswer: (res, sent) => this.onCatalog(res, sent),
        onError: (e, failures) => this.onLoopError('catalog', e, failures),
      }),
    );
    this.track(
      runBlockingLoop({
        signal,
        tuning: this.tuning,
        query: watch('/v1/health/state/any', 'watch_health_state', [...this.query, ['filter', NON_PASSING_FILTER]]),
        onAnswer: (res, sent) => this.onChecks(res, sent),
        onError: (e, failures) => this.onLoopError('health-state', e, failures),
      }),
    );
    // A node changed (added, re-addressed) moves the node list's index and the index of each of
    // its services, not always the service list's. The list says which nodes changed.
    this.track(
      runBlockingLoop({
        signal,
        tuning: this.tuning,
        query: watch('/v1/catalog/nodes', 'watch_catalog_nodes', [...this.query, ['filter', NODES_INDEX_ONLY]]),
        onAnswer: (res, sent) => this.onNodes(res, sent),
        onError: (e, failures) => this.onLoopError('node-list', e, failures),
      }),
    );
    this.watchServices();
  }

  /**
   * Watches services one by one while the feed watches, as many as the pool grants; none
   * when it does not watch. Over HTTP/1.1 (a socket each) only those of small sources,
   * smallest first; over HTTP/2 (a stream each) every selected service, small sources'
   * first, so a change anywhere in a large fleet answers its own query.
   */
  private watchServices(): void {
    const names = this.loops && !this.closed.signal.aborted ? this.servicesToWatch() : [];
    this.pool.releaseWatches(this.watchesGranted);
    // Over HTTP/1.1 the pool may find out that HTTP/2 would watch them all.
    this.watchesGranted = this.pool.claimWatches(names.length, this.loops ? this.wanted.size : 0);
    const granted = names.slice(0, this.watchesGranted);
    // The pool's answer may change from HTTP/1.1 to HTTP/2 (found later): one kind at a time.
    this.watches.set(this.pool.multiplexed ? [] : granted);
    this.streams.set(this.pool.multiplexed ? granted : []);
  }

  /**
   * Over HTTP/2 only services with a trusted cached answer: their watches block from its
   * index at once, where thousands starting from 0 would each bring the whole answer
   * again. The others join once read (after a full read, a sweep pass, a catalog move).
   */
  private servicesToWatch(): string[] {
    if (!this.pool.multiplexed) return this.firstToProbe.slice(0, MAX_SERVICE_WATCHES);
    const first = new Set(this.firstToProbe);
    return [...this.firstToProbe, ...[...this.wanted].filter((n) => !first.has(n))].filter((n) => this.trustedIndex(n) !== undefined);
  }

  /** The index of a service's answer read since the cache was last trusted (a restarted agent may count lower). */
  private trustedIndex(name: string): number | undefined {
    return (this.readAt.get(name) ?? -Infinity) >= this.trustedFrom ? this.answers.get(name)?.index : undefined;
  }

  /** Services watched one by one (for tests and diagnostics). */
  get watchedServices(): ReadonlySet<string> {
    return new Set([...this.watches.watched, ...this.streams.watched]);
  }

  /**
   * One blocking query on a single service. It only brings changes sooner (isCurrent
   * never counts on it), so it waits tuning.waitMs, not the share of the interval the
   * feed's own queries wait, and a shorter interval never cuts it.
   */
  private watchService(name: string, index: number, signal: AbortSignal): Promise<ConsulResponse> {
    return this.pool.block(`/v1/health/service/${encodeURIComponent(name)}`, this.query, { ...this.request('watch_health_service'), signal, index, waitMs: this.tuning.waitMs });
  }

  /** The same over HTTP/2, by callback (stream-watches.ts). */
  private streamService(name: string, index: number, onAnswer: (res: ConsulResponse) => void, onError: (e: unknown) => void): () => void {
    const req = { operation: 'watch_health_service', index, waitMs: this.streamWaitMs(), ...(this.scope.token ? { token: this.scope.token } : {}) };
    return this.pool.watchStream(`/v1/health/service/${encodeURIComponent(name)}`, this.query, req, onAnswer, onError);
  }

  /** Thousands of HTTP/2 watches each answer once per wait when quiet: they wait longer. */
  private streamWaitMs(): number {
    return Math.max(this.tuning.waitMs, MULTIPLEXED_WATCH_WAIT_MS);
  }

  /**
   * A service watch answered (the first answer too: a change made since the cached read
   * shows as another index). The answer is the service's whole health, taken as it is;
   * with a read of the service under way, which may answer older or newer, it is read once more after that.
   */
  private takeWatchAnswer(name: string, res: ConsulResponse, sentAt: number): void {
    const cached = this.answers.get(name);
    if (this.closed.signal.aborted || cached === undefined || cached.index === res.index) return;
    // A wait that ran out comes without its body (client.ts), yet its index is not the cache's: read the service.
    if (this.reading.has(name) || res.body === null) {
      this.readChanged(name);
      return;
    }
    try {
      const changed = this.store(name, res, sentAt);
      if (this.onWatchedNodesOnly(changedNodes(cached.entries, this.answers.get(name)?.entries ?? []))) this.moves.explain(res.index);
      if (changed) this.notify(new Set([name]));
    } catch (e) {
      this.onReadFailed(name, e);
    }
  }

  /** Whether these nodes run no cached service but watched ones. */
  private onWatchedNodesOnly(nodes: ReadonlySet<string>): boolean {
    for (const node of nodes) for (const service of this.nodeIndex.servicesOn(node)) if (!this.watches.has(service) && !this.streams.has(service)) return false;
    return true;
  }

  /**
   * With services watched, a move that no watch explains yet waits a moment before its
   * list is read: the watch's small answer usually comes first, and then no read is needed.
   */
  private graceMs(list: CatalogList): number {
    return this.watchesGranted > 0 && this.moves.explainable(list) && !this.moves.allExplained(list) ? WATCH_GRACE_MS : 0;
  }

  /** One blocking query; when its wait is cut (a subscriber with a shorter interval came), it is sent again at once. */
  private async block(path: string, operation: string, query: Query, index: number, signal: AbortSignal, raw = false): Promise<ConsulResponse> {
    for (;;) {
      const cut = this.waitCut.signal;
      const waitMs = this.waitMs();
      this.sentWaitMs = Math.max(this.sentWaitMs, waitMs);
      try {
        return await withLinkedSignal([signal, cut], (linked) => this.pool.block(path, query, { ...this.request(operation), signal: linked, index, waitMs, ...(raw ? { raw } : {}) }));
      } catch (e) {
        if (signal.aborted || !cut.aborted) throw e;
      }
    }
  }

  private shortenWaits(): void {
    this.sentWaitMs = 0;
    this.waitCut.abort(new Error('blocking wait shortened'));
    this.waitCut = new AbortController();
  }

  private stopWatching(): void {
    if (this.loops) this.pool.feedQueriesChanged(-FEED_QUERIES);
    this.loops?.abort(new Error('no source watches'));
    this.loops = undefined;
    this.watchServices();
    this.catalogLive = false;
    this.stateLive = false;
    this.nodesLive = false;
  }

  private onCatalog(res: ConsulResponse, sent: number): void {
    this.catalogAnsweredAt = this.now();
    const recovered = !this.catalogLive;
    this.catalogLive = true;
    // The wait ended without a change: the answer only confirms the cache.
    if (sent !== 0 && res.index === sent) return;
    this.takeCatalog(res, this.catalogAnsweredAt);
    // Regained Consul: sources look again (a snapshot reads everything when nothing is trusted).
    if (recovered && sent === 0) this.notify(undefined);
    // The first answer (sent 0) may follow changes made since the services were read: the
    // summary has nothing to compare with yet, so the sweep looks at once.
    if (sent === 0) this.moves.unexplained('services');
    else this.moves.moved('services', res.index);
    this.summaries.request();
    this.schedule.moved(sent === 0);
  }

  /** Reads the services whose instances were added or removed since the previous summary. */
  private async compareSummary(): Promise<void> {
    // Changes the watches saw whole: the baseline stays, so the next read still compares with what came before.
    const explained = this.summary !== undefined && this.moves.allExplained('services');
    this.moves.take('services');
    if (explained) {
      this.spared += 1;
      return;
    }
    let next: ServiceSummaries;
    try {
      // The summary takes no node-meta: a change outside the scope costs one read that finds nothing new.
      // MBs at fleet size, on every catalog move: scanned as bytes.
      const res = await this.pool.read(UI_SERVICES_PATH, this.query.filter(([k]) => k !== 'node-meta'), { ...this.request('ui_services'), raw: true });
      next = Buffer.isBuffer(res.body) ? scanServiceSummaries(res.body) : parseServiceSummaries(res.body);
    } catch (e) {
      if (this.closed.signal.aborted) return;
      if (!this.summaryFailureLogged) this.log.debug('reading the Consul catalog summary failed; catalog moves are swept instead', { err: e });
      this.summaryFailureLogged = true;
      // Without a summary to compare with, the next one is a baseline: sweep for this move and that one.
      this.summary = undefined;
      this.summaryFailed = true;
      this.schedule.moved(true);
      return;
    }
    const before = this.summary;
    this.summary = next;
    if (before === undefined) {
      // The first baseline follows the first catalog answer, whose sweep covers the gap.
      if (this.summaryFailed) this.schedule.moved(true);
      this.summaryFailed = false;
      return;
    }
    for (const name of changedSummaries(before, next, this.wanted)) this.readChanged(name);
  }

  private onNodes(res: ConsulResponse, sent: number): void {
    this.nodesAnsweredAt = this.now();
    this.noticeRecovery('node-list', sent);
    this.nodesLive = true;
    // The first answer is the baseline (a recovery's gap is swept, see noticeRecovery).
    if (sent === 0) this.nodesSeen = res.index;
    else if (res.index !== sent) {
      this.moves.moved('nodes', res.index);
      this.nodeScans.request();
    }
  }

  /** Nodes changed since the last list read: their services are read at once (a few at a time; a bulk change is left to the sweep). */
  private async readChangedNodes(): Promise<void> {
    const explained = this.moves.allExplained('nodes');
    const movedTo = this.moves.take('nodes');
    if (explained) {
      // Those nodes' services are read: later scans look past them (too many changed nodes would
      // make a sweep), and the sweep looks for what hid behind the move.
      this.nodesSeen = Math.max(this.nodesSeen, movedTo);
      this.schedule.moved(false);
      this.spared += 1;
      return;
    }
    const since = this.nodesSeen;
    let nodes: string[];
    try {
      // MBs at fleet size: scanned as bytes (node-changes.ts).
      const res = await this.pool.read('/v1/catalog/nodes', this.query, { ...this.request('catalog_nodes'), raw: true });
      nodes = nodesChangedSince(res.body, since);
      this.nodesSeen = res.index;
    } catch (e) {
      if (this.closed.signal.aborted) return;
      this.log.debug('reading the Consul node list after a move failed; the sweep finds the changed nodes', { err: e });
      this.schedule.moved(true);
      return;
    }
    if (nodes.length <= MAX_NODE_LOOKUPS) for (const node of nodes) this.track(this.readNodeServices(node));
    else this.schedule.moved(true);
  }

  private async readNodeServices(node: string): Promise<void> {
    try {
      const res = await this.pool.read(`/v1/catalog/node-services/${encodeURIComponent(node)}`, this.query.filter(([k]) => k !== 'node-meta'), this.request('node_services'));
      for (const name of servicesOfNode(res.body)) this.readChanged(name);
    } catch (e) {
      if (this.closed.signal.aborted) return;
      this.log.debug('looking up the services of a changed Consul node failed; the sweep finds them', { err: e, node });
      this.schedule.moved(true);
    }
  }

  private onChecks(res: ConsulResponse, sent: number): void {
    this.stateAnsweredAt = this.now();
    this.noticeRecovery('health-state', sent);
    this.stateLive = true;
    if (sent !== 0 && res.index === sent) return;
    const next = nonPassingSet(parseCheckStates(res.body));
    if (this.nonPassing) {
      const { services, nodes } = changedChecks(this.nonPassing, next);
      for (const name of services) this.readChanged(name);
      for (const node of nodes) for (const name of this.nodeIndex.servicesOn(node)) this.readChanged(name);
    }
    this.nonPassing = next;
  }

  /**
   * The first answer of a query after it failed: sources are told to look again (the
   * failure made them read afresh; now their cache may serve again). Each query tells on
   * its own, since after a short outage (an agent that restarted with the same indexes)
   * only some of them may have failed. The health answer is compared with the last one,
   * so flips made meanwhile are read; the node list's first answer is compared with
   * nothing, so nodes changed meanwhile are left to a sweep, at once.
   */
  private noticeRecovery(which: 'health-state' | 'node-list', sent: number): void {
    if (!this.failedQueries.delete(which) || sent !== 0) return;
    if (which === 'node-list') this.schedule.moved(true);
    this.notify(undefined);
  }

  private onLoopError(which: 'catalog' | 'health-state' | 'node-list', e: unknown, failures: number): void {
    if (failures > 1) return;
    if (which === 'node-list') this.log.debug('Consul node-list watch failed; retrying with backoff', { err: e });
    else this.log.warn(`Consul ${which} watch failed; retrying with backoff`, { err: e });
    // The non-passing set stays: the first answer after the error is compared with it,
    // so a flip made while the watch was down is still read.
    if (which === 'catalog') this.catalogLive = false;
    else {
      this.failedQueries.add(which);
      if (which === 'health-state') this.stateLive = false;
      else this.nodesLive = false;
    }
    this.distrust();
    this.notify(undefined);
  }

  private notify(services: ReadonlySet<string> | undefined, initiator?: FeedSubscriber): void {
    if (this.closed.signal.aborted) return;
    for (const sub of [...this.subs.keys()]) sub.changed(services, sub === initiator);
  }
}

/** A filter no node matches (none has an empty name): the node list's blocking query answers with its index and `[]`. */
export const NODES_INDEX_ONLY = 'Node == ""';
/** The longest pause between two catalog summaries under a stream of changes. */
const MAX_SUMMARY_PAUSE_MS = 2000;
/** The feed's own blocking queries: the service list, the non-passing checks, the node list. */
const FEED_QUERIES = 3;
/** How long a catalog-wide move waits for a service watch to explain it (its answer is small, the lists' are MBs). */
const WATCH_GRACE_MS = 30;
/** Changed nodes looked up one by one per node-list answer; more are left to the sweep. */
const MAX_NODE_LOOKUPS = 16;
/** A source selecting at most this many services is small: its services are probed first. */
const SMALL_SELECTION = 64;
/** At most this many services are probed first, from the smallest sources on. */
const MAX_FIRST = 256;
/** At most this many of them are watched one by one (a source of up to 64 services has each of its own). */
const MAX_SERVICE_WATCHES = 64;
/** The wait of a service watch over HTTP/2 (Consul allows up to ten minutes). */
const MULTIPLEXED_WATCH_WAIT_MS = 5 * 60_000;
/** How long past its wait (and Consul's jitter) an HTTP/2 watch may go unanswered before it is ended. */
const STREAM_DEADLINE_MS = 10_000;

/** The services of small sources, smallest first, at most MAX_FIRST. */
function smallSelections(selections: ReadonlyArray<ReadonlySet<string>>): string[] {
  const out = new Set<string>();
  const small = selections.filter((s) => s.size <= SMALL_SELECTION).sort((a, b) => a.size - b.size);
  for (const selected of small) {
    if (out.size + selected.size > MAX_FIRST) break;
    for (const name of selected) out.add(name);
  }
  return [...out];
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
