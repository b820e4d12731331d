/**
 * Leader election with a coordination.k8s.io Lease, with controller-runtime's timings
 * (lease 15 s, renew deadline 10 s, retry 2 s), fenced:
 *
 * - Every attempt (read, then create or replace) is aborted at its deadline: the renew
 *   deadline for a candidate, the fence deadline for the leader.
 * - The leader's write fence closes at (start of the last successful renew) + renew
 *   deadline, by a timer that does not wait for any request. A standby may take the
 *   lease only after it has seen the same record unchanged for the lease duration, on
 *   its own clock, from a moment after that renew was written. As renew deadline <
 *   lease duration, the old leader stops writing before anyone else can start; the
 *   difference is the margin for a write already sent to land.
 * - Leadership lost is lost for good: the fence never reopens and the replica never
 *   campaigns again. A replica shutting down keeps renewing while it finishes its work,
 *   but never acquires.
 * Writes carry the Lease's resourceVersion, so of two candidates racing only one
 * succeeds (409 for the other).
 */
import type { Logger } from '../metrics/logger.ts';
import { microTime, type Lease, type LeaseClient } from './lease.ts';
import type { WriteFence } from './write-fence.ts';

export interface LeaderElectionTimings {
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
}

export interface LeaderElectionOptions extends LeaderElectionTimings {
  readonly client: LeaseClient;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  /** Opened when leading, closed when leadership can no longer be confirmed. */
  readonly fence: WriteFence;
  readonly log: Logger;
  readonly onStartedLeading: () => void;
  /** Called once when leadership is lost (the fence is already closed). */
  readonly onStoppedLeading: () => void;
  readonly onLeaderStatus?: (leading: boolean) => void;
  /** Monotonic milliseconds for deadlines (tests pass Date.now under mock timers). */
  readonly now?: () => number;
  /** Wall-clock milliseconds for the Lease's timestamps. */
  readonly wallClock?: () => number;
}

export class LeaderElectionConfigError extends Error {
  override readonly name = 'LeaderElectionConfigError';
}

/** Checks controller-runtime's rule: lease duration > renew deadline > retry period > 0. */
export function checkTimings(t: Required<LeaderElectionTimings>): void {
  if (!(t.retryPeriodMs > 0 && t.renewDeadlineMs > t.retryPeriodMs && t.leaseDurationMs > t.renewDeadlineMs)) {
    throw new LeaderElectionConfigError(
      `leader election needs lease duration > renew deadline > retry period > 0 (got ${t.leaseDurationMs} ms, ${t.renewDeadlineMs} ms, ${t.retryPeriodMs} ms)`,
    );
  }
}

function httpCode(e: unknown): unknown {
  return (e as { code?: unknown }).code;
}

/** A wait that ends early when `signal` aborts (global timers, so mock timers drive it). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

type Attempt = 'acquired' | 'renewed' | 'held-by-other' | 'failed';

export class LeaderElector {
  private readonly o: LeaderElectionOptions;
  private readonly t: Required<LeaderElectionTimings>;
  private readonly now: () => number;
  private readonly wall: () => number;
  private leading = false;
  /** Lost leadership or stopped: never campaign again. */
  private finished = false;
  /** Shutting down: renew while leading, never acquire. */
  private campaigning = true;
  private lastRenew = 0;
  private fenceTimer: ReturnType<typeof setTimeout> | undefined;
  /** The record last seen, and when (our clock): a standby's notion of expiry. */
  private observed: { version: string; at: number } | undefined;
  private readonly stopLoop = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(options: LeaderElectionOptions) {
    this.o = options;
    this.t = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...stripUndefined(options) };
    checkTimings(this.t);
    this.now = options.now ?? (() => performance.now());
    this.wall = options.wallClock ?? (() => Date.now());
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    while (!this.finished && (this.campaigning || this.leading)) {
      const outcome = await this.attempt();
      if (this.finished) break;
      if (outcome === 'acquired' || outcome === 'renewed') this.confirm();
      else if (outcome === 'held-by-other' && this.leading) this.lose('the lease is held by another replica');
      await pause(this.t.retryPeriodMs, this.stopLoop.signal);
    }
  }

  /** One read-then-write, aborted at its deadline. */
  private async attempt(): Promise<Attempt> {
    const started = this.now();
    const deadline = this.leading ? this.lastRenew + this.t.renewDeadlineMs : started + this.t.renewDeadlineMs;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error('lease call exceeded the renew deadline')), Math.max(0, deadline - started));
    const onStop = (): void => abort.abort(new Error('stopping'));
    this.stopLoop.signal.addEventListener('abort', onStop, { once: true });
    try {
      const result = await this.tryAcquireOrRenew(started, abort.signal);
      // A success that arrives after its deadline is not trusted.
      return abort.signal.aborted ? 'failed' : result;
    } catch (e) {
      this.o.log.debug('lease request failed', { error: e });
      return 'failed';
    } finally {
      clearTimeout(timer);
      this.stopLoop.signal.removeEventListener('abort', onStop);
    }
  }

  /** A successful write at `started`: (re)arm the fence deadline; become leader if not yet. */
  private confirm(): void {
    const remaining = this.lastRenew + this.t.renewDeadlineMs - this.now();
    if (remaining <= 0) return;
    clearTimeout(this.fenceTimer);
    this.fenceTimer = setTimeout(() => this.lose('the lease was not renewed within the renew deadline'), remaining);
    if (this.leading) return;
    this.leading = true;
    this.o.fence.open();
    this.o.log.info('became leader', { lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity });
    this.o.onLeaderStatus?.(true);
    this.o.onStartedLeading();
  }

  /** Closes the fence first (aborting writes in flight), then tells the operator. For good. */
  private lose(why: string): void {
    if (!this.leading) return;
    this.o.fence.close(`leadership lost: ${why}`);
    const stopping = this.finished;
    this.leading = false;
    this.finished = true;
    clearTimeout(this.fenceTimer);
    this.stopLoop.abort();
    this.o.log.warn('lost leadership', { why });
    this.o.onLeaderStatus?.(false);
    if (!stopping) this.o.onStoppedLeading();
  }

  private leaseFor(base: Lease | undefined, startedWall: number): Lease {
    const { namespace, name, identity } = this.o;
    const spec = base?.spec ?? {};
    const nowIso = microTime(startedWall);
    const takeover = spec.holderIdentity !== identity;
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...base?.metadata, name, namespace },
      spec: {
        ...spec,
        holderIdentity: identity,
        // Rounded up: the record never promises less than our own lease duration.
        leaseDurationSeconds: Math.ceil(this.t.leaseDurationMs / 1000),
        renewTime: nowIso,
        ...(takeover ? { acquireTime: nowIso, leaseTransitions: base ? (spec.leaseTransitions ?? 0) + 1 : 0 } : {}),
      },
    };
  }

  private async tryAcquireOrRenew(started: number, signal: AbortSignal): Promise<Attempt> {
    const startedWall = this.wall();
    const lease = await this.o.client.getLease(this.o.namespace, this.o.name, signal);
    if (lease === undefined) {
      if (!this.campaigning) return 'failed';
      try {
        await this.o.client.createLease(this.leaseFor(undefined, startedWall), signal);
      } catch (e) {
        if (httpCode(e) === 409) return 'held-by-other'; // another candidate created it first
        throw e;
      }
      this.lastRenew = started;
      return 'acquired';
    }
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== this.o.identity) {
      if (!this.campaigning) return 'failed';
      if (holder !== '' && !this.expired(lease)) return 'held-by-other';
    } else if (!this.leading && !this.campaigning) {
      return 'failed';
    }
    try {
      await this.o.client.replaceLease(this.leaseFor(lease, startedWall), signal);
    } catch (e) {
      if (httpCode(e) === 409) return 'held-by-other'; // someone else wrote first
      throw e;
    }
    this.lastRenew = started;
    return holder === this.o.identity && this.leading ? 'renewed' : 'acquired';
  }

  /**
   * True when this record has not changed for its lease duration since we first saw it.
   * Our own clock and our own first sighting (after the holder wrote it): clock skew
   * between replicas cannot shorten the wait.
   */
  private expired(lease: Lease): boolean {
    const version = `${lease.metadata.resourceVersion ?? ''}/${lease.spec?.renewTime ?? ''}/${lease.spec?.holderIdentity ?? ''}`;
    const now = this.now();
    if (this.observed?.version !== version) this.observed = { version, at: now };
    const durationMs = (lease.spec?.leaseDurationSeconds ?? Math.ceil(this.t.leaseDurationMs / 1000)) * 1000;
    return now - this.observed.at > durationMs;
  }

  /** Shutting down: keep renewing while the operator finishes its work, never acquire. */
  stopCampaigning(): void {
    this.campaigning = false;
    if (!this.leading) this.stopLoop.abort();
  }

  /**
   * Stops for good: waits for `settled` (the writes in flight) while still renewing,
   * closes the fence, and when still leading gives the lease up so a standby takes over
   * at once. The lease is released only after the last write has ended.
   */
  async stop(settled: () => Promise<void> = async () => {}): Promise<void> {
    this.stopCampaigning();
    await settled();
    const wasLeading = this.leading && !this.finished;
    this.finished = true;
    this.o.fence.close('shutting down');
    await settled();
    this.stopLoop.abort();
    await this.loop;
    clearTimeout(this.fenceTimer);
    if (!wasLeading || !this.leading) return;
    this.leading = false;
    this.o.onLeaderStatus?.(false);
    await this.release();
  }

  /** Marks the lease free (holder empty), within what is left of the fence deadline. */
  private async release(): Promise<void> {
    const remaining = this.lastRenew + this.t.renewDeadlineMs - this.now();
    if (remaining <= 0) return;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error('release exceeded the renew deadline')), remaining);
    try {
      const lease = await this.o.client.getLease(this.o.namespace, this.o.name, abort.signal);
      if (lease?.spec?.holderIdentity === this.o.identity) {
        lease.spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(this.wall()) };
        await this.o.client.replaceLease(lease, abort.signal);
      }
    } catch (e) {
      this.o.log.warn('could not release the lease', { error: e });
    } finally {
      clearTimeout(timer);
    }
  }
}

function stripUndefined(t: LeaderElectionTimings): LeaderElectionTimings {
  return Object.fromEntries(Object.entries({ leaseDurationMs: t.leaseDurationMs, renewDeadlineMs: t.renewDeadlineMs, retryPeriodMs: t.retryPeriodMs }).filter(([, v]) => v !== undefined));
}
