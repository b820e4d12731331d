/**
 * A read of a whole catalog list (the summary, the node list) runs one at a time: a
 * request while it runs makes one more run after it, however many came, optionally after
 * a pause (so back-to-back runs leave the agent time for other work). A first request may
 * wait a moment before its run, for news that makes the run unneeded.
 */
export interface OneAtATimeOptions {
  readonly run: () => Promise<void>;
  /** Keeps the run's promise (the feed waits for its work on close). */
  readonly track: (p: Promise<unknown>) => void;
  /** True once the owner is closed: nothing runs again. */
  readonly closed: () => boolean;
  readonly now: () => number;
  /** How long to wait before the next run, given how long the last one took (none by default). */
  readonly pauseMs?: (tookMs: number) => number;
  /** How long a request that finds nothing running or pausing waits before its run (none by default). */
  readonly delayMs?: () => number;
}

export class OneAtATime {
  private readonly o: OneAtATimeOptions;
  private running = false;
  private again = false;
  private pause: NodeJS.Timeout | undefined;

  constructor(o: OneAtATimeOptions) {
    this.o = o;
  }

  request(): void {
    if (this.running || this.pause !== undefined) {
      this.again = true;
      return;
    }
    const delayMs = this.o.delayMs?.() ?? 0;
    if (delayMs > 0) this.wait(delayMs);
    else this.run();
  }

  private run(): void {
    this.running = true;
    this.again = false;
    const started = this.o.now();
    this.o.track(
      this.o.run().finally(() => {
        this.running = false;
        if (!this.again || this.o.closed()) return;
        const pauseMs = this.o.pauseMs?.(Math.max(0, this.o.now() - started)) ?? 0;
        if (pauseMs <= 0) this.run();
        else this.wait(pauseMs);
      }),
    );
  }

  /** Requests meanwhile are covered by the run that follows. */
  private wait(ms: number): void {
    this.pause = setTimeout(() => {
      this.pause = undefined;
      if (!this.o.closed()) this.run();
    }, ms);
    this.pause.unref();
  }

  cancel(): void {
    clearTimeout(this.pause);
    this.pause = undefined;
  }
}
