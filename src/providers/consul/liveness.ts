/**
 * Liveness of one Consul endpoint with a stated bound. Every answer from the endpoint
 * counts; when nothing answered for a while, a short status call (GET
 * /v1/status/leader, with its own deadline) asks. An endpoint that has not answered for
 * `downAfterMs` is down: sources reading it report ProviderReady=False at once instead
 * of waiting for a 60 s blocking query. It is up again at its next answer.
 */
import { ProviderError, isProviderError } from '../errors.ts';

export interface LivenessTiming {
  /** The stated bound: a frozen endpoint is reported within this time. */
  readonly boundMs: number;
}

export interface LivenessOptions extends LivenessTiming {
  readonly address: string;
  /** One status call; rejects when the endpoint did not answer properly. */
  probe(signal: AbortSignal): Promise<void>;
  onChange(alive: boolean): void;
}

/**
 * The bound splits into: declare down after 2/3 of it (the rest is for the reconcile
 * that writes the condition), probe when nothing answered for 1/5 of it, each probe
 * with a deadline of 1/5 of it, checked every 1/10 of it (at most every second).
 */
export function livenessSchedule(boundMs: number): { downAfterMs: number; probeAfterMs: number; probeTimeoutMs: number; tickMs: number } {
  return {
    downAfterMs: Math.round((boundMs * 2) / 3),
    probeAfterMs: Math.round(boundMs / 5),
    probeTimeoutMs: Math.round(boundMs / 5),
    tickMs: Math.min(1000, Math.round(boundMs / 10)),
  };
}

export class Liveness {
  private readonly opts: LivenessOptions;
  private readonly schedule: ReturnType<typeof livenessSchedule>;
  private lastAnswer = Date.now();
  private lastFailure: ProviderError | undefined;
  private aliveNow = true;
  private probing: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: LivenessOptions) {
    this.opts = opts;
    this.schedule = livenessSchedule(opts.boundMs);
  }

  get alive(): boolean {
    return this.aliveNow;
  }

  start(): void {
    if (this.timer) return;
    this.lastAnswer = Date.now();
    this.timer = setInterval(() => this.tick(), this.schedule.tickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.probing?.abort(new Error('liveness stopped'));
  }

  /** The endpoint answered (any HTTP answer, even an error status). */
  answered(): void {
    this.lastAnswer = Date.now();
    this.lastFailure = undefined;
    if (!this.aliveNow) {
      this.aliveNow = true;
      this.opts.onChange(true);
    }
  }

  /** The status call failed below HTTP (refused, reset, TLS, timed out) or found no leader. */
  private failed(error: unknown): void {
    if (isProviderError(error) && (error.kind === 'Unreachable' || error.kind === 'Timeout')) this.lastFailure = error;
  }

  /** The error snapshots report while the endpoint is down. */
  downError(): ProviderError {
    const kind = this.lastFailure?.kind === 'Unreachable' ? 'Unreachable' : 'Timeout';
    // A stable message: status is rewritten only when it changes, so no running count here.
    const silent = Math.round(this.schedule.downAfterMs / 1000);
    // The status call's own failure says why (refused, TLS, no leader, no answer); its wording does not vary.
    const detail = this.lastFailure ? `; last error: ${this.lastFailure.message}` : '';
    return new ProviderError('consul', kind, `Consul at ${this.opts.address} has not answered for over ${silent} s (liveness bound ${Math.round(this.opts.boundMs / 1000)} s)${detail}`, {
      ...(this.lastFailure ? { cause: this.lastFailure } : {}),
    });
  }

  private tick(): void {
    const silentFor = Date.now() - this.lastAnswer;
    if (this.aliveNow && silentFor >= this.schedule.downAfterMs) {
      this.aliveNow = false;
      this.opts.onChange(false);
    }
    if (!this.probing && silentFor >= this.schedule.probeAfterMs) void this.probe();
  }

  private async probe(): Promise<void> {
    const ctl = new AbortController();
    this.probing = ctl;
    const timer = setTimeout(() => ctl.abort(Object.assign(new Error('status call timed out'), { code: 'ETIMEDOUT' })), this.schedule.probeTimeoutMs);
    try {
      await this.opts.probe(ctl.signal);
      this.answered();
    } catch (e) {
      this.failed(
        ctl.signal.aborted && !isProviderError(e)
          ? new ProviderError('consul', 'Timeout', `GET /v1/status/leader: Consul at ${this.opts.address} did not answer within ${this.schedule.probeTimeoutMs} ms`)
          : e,
      );
    } finally {
      clearTimeout(timer);
      if (this.probing === ctl) this.probing = undefined;
    }
  }
}
