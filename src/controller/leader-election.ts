/**
 * Leader election with a coordination.k8s.io Lease, with controller-runtime's timings
 * (lease 15 s, renew deadline 10 s, retry 2 s). Writes carry the Lease's
 * resourceVersion, so of two candidates racing only one succeeds (409 for the other).
 * Leases go through the generic object API as plain JSON: the typed client serialises
 * MicroTime with milliseconds, which the apiserver rejects (it wants microseconds).
 */
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../metrics/logger.ts';

export interface LeaderElectionOptions {
  readonly kc: KubeConfig;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  readonly log: Logger;
  readonly onStartedLeading: () => void;
  /** Called once when leadership is lost (the caller should stop writing at once). */
  readonly onStoppedLeading: () => void;
  readonly onLeaderStatus?: (leading: boolean) => void;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

/** RFC 3339 with microseconds, as metav1.MicroTime requires. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

const LEASES = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' } as const;

function isHttpStatus(e: unknown, code: number): boolean {
  const c = (e as { code?: unknown }).code;
  return c === code;
}

export class LeaderElector {
  private readonly o: Required<Omit<LeaderElectionOptions, 'onLeaderStatus'>> & Pick<LeaderElectionOptions, 'onLeaderStatus'>;
  private readonly api: CustomObjectsApi;
  private leading = false;
  private stopped = false;
  private lastRenew = 0;
  private loop: Promise<void> | undefined;

  constructor(options: LeaderElectionOptions) {
    this.o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...options };
    this.api = options.kc.makeApiClient(CustomObjectsApi);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const now = Date.now();
      let ok = false;
      try {
        ok = await this.tryAcquireOrRenew(now);
      } catch (e) {
        this.o.log.debug('lease request failed', { error: e });
      }
      if (ok) {
        this.lastRenew = now;
        if (!this.leading && !this.stopped) {
          this.leading = true;
          this.o.log.info('became leader', { lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity });
          this.o.onLeaderStatus?.(true);
          this.o.onStartedLeading();
        }
      } else if (this.leading && Date.now() - this.lastRenew > this.o.renewDeadlineMs) {
        this.lose('could not renew the lease within the renew deadline');
      }
      await sleep(this.o.retryPeriodMs);
    }
  }

  private lose(why: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.o.log.warn('lost leadership', { why });
    this.o.onLeaderStatus?.(false);
    this.o.onStoppedLeading();
  }

  private async tryAcquireOrRenew(now: number): Promise<boolean> {
    const { namespace, name, identity } = this.o;
    const nowIso = microTime(now);
    let lease: Lease;
    try {
      lease = (await this.api.getNamespacedCustomObject({ ...LEASES, namespace, name })) as Lease;
    } catch (e) {
      if (!isHttpStatus(e, 404)) throw e;
      const body: Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace },
        spec: { holderIdentity: identity, leaseDurationSeconds: Math.round(this.o.leaseDurationMs / 1000), acquireTime: nowIso, renewTime: nowIso, leaseTransitions: 0 },
      };
      try {
        await this.api.createNamespacedCustomObject({ ...LEASES, namespace, body });
      } catch (err) {
        if (isHttpStatus(err, 409)) return false; // another candidate created it first
        throw err;
      }
      return true;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const duration = (spec.leaseDurationSeconds ?? 15) * 1000;
    const expired = renewed + duration < now;
    if (holder !== identity && holder !== '' && !expired) {
      if (this.leading) this.lose(`lease held by ${holder}`);
      return false;
    }
    const takeover = holder !== identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: Math.round(this.o.leaseDurationMs / 1000),
      renewTime: nowIso,
      ...(takeover ? { acquireTime: nowIso, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    try {
      await this.api.replaceNamespacedCustomObject({ ...LEASES, namespace, name, body: lease });
      return true;
    } catch (e) {
      if (isHttpStatus(e, 409)) return false; // someone else wrote first
      throw e;
    }
  }

  /** Stops campaigning; when leading, gives the lease up so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    if (!this.leading) return;
    this.leading = false;
    this.o.onLeaderStatus?.(false);
    try {
      const ref = { ...LEASES, namespace: this.o.namespace, name: this.o.name };
      const lease = (await this.api.getNamespacedCustomObject(ref)) as Lease;
      if (lease.spec?.holderIdentity === this.o.identity) {
        lease.spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(Date.now()) };
        await this.api.replaceNamespacedCustomObject({ ...ref, body: lease });
      }
    } catch (e) {
      this.o.log.warn('could not release the lease', { error: e });
    }
  }
}
