/**
 * When the sweep (sweep.ts) runs. Additions and removals are found from the catalog
 * summary and node changes from the node list; the sweep is the safety net for in-place
 * edits (same node, same instance count: service address, port, meta, tags), which
 * move only the catalog's index. So a pass starts only when the catalog moved since the
 * last pass began, and at most once per `everyMs`: under churn its cost is capped, and a
 * move waits at most everyMs plus one pass to be covered.
 */
export interface SweepScheduleHooks {
  /** Monotonic time in ms. */
  now(): number;
  /** The least time between the starts of two passes. */
  everyMs(): number;
  /** Starts a pass; the owner calls passEnded() when it is done (also when it failed). */
  startPass(): void;
}

export class SweepSchedule {
  private readonly hooks: SweepScheduleHooks;
  private lastStart = -Infinity;
  /** The oldest move no pass has started since. */
  private pendingSince: number | undefined;
  /** The oldest move the running pass covers. */
  private runningSince: number | undefined;
  private running = false;
  private urgent = false;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Infinity;
  private stopped = false;

  constructor(hooks: SweepScheduleHooks) {
    this.hooks = hooks;
  }

  /** The catalog moved: a pass will look (no sooner than everyMs after the last one began, unless `now`). */
  moved(now = false): void {
    if (this.stopped) return;
    this.pendingSince ??= this.hooks.now();
    if (now) this.urgent = true;
    this.plan();
  }

  /** everyMs() may have become shorter (a source with a shorter interval came): a waiting pass may start sooner. */
  periodChanged(): void {
    this.plan();
  }

  passEnded(): void {
    this.running = false;
    this.runningSince = undefined;
    this.plan();
  }

  /** Since when a move waits for a pass to cover it; undefined when none does. */
  get uncoveredSince(): number | undefined {
    if (this.pendingSince === undefined) return this.runningSince;
    if (this.runningSince === undefined) return this.pendingSince;
    return Math.min(this.pendingSince, this.runningSince);
  }

  get passRunning(): boolean {
    return this.running;
  }

  stop(): void {
    this.stopped = true;
    this.clearTimer();
  }

  private plan(): void {
    if (this.stopped || this.running || this.pendingSince === undefined) return;
    const now = this.hooks.now();
    const due = this.urgent ? now : this.lastStart + this.hooks.everyMs();
    if (due <= now) {
      this.clearTimer();
      this.start();
      return;
    }
    // A timer set for later (the period was longer then, e.g. before a source with a shorter interval came) moves up.
    if (this.timer && this.timerDue <= due) return;
    this.clearTimer();
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Infinity;
      this.plan();
    }, due - now);
    this.timer.unref();
  }

  private clearTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
  }

  private start(): void {
    this.running = true;
    this.urgent = false;
    this.lastStart = this.hooks.now();
    this.runningSince = this.pendingSince;
    this.pendingSince = undefined;
    this.hooks.startPass();
  }
}
