/**
 * Blocking queries on single services, for the services of small sources (over HTTP/2,
 * of all sources). A change to one of them (an instance added, removed or re-addressed,
 * a check flip, its node changed) answers its own query at once: no catalog summary,
 * node list or sweep, whose cost on the agent grows with the whole catalog, stands
 * between the change and the source. Each watch holds a blocking connection for its
 * whole life (over HTTP/2, a stream), so the feed starts only as many as the endpoint's
 * pool grants (AgentPool.claimWatches); the others' changes arrive through the feed's
 * catalog-wide queries, as every service's do.
 *
 * An answer carries the service's whole health: the feed takes it as the new cached
 * answer, with no second read. The feed's freshness never rests on these watches (the
 * catalog-wide queries confirm the cache), so they wait the longest time the tuning
 * allows (over HTTP/2, five minutes): a quiet watch costs one request per wait, not one
 * per share of the interval.
 */
import type { ConsulResponse } from './client.ts';
import { runBlockingLoop, type BlockingTuning } from './blocking-loop.ts';

export interface WatchHooks {
  /** One blocking query on the service from `index` (0: answer at once). */
  query(service: string, index: number, signal: AbortSignal): Promise<ConsulResponse>;
  /** Each answer, and when its query was sent (now()): the feed takes it when it differs from its cached one. */
  answered(service: string, answer: ConsulResponse, sentAt: number): void;
  /** The index of the service's cached answer, if any: the watch's first query blocks from it. */
  cachedIndex(service: string): number | undefined;
  /** Monotonic time in ms, the feed's clock. */
  now(): number;
  /** A watch failed (the first of consecutive failures); it retries with backoff. */
  failed(service: string, error: unknown): void;
}

interface Watch {
  readonly stop: AbortController;
  readonly running: Promise<void>;
}

export class ServiceWatches {
  private readonly hooks: WatchHooks;
  private readonly tuning: BlockingTuning;
  private readonly watches = new Map<string, Watch>();

  constructor(hooks: WatchHooks, tuning: BlockingTuning) {
    this.hooks = hooks;
    this.tuning = tuning;
  }

  /** The services watched now. */
  get watched(): ReadonlySet<string> {
    return new Set(this.watches.keys());
  }

  has(service: string): boolean {
    return this.watches.has(service);
  }

  /** Watches exactly these services: new ones start, the others stop. */
  set(services: readonly string[]): void {
    const wanted = new Set(services);
    for (const [name, watch] of this.watches) {
      if (wanted.has(name)) continue;
      watch.stop.abort(new Error('service no longer watched'));
      this.watches.delete(name);
    }
    for (const name of wanted) if (!this.watches.has(name)) this.watches.set(name, this.start(name));
  }

  /** Stops every watch; resolves when none has a query in flight. */
  async close(): Promise<void> {
    const running = [...this.watches.values()].map((w) => {
      w.stop.abort(new Error('service watches closed'));
      return w.running;
    });
    this.watches.clear();
    await Promise.allSettled(running);
  }

  private start(name: string): Watch {
    const stop = new AbortController();
    let sentAt = 0;
    // Blocking from the cached answer's index, not answering at once: thousands of watches
    // starting together (over HTTP/2) would otherwise bring every service's answer again.
    const running = runBlockingLoop({
      signal: stop.signal,
      tuning: this.tuning,
      firstIndex: this.hooks.cachedIndex(name) ?? 0,
      query: (index, signal) => {
        sentAt = this.hooks.now();
        return this.hooks.query(name, index, signal);
      },
      onAnswer: (res) => this.hooks.answered(name, res, sentAt),
      onError: (e, failures) => {
        if (failures === 1) this.hooks.failed(name, e);
      },
    });
    return { stop, running };
  }
}
