/**
 * Everything the operator opens to one Consul endpoint: one client, one connection
 * budget and one liveness watch, shared by every source that reads the endpoint.
 *
 * The budget (`maxConnections`, the `--consul-max-connections-per-agent` flag) is
 * split so that nothing starves: one socket for the liveness status call, a quarter
 * for non-blocking reads (snapshots, re-reads, probes), the rest for blocking queries:
 * the feeds' own, and watches of single services (service-watches.ts), which are
 * granted only what the feeds leave free, so nothing takes turns. Over HTTP/2 those
 * free slots become sessions (at most MAX_H2_SESSIONS) and each watch a stream of one.
 * The client's keep-alive agent holds the same total, so the operator never has more
 * sockets open to the endpoint than the cap (the sessions stand in for the blocking
 * sockets the watches would otherwise hold).
 */
import type { ProviderMetrics } from '../../metrics/provider-metrics.ts';
import { ProviderError, isProviderError } from '../errors.ts';
import { ConsulClient, type ConsulEndpoint, type ConsulResponse, type Query, type StreamRequest } from './client.ts';
import { Liveness } from './liveness.ts';
import { Semaphore } from '../../runtime/concurrency.ts';
import { withLinkedSignal } from '../../runtime/linked-signal.ts';

export interface PoolLimits {
  readonly maxConnections: number;
  readonly livenessBoundMs: number;
  /** Watch every selected service over HTTP/2 when an https endpoint offers it (default true; costs memory per service). */
  readonly http2Watches?: boolean;
}

export const DEFAULT_POOL_LIMITS: PoolLimits = { maxConnections: 100, livenessBoundMs: 15_000 };

/** Blocking slots never granted to service watches, beyond the queries of the feeds running: room for new feeds. */
const FEED_QUERIES_HEADROOM = 6;

/**
 * HTTP/2 sessions at most for multiplexed service watches (each carries the streams the
 * server allows, at most 250): 8,000 watches. They come out of the blocking share.
 */
export const MAX_H2_SESSIONS = 32;

/** The smallest budget that leaves one socket each for the status call, reads and blocking queries. */
export const MIN_CONNECTIONS = 3;

export function splitBudget(maxConnections: number): { reads: number; blocking: number } {
  const total = Math.max(MIN_CONNECTIONS, Math.floor(maxConnections));
  const reads = Math.max(1, Math.floor(total / 4));
  return { reads, blocking: total - reads - 1 };
}

export interface PoolRequest {
  readonly operation: string;
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  readonly token?: string;
  /** The body as bytes, not parsed (ConsulClient's raw mode). */
  readonly raw?: boolean;
}

const STATUS_TIMEOUT_FLOOR_MS = 200;
/** A server that did not offer HTTP/2 (or could not be reached) is asked again after this long. */
const PROBE_AGAIN_MS = 5 * 60_000;
/** Wait of a blocking query while others wait for its slot. */
const TURN_WAIT_MS = 5000;

export class AgentPool {
  readonly client: ConsulClient;
  private readonly liveness: Liveness;
  /** Non-blocking requests that may be in flight at once. */
  readonly readSlots: number;
  private readonly reads: Semaphore;
  private readonly blocking: Semaphore;
  private readonly blockingSlots: number;
  /** Blocking queries of the feeds that watch (three each), and slots granted to service watches. */
  private feedQueries = 0;
  private watchesGranted = 0;
  private readonly listeners = new Set<(alive: boolean) => void>();
  /** Aborted when the endpoint goes down: reads in flight fail at once instead of at their deadline. */
  private down = new AbortController();
  /** Streams per HTTP/2 session when service watches are multiplexed; 0 while they are not (or not yet known). */
  private streamsPerSession = 0;
  private probing: Promise<void> | undefined;
  /** When a probe last found no HTTP/2 (or failed): the next waits PROBE_AGAIN_MS. */
  private probedWithoutH2At = -Infinity;
  private readonly capacityListeners = new Set<() => void>();

  constructor(endpoint: ConsulEndpoint, limits: PoolLimits, metrics?: ProviderMetrics) {
    const budget = splitBudget(limits.maxConnections);
    this.client = new ConsulClient({
      ...endpoint,
      maxConnections: budget.reads + budget.blocking + 1,
      ...(limits.http2Watches !== false ? { maxH2Sessions: () => this.h2SessionsAllowed() } : {}),
      ...(metrics ? { metrics } : {}),
    });
    this.readSlots = budget.reads;
    this.reads = new Semaphore(budget.reads);
    this.blocking = new Semaphore(budget.blocking);
    this.blockingSlots = budget.blocking;
    this.liveness = new Liveness({
      address: this.client.address,
      boundMs: limits.livenessBoundMs,
      probe: (signal) => this.statusLeader(signal, Math.max(STATUS_TIMEOUT_FLOOR_MS, limits.livenessBoundMs / 5)),
      onChange: (alive) => {
        if (alive) this.down = new AbortController();
        if (alive && this.capacityListeners.size > 0) this.probeMultiplexing();
        else this.down.abort(this.liveness.downError());
        for (const l of this.listeners) l(alive);
      },
    });
    this.liveness.start();
  }

  get alive(): boolean {
    return this.liveness.alive;
  }

  downError(): ProviderError {
    return this.liveness.downError();
  }

  /** Calls fn when the endpoint goes down or comes back; returns the unsubscribe function. */
  onLiveness(fn: (alive: boolean) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** A feed starts or stops its own blocking queries: service watches never take their slots. */
  feedQueriesChanged(delta: number): void {
    this.feedQueries = Math.max(0, this.feedQueries + delta);
  }

  /**
   * Whether service watches travel as HTTP/2 streams (an https endpoint that offers h2):
   * then thousands fit in a few sockets, else each holds a socket of the blocking share.
   */
  get multiplexed(): boolean {
    return this.streamsPerSession > 0;
  }

  /** Calls fn when the room for service watches grows (HTTP/2 found); returns the unsubscribe function. */
  onWatchCapacity(fn: () => void): () => void {
    this.capacityListeners.add(fn);
    return () => this.capacityListeners.delete(fn);
  }

  /**
   * Grants up to `wanted` service watches; returns how many. Over HTTP/1.1 each is a
   * blocking slot of those the feeds leave free; over HTTP/2 each is a stream of the
   * sessions those slots allow. The first claim on an https endpoint that `couldUse`
   * more than none (all the feed's services) finds out which.
   */
  claimWatches(wanted: number, couldUse = wanted): number {
    if (couldUse > 0) this.probeMultiplexing();
    const capacity = this.multiplexed ? this.h2SessionsAllowed() * this.streamsPerSession : this.blockingSlots - this.feedQueries - FEED_QUERIES_HEADROOM;
    const granted = Math.max(0, Math.min(wanted, capacity - this.watchesGranted));
    this.watchesGranted += granted;
    return granted;
  }

  releaseWatches(granted: number): void {
    this.watchesGranted = Math.max(0, this.watchesGranted - granted);
  }

  /** A non-blocking GET within the read budget. */
  async read(path: string, query: Query, req: PoolRequest): Promise<ConsulResponse> {
    if (!this.alive) throw this.downError();
    return withLinkedSignal([req.signal, this.down.signal], async (signal) => {
      await this.reads.acquire(signal);
      try {
        return await this.observe(this.client.get(path, query, { ...req, signal }));
      } finally {
        this.reads.release();
      }
    });
  }

  /**
   * A service watch's blocking query on an HTTP/2 stream (the endpoint multiplexes), within
   * the streams claimWatches granted; by callback, see ConsulClient.stream.
   */
  watchStream(path: string, query: Query, req: StreamRequest, onAnswer: (res: ConsulResponse) => void, onError: (e: ProviderError) => void): () => void {
    return this.client.stream(
      path,
      query,
      req,
      (res) => {
        this.liveness.answered();
        onAnswer(res);
      },
      (e) => {
        if (e.kind !== 'Unreachable' && e.kind !== 'Timeout') this.liveness.answered();
        onError(e);
      },
    );
  }

  /** A blocking GET within the blocking budget. */
  async block(path: string, query: Query, req: PoolRequest & { readonly index: number; readonly waitMs: number }): Promise<ConsulResponse> {
    await this.blocking.acquire(req.signal);
    // More read scopes than blocking slots: the queries take turns, each waiting briefly.
    const waitMs = this.blocking.queued > 0 ? Math.min(req.waitMs, TURN_WAIT_MS) : req.waitMs;
    try {
      return await this.observe(this.client.get(path, query, { ...req, blocking: { index: req.index, waitMs } }));
    } finally {
      this.blocking.release();
    }
  }

  close(): void {
    this.liveness.stop();
    this.listeners.clear();
    this.capacityListeners.clear();
    this.client.close();
  }

  /** Sessions the blocking slots left by the feeds allow (HTTP/1.1 watches take none then). */
  private h2SessionsAllowed(): number {
    return Math.max(0, Math.min(MAX_H2_SESSIONS, this.blockingSlots - this.feedQueries - FEED_QUERIES_HEADROOM));
  }

  /** Finds out once whether the endpoint speaks HTTP/2 (again after a failed try, when a watch is next claimed). */
  private probeMultiplexing(): void {
    if (this.multiplexed || this.probing || !this.alive || performance.now() - this.probedWithoutH2At < PROBE_AGAIN_MS) return;
    this.probing = this.client.multiplexing().then((streams) => {
      this.probing = undefined;
      if (streams === 0) this.probedWithoutH2At = performance.now();
      if (streams === 0 || this.streamsPerSession > 0) return;
      this.streamsPerSession = streams;
      for (const fn of this.capacityListeners) fn();
    });
  }

  private async observe(p: Promise<ConsulResponse>): Promise<ConsulResponse> {
    try {
      const res = await p;
      this.liveness.answered();
      return res;
    } catch (e) {
      // An HTTP error is an answer; a failure below HTTP is not (the status call says why).
      if (isProviderError(e) && e.kind !== 'Unreachable' && e.kind !== 'Timeout') this.liveness.answered();
      throw e;
    }
  }

  /** The status call: needs no token, and an empty answer means the servers have no leader. */
  private async statusLeader(signal: AbortSignal, timeoutMs: number): Promise<void> {
    const res = await this.client.get('/v1/status/leader', [], { operation: 'status_leader', signal, timeoutMs });
    if (typeof res.body !== 'string' || res.body === '') {
      throw new ProviderError('consul', 'Unreachable', `GET /v1/status/leader: Consul at ${this.client.address} has no cluster leader`);
    }
  }
}
