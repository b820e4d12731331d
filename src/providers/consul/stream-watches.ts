/**
 * Blocking queries on single services as HTTP/2 streams (an https endpoint that offers
 * h2): the same job as service-watches.ts, for every selected service of a feed, so
 * thousands at once. What a waiting watch holds is what decides the operator's memory at
 * fleet size, so a watch here is one small record and its stream: callbacks instead of a
 * chain of promises, no abort signal or timer per query (one sweep every
 * DEADLINE_SWEEP_MS ends queries past their deadline; the sessions' pings end hung
 * connections sooner). Consul's index rules and backoff are those of blocking-loop.ts.
 */
import { backoffDelay, type BackoffOptions } from '../../runtime/backoff.ts';
import type { ConsulResponse } from './client.ts';
import { isSpuriousReturn, nextIndex } from './index-rules.ts';

/** A query that returns faster than this without a new index did not block. */
const MIN_BLOCK_MS = 100;
const DEADLINE_SWEEP_MS = 15_000;

export interface StreamWatchHooks {
  /** Sends one blocking query on the service from `index`; returns its cancel function. Exactly one callback runs, unless cancelled. */
  send(service: string, index: number, onAnswer: (res: ConsulResponse) => void, onError: (error: unknown) => void): () => void;
  /** Each answer, and when its query was sent (now()). */
  answered(service: string, answer: ConsulResponse, sentAt: number): void;
  /** A watch failed (the first of consecutive failures); it retries with backoff. */
  failed(service: string, error: unknown): void;
  /** The index of the service's trusted cached answer, if any: the first query blocks from it. */
  cachedIndex(service: string): number | undefined;
  /** Monotonic time in ms, the feed's clock. */
  now(): number;
}

export interface StreamWatchTuning {
  /** The wait each query asks for; a query unanswered deadlineMs after that is ended and retried. */
  readonly waitMs: number;
  readonly deadlineMs: number;
  readonly backoff: BackoffOptions;
}

interface StreamWatch {
  index: number;
  failures: number;
  /** Date.now() when the query under way was sent (index rules measure real elapsed time). */
  sentAt: number;
  /** The feed's clock when it was sent. */
  sentAtMono: number;
  cancel: (() => void) | undefined;
  retry: NodeJS.Timeout | undefined;
}

export class StreamWatches {
  private readonly hooks: StreamWatchHooks;
  private readonly tuning: StreamWatchTuning;
  private readonly watches = new Map<string, StreamWatch>();
  private sweep: NodeJS.Timeout | undefined;

  constructor(hooks: StreamWatchHooks, tuning: StreamWatchTuning) {
    this.hooks = hooks;
    this.tuning = tuning;
  }

  get watched(): ReadonlySet<string> {
    return new Set(this.watches.keys());
  }

  has(service: string): boolean {
    return this.watches.has(service);
  }

  /** Watches exactly these services: new ones start, the others stop. */
  set(services: readonly string[]): void {
    const wanted = new Set(services);
    for (const name of [...this.watches.keys()]) if (!wanted.has(name)) this.stop(name);
    for (const name of wanted) {
      if (this.watches.has(name)) continue;
      const w: StreamWatch = { index: this.hooks.cachedIndex(name) ?? 0, failures: 0, sentAt: 0, sentAtMono: 0, cancel: undefined, retry: undefined };
      this.watches.set(name, w);
      this.ask(name, w);
    }
    if (this.watches.size > 0 && !this.sweep) {
      this.sweep = setInterval(() => this.endOverdue(), DEADLINE_SWEEP_MS);
      this.sweep.unref();
    } else if (this.watches.size === 0 && this.sweep) {
      clearInterval(this.sweep);
      this.sweep = undefined;
    }
  }

  close(): void {
    this.set([]);
  }

  private stop(name: string): void {
    const w = this.watches.get(name);
    if (!w) return;
    this.watches.delete(name);
    clearTimeout(w.retry);
    w.cancel?.();
  }

  private ask(name: string, w: StreamWatch): void {
    const sent = w.index;
    w.sentAt = Date.now();
    w.sentAtMono = this.hooks.now();
    w.retry = undefined;
    w.cancel = this.hooks.send(
      name,
      sent,
      (res) => {
        if (this.watches.get(name) !== w) return;
        w.cancel = undefined;
        w.index = nextIndex(sent, res.index);
        w.failures = 0;
        this.hooks.answered(name, res, w.sentAtMono);
        if (this.watches.get(name) !== w) return;
        if (isSpuriousReturn(sent, res.index, Date.now() - w.sentAt, MIN_BLOCK_MS)) this.later(name, w, 1);
        else this.ask(name, w);
      },
      (e) => {
        if (this.watches.get(name) !== w) return;
        w.cancel = undefined;
        this.failedOnce(name, w, e);
      },
    );
  }

  private failedOnce(name: string, w: StreamWatch, e: unknown): void {
    w.failures += 1;
    if (w.failures === 1) this.hooks.failed(name, e);
    // After an error start over: the server may have restarted with lower indexes.
    w.index = 0;
    this.later(name, w, w.failures - 1);
  }

  private later(name: string, w: StreamWatch, attempt: number): void {
    w.retry = setTimeout(() => {
      if (this.watches.get(name) === w) this.ask(name, w);
    }, backoffDelay(attempt, this.tuning.backoff));
  }

  /** Ends the queries Consul should have answered long ago (wait, its jitter of wait/16, and the deadline). */
  private endOverdue(): void {
    const overdueAt = Date.now() - this.tuning.waitMs - this.tuning.waitMs / 16 - this.tuning.deadlineMs;
    for (const [name, w] of this.watches) {
      if (!w.cancel || w.sentAt > overdueAt) continue;
      const cancel = w.cancel;
      w.cancel = undefined;
      cancel();
      this.failedOnce(name, w, Object.assign(new Error(`service ${name}: no answer within its wait`), { code: 'ETIMEDOUT' }));
    }
  }
}
