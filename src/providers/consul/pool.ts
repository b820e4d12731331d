/**
 * Everything the operator opens to one Consul endpoint: one client, one connection
 * budget and one liveness watch, shared by every source that reads the endpoint.
 *
 * The budget (`maxConnections`, the `--consul-max-connections-per-agent` flag) is
 * split so that nothing starves: one socket for the liveness status call, a quarter
 * for non-blocking reads (snapshots, re-reads, probes), the rest for blocking queries:
 * the feeds' own, and watches of single services (service-watches.ts), which are
 * granted only what the feeds leave free, so nothing takes turns.
 * The client's keep-alive agent holds the same total, so the operator never has more
 * sockets open to the endpoint than the cap.
 */
import type { ProviderMetrics } from '../../metrics/provider-metrics.ts';
import { ProviderError, isProviderError } from '../errors.ts';
import { ConsulClient, type ConsulEndpoint, type ConsulResponse, type Query } from './client.ts';
import { Liveness } from './liveness.ts';
import { Semaphore } from '../../runtime/concurrency.ts';
import { withLinkedSignal } from '../../runtime/linked-signal.ts';

export interface PoolLimits {
  readonly maxConnections: number;
  readonly livenessBoundMs: number;
}

export const DEFAULT_POOL_LIMITS: PoolLimits = { maxConnections: 100, livenessBoundMs: 15_000 };

/** Blocking slots never granted to service watches, beyond the queries of the feeds running: room for new feeds. */
const FEED_QUERIES_HEADROOM = 6;

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

  constructor(endpoint: ConsulEndpoint, limits: PoolLimits, metrics?: ProviderMetrics) {
    const budget = splitBudget(limits.maxConnections);
    this.client = new ConsulClient({ ...endpoint, maxConnections: budget.reads + budget.blocking + 1, ...(metrics ? { metrics } : {}) });
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

  /** Grants up to `wanted` blocking slots to service watches, of those the feeds leave free; returns how many. */
  claimWatches(wanted: number): number {
    const free = this.blockingSlots - this.feedQueries - FEED_QUERIES_HEADROOM - this.watchesGranted;
    const granted = Math.max(0, Math.min(wanted, free));
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
    this.client.close();
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
