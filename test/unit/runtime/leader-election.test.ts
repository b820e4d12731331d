/**
 * The elector's deadlines under mock timers, against an in-memory Lease store that can
 * make one replica's calls hang (a stalled apiserver connection): the fence closes at
 * last renew + renew deadline, before any standby can acquire; lease calls are aborted
 * at their deadline; a lost or stopping replica never campaigns again.
 */
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkTimings, LeaderElectionConfigError, LeaderElector } from '../../../src/runtime/leader-election.ts';
import type { Lease, LeaseClient } from '../../../src/runtime/lease.ts';
import { WriteFence } from '../../../src/runtime/write-fence.ts';
import { silentLogger } from '../../../src/metrics/logger.ts';

const LEASE = 15_000;
const RENEW = 10_000;
const RETRY = 2_000;

class Conflict extends Error {
  readonly code = 409;
}

interface Call {
  readonly who: string;
  readonly op: 'get' | 'create' | 'replace';
  readonly at: number;
}

/** One Lease in memory, with resourceVersions like the apiserver's; per-replica views. */
class LeaseStore {
  lease: Lease | undefined;
  private rv = 0;
  readonly calls: Call[] = [];
  readonly aborted: { who: string; at: number }[] = [];
  readonly hung = new Set<string>();
  /** Who held the lease, from when (fake-clock ms). */
  readonly holders: { who: string; at: number }[] = [];

  client(who: string): LeaseClient {
    const run = <T>(op: Call['op'], signal: AbortSignal, fn: () => T): Promise<T> => {
      this.calls.push({ who, op, at: Date.now() });
      if (this.hung.has(who)) {
        return new Promise((_, reject) => {
          signal.addEventListener('abort', () => {
            this.aborted.push({ who, at: Date.now() });
            reject(signal.reason);
          }, { once: true });
        });
      }
      try {
        return Promise.resolve(fn());
      } catch (e) {
        return Promise.reject(e);
      }
    };
    return {
      getLease: (_ns, _name, signal) => run('get', signal, () => structuredClone(this.lease)),
      createLease: (lease, signal) => run('create', signal, () => {
        if (this.lease) throw new Conflict('exists');
        return this.write(lease);
      }),
      replaceLease: (lease, signal) => run('replace', signal, () => {
        if (lease.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) throw new Conflict('stale');
        return this.write(lease);
      }),
    };
  }

  private write(lease: Lease): Lease {
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== (this.lease?.spec?.holderIdentity ?? '')) this.holders.push({ who: holder, at: Date.now() });
    this.lease = { ...structuredClone(lease), metadata: { ...lease.metadata, resourceVersion: String(++this.rv) } };
    return structuredClone(this.lease);
  }
}

interface Replica {
  readonly elector: LeaderElector;
  readonly fence: WriteFence;
  readonly log: string[];
  fenceClosedAt?: number;
}

function replica(store: LeaseStore, who: string): Replica {
  const fence = new WriteFence(false);
  const r: Replica = {
    fence,
    log: [],
    elector: new LeaderElector({
      client: store.client(who),
      namespace: 'ops',
      name: 'lock',
      identity: who,
      fence,
      log: silentLogger,
      leaseDurationMs: LEASE,
      renewDeadlineMs: RENEW,
      retryPeriodMs: RETRY,
      now: () => Date.now(),
      wallClock: () => Date.now(),
      onStartedLeading: () => r.log.push(`started@${Date.now()}`),
      onStoppedLeading: () => r.log.push(`stopped@${Date.now()}`),
    }),
  };
  fence.signal.addEventListener('abort', () => (r.fenceClosedAt = Date.now()));
  return r;
}

/** Lets promise chains run between timer ticks. */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Advances the mock clock in 100 ms steps. */
async function advance(ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 100) {
    mock.timers.tick(100);
    await flush();
  }
}

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 }));
afterEach(() => mock.timers.reset());

describe('leader election: fenced', () => {
  test('the first replica acquires and opens its fence; the other stands by with its fence closed', async () => {
    const store = new LeaseStore();
    const a = replica(store, 'a');
    const b = replica(store, 'b');
    a.elector.start();
    await flush();
    b.elector.start();
    await advance(30_000);
    assert.equal(a.elector.isLeader, true);
    assert.equal(a.fence.isOpen, true);
    assert.equal(b.elector.isLeader, false);
    assert.equal(b.fence.isOpen, false);
    assert.deepEqual(store.holders.map((h) => h.who), ['a']);
    assert.equal(store.calls.filter((c) => c.who === 'b' && c.op !== 'get').length, 0, 'the standby never writes a valid lease');
    await Promise.all([a.elector.stop(), b.elector.stop()]);
  });

  test('a leader whose calls hang closes its fence at last renew + renew deadline, before the standby can acquire', async () => {
    const store = new LeaseStore();
    const a = replica(store, 'a');
    const b = replica(store, 'b');
    a.elector.start();
    await flush();
    b.elector.start();
    await advance(5_000);
    assert.equal(a.elector.isLeader, true);
    const lastRenewByA = Math.max(...store.calls.filter((c) => c.who === 'a' && c.op === 'get').map((c) => c.at));
    store.hung.add('a');
    await advance(40_000);

    assert.ok(a.fenceClosedAt !== undefined, 'the fence closed');
    assert.equal(a.elector.isLeader, false);
    // The renew attempt that started after lastRenewByA hung; the fence deadline counts from the last successful one.
    assert.ok(a.fenceClosedAt <= lastRenewByA + RENEW, `closed ${a.fenceClosedAt - lastRenewByA} ms after the last renew began`);
    const takeover = store.holders.find((h) => h.who === 'b');
    assert.ok(takeover, 'the standby took over');
    assert.ok(a.fenceClosedAt < takeover.at, 'the old leader stopped writing before the standby acquired');
    assert.ok(takeover.at - lastRenewByA >= LEASE, `the standby waited the lease duration (${takeover.at - lastRenewByA} ms)`);
    assert.ok(store.aborted.some((x) => x.who === 'a' && x.at <= lastRenewByA + RENEW), 'the hung renew was aborted at the deadline');
    assert.deepEqual(a.log.map((l) => l.split('@')[0]), ['started', 'stopped']);
    await Promise.all([a.elector.stop(), b.elector.stop()]);
  });

  test('a replica that lost the lease never campaigns again, even when the lease is free', async () => {
    const store = new LeaseStore();
    const a = replica(store, 'a');
    a.elector.start();
    await advance(3_000);
    store.hung.add('a');
    await advance(RENEW + RETRY);
    assert.equal(a.elector.isLeader, false);
    store.hung.delete('a');
    store.lease = undefined;
    const callsBefore = store.calls.length;
    await advance(60_000);
    assert.equal(store.calls.length, callsBefore, 'no lease call after the loss');
    assert.equal(a.fence.isOpen, false, 'the fence never reopens');
    a.fence.open();
    assert.equal(a.fence.isOpen, false);
    await a.elector.stop();
  });

  test('a candidate\'s lease calls are aborted at the renew deadline', async () => {
    const store = new LeaseStore();
    store.hung.add('b');
    const b = replica(store, 'b');
    b.elector.start();
    await advance(RENEW + 500);
    const first = store.calls.find((c) => c.who === 'b');
    const abort = store.aborted.find((x) => x.who === 'b');
    assert.ok(first && abort);
    assert.equal(abort.at - first.at, RENEW);
    await b.elector.stop();
  });

  test('a replica shutting down renews while it finishes, never acquires, then releases after the last write', async () => {
    const store = new LeaseStore();
    const a = replica(store, 'a');
    const b = replica(store, 'b');
    a.elector.start();
    await flush();
    b.elector.start();
    await advance(3_000);
    b.elector.stopCampaigning();
    let finishWrites: () => void = () => {};
    const writes = new Promise<void>((resolve) => (finishWrites = resolve));
    const stopping = a.elector.stop(() => writes);
    await advance(30_000);
    assert.equal(a.fence.isOpen, true, 'writes go on while the last reconciles finish');
    assert.equal(store.lease?.spec?.holderIdentity, 'a', 'the lease is kept (renewed) meanwhile');
    finishWrites();
    await flush();
    await stopping;
    assert.equal(a.fence.isOpen, false);
    assert.equal(store.lease?.spec?.holderIdentity, '', 'released');
    await advance(10_000);
    assert.equal(store.holders.some((h) => h.who === 'b'), false, 'a replica that stopped campaigning does not take a free lease');
    await b.elector.stop();
  });

  test('a released lease is taken at once; an abandoned one only after the lease duration on the standby\'s own clock', async () => {
    const store = new LeaseStore();
    // A record renewed long ago, by a holder that is gone: a fresh replica still waits a full lease duration.
    store.lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'lock', namespace: 'ops', resourceVersion: '0' }, spec: { holderIdentity: 'gone', leaseDurationSeconds: 15, renewTime: '2001-01-01T00:00:00.000000Z' } };
    const b = replica(store, 'b');
    const startedAt = Date.now();
    b.elector.start();
    await advance(40_000);
    const took = store.holders.find((h) => h.who === 'b');
    assert.ok(took);
    assert.ok(took.at - startedAt > LEASE, `waited ${took.at - startedAt} ms`);
    await b.elector.stop();

    const free = new LeaseStore();
    free.lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'lock', namespace: 'ops', resourceVersion: '0' }, spec: { holderIdentity: '', leaseDurationSeconds: 1 } };
    const c = replica(free, 'c');
    const t0 = Date.now();
    c.elector.start();
    await advance(500);
    assert.ok((free.holders.find((h) => h.who === 'c')?.at ?? Infinity) - t0 < RETRY);
    await c.elector.stop();
  });

  test('timings must satisfy lease duration > renew deadline > retry period > 0', () => {
    assert.throws(() => checkTimings({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }), LeaderElectionConfigError);
    assert.throws(() => checkTimings({ leaseDurationMs: 15_000, renewDeadlineMs: 1_000, retryPeriodMs: 2_000 }), LeaderElectionConfigError);
    assert.doesNotThrow(() => checkTimings({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }));
  });
});
