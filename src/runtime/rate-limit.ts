/** A token bucket: the client-side request limit (client-go's QPS and burst). */
import { setTimeout as sleep } from 'node:timers/promises';

export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  private readonly qps: number;
  private readonly burst: number;

  constructor(qps: number, burst: number) {
    this.qps = qps;
    this.burst = burst;
    this.tokens = burst;
  }

  /** Waits for a token; `signal` ends the wait (a deadline or a closed write fence). */
  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      signal?.throwIfAborted();
      await sleep(Math.ceil(((1 - this.tokens) / this.qps) * 1000), undefined, signal ? { signal } : undefined);
    }
  }
}
