/**
 * Finds the services whose own index moved, for changes that move only the catalog's
 * index and that neither the catalog summary nor the node list shows (an instance
 * edited in place: same node, new service address, port, meta or tags): Consul's
 * filters cannot select by index, so each cached service is probed once. When passes
 * start is up to sweep-schedule.ts.
 *
 * One queue of names, a fixed number of workers (so probes never hold more than their
 * share of the read budget), and each moved service is reported as soon as its probe
 * answers, not at the end of the pass. A catalog move while a pass runs re-queues only
 * the names already probed: the others are still ahead in the queue and will see the
 * change. The services of small sources and names that moved recently go to the front,
 * so a small source's change never waits for a pass over a big one.
 */
export interface SweepHooks {
  /** The cached index of a service; undefined when it is no longer cached (skipped). */
  cachedIndex(name: string): number | undefined;
  /** The service's current X-Consul-Index, from an answer filtered to nothing. */
  probe(name: string): Promise<number>;
  /** A probe found the service's index moved. */
  moved(name: string): void;
  /** A probe failed: the queue is dropped (the caller decides what is still trusted). */
  failed(error: unknown): void;
  /** Every queued name was probed (or dropped) and no probe is in flight. */
  idle?(): void;
}

/** How many recently moved names go to the front of the next pass. */
const HOT_NAMES = 32;

export class Sweeper {
  private readonly hooks: SweepHooks;
  private readonly concurrency: number;
  private queue = new Set<string>();
  private readonly hot: string[] = [];
  private workers = 0;
  private readonly running = new Set<Promise<void>>();
  private stopped = false;

  constructor(hooks: SweepHooks, concurrency: number) {
    this.hooks = hooks;
    this.concurrency = Math.max(1, Math.floor(concurrency));
  }

  /**
   * Probes every name (again). Names still queued keep their place; `first` (the services
   * of small sources) and recently moved names go to the front.
   */
  enqueue(names: Iterable<string>, first: Iterable<string> = []): void {
    if (this.stopped) return;
    const queue = new Set(first);
    for (const n of this.hot) queue.add(n);
    for (const n of this.queue) queue.add(n);
    for (const n of names) queue.add(n);
    this.queue = queue;
    while (this.workers < this.concurrency && this.workers < this.queue.size) this.startWorker();
    // Nothing to probe: the pass is over at once (told asynchronously, like a finished one).
    if (this.workers === 0) queueMicrotask(() => this.tellIdle());
  }

  /** Names waiting for their probe. */
  get queued(): number {
    return this.queue.size;
  }

  /** Drops the queue; resolves when no probe is in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.clear();
    await Promise.allSettled([...this.running]);
  }

  private startWorker(): void {
    this.workers += 1;
    const p = this.work().finally(() => {
      this.workers -= 1;
      this.running.delete(p);
      this.tellIdle();
    });
    this.running.add(p);
  }

  private tellIdle(): void {
    if (!this.stopped && this.workers === 0 && this.queue.size === 0) this.hooks.idle?.();
  }

  private take(): string | undefined {
    for (const name of this.queue) {
      this.queue.delete(name);
      return name;
    }
    return undefined;
  }

  private async work(): Promise<void> {
    for (let name = this.take(); name !== undefined && !this.stopped; name = this.take()) {
      if (this.hooks.cachedIndex(name) === undefined) continue;
      let index: number;
      try {
        index = await this.hooks.probe(name);
      } catch (e) {
        if (this.stopped) return;
        this.queue.clear();
        this.hooks.failed(e);
        return;
      }
      const cached = this.hooks.cachedIndex(name);
      if (cached !== undefined && cached !== index) {
        this.remember(name);
        this.hooks.moved(name);
      }
    }
  }

  private remember(name: string): void {
    const at = this.hot.indexOf(name);
    if (at >= 0) this.hot.splice(at, 1);
    this.hot.unshift(name);
    if (this.hot.length > HOT_NAMES) this.hot.length = HOT_NAMES;
  }
}
