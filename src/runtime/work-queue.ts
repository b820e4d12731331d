/**
 * A keyed work queue in the manner of client-go's: a key waits at most once (adds while
 * it waits are merged), a key being processed is never handed to a second worker (adds
 * meanwhile mark it dirty and it runs again afterwards), delayed adds keep the earliest
 * time, and failures back off exponentially with jitter per key.
 */
import type { ControllerMetrics } from '../metrics/controller-metrics.ts';
import { backoffDelay, type BackoffOptions } from './backoff.ts';


export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Map<string, number>();
  private readonly dirty = new Set<string>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private readonly addedAt = new Map<string, number>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;
  private readonly name: string;
  private readonly metrics: ControllerMetrics | undefined;
  private readonly backoff: BackoffOptions;

  constructor(name: string, metrics?: ControllerMetrics, backoff: BackoffOptions = { baseMs: 500, maxMs: 5 * 60_000, jitter: 0.2 }) {
    this.name = name;
    this.metrics = metrics;
    this.backoff = backoff;
  }

  get length(): number {
    return this.queue.length;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    const pending = this.delayed.get(key);
    if (pending) {
      clearTimeout(pending.timer);
      this.delayed.delete(key);
    }
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.metrics?.queueAdds.inc({ name: this.name });
    this.queued.add(key);
    this.addedAt.set(key, performance.now());
    const waiter = this.waiters.shift();
    if (waiter) {
      this.queued.delete(key);
      this.startProcessing(key);
      waiter(key);
    } else {
      this.queue.push(key);
    }
    this.metrics?.queueDepth.set({ name: this.name }, this.queue.length);
  }

  /** Adds key after delayMs; an earlier pending add wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = Date.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.delayed.set(key, { at, timer });
  }

  /**
   * Re-adds a failed key after its exponential backoff (with ±20% jitter), never later
   * than capMs (a source is retried at least as often as its interval).
   */
  addRateLimited(key: string, capMs = this.backoff.maxMs): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    this.metrics?.queueRetries.inc({ name: this.name });
    const delay = backoffDelay(n, { ...this.backoff, maxMs: Math.min(this.backoff.maxMs, capMs) });
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the failure count of key (after a success). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Waits for the next key; undefined once shut down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.queued.delete(key);
      this.startProcessing(key);
      this.metrics?.queueDepth.set({ name: this.name }, this.queue.length);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private startProcessing(key: string): void {
    const added = this.addedAt.get(key);
    if (added !== undefined) this.metrics?.queueDuration.observe({ name: this.name }, (performance.now() - added) / 1000);
    this.addedAt.delete(key);
    this.processing.set(key, performance.now());
  }

  /** Marks key processed; if it was added meanwhile it is queued again. */
  done(key: string): void {
    const started = this.processing.get(key);
    if (started !== undefined) this.metrics?.workDuration.observe({ name: this.name }, (performance.now() - started) / 1000);
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  longestRunningSeconds(): number {
    let oldest = Infinity;
    for (const t of this.processing.values()) oldest = Math.min(oldest, t);
    return oldest === Infinity ? 0 : (performance.now() - oldest) / 1000;
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }
}
