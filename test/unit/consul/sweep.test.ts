/** The sweep queue: probe order, bounded concurrency, re-queueing, and what a failure does. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { Sweeper, type SweepHooks } from '../../../src/providers/consul/sweep.ts';

/** Probes that answer only when released, in the order they were sent; the cache holds index 1 for every name. */
class HeldProbes {
  readonly order: string[] = [];
  readonly failures: unknown[] = [];
  inFlight = 0;
  private readonly waiting: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private readonly current: Map<string, number>;
  constructor(current: Map<string, number>) {
    this.current = current;
  }

  async probe(name: string): Promise<number> {
    this.order.push(name);
    this.inFlight += 1;
    try {
      await new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
    } finally {
      this.inFlight -= 1;
    }
    return this.current.get(name) ?? 0;
  }

  async release(n = Infinity): Promise<void> {
    for (let i = 0; i < n && this.waiting.length > 0; i++) this.waiting.shift()?.resolve();
    for (let i = 0; i < 5; i++) await tick();
  }

  async fail(e: Error): Promise<void> {
    this.waiting.shift()?.reject(e);
    for (let i = 0; i < 5; i++) await tick();
  }
}

function names(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `s${String(i).padStart(2, '0')}`);
}

function setup(n: number, concurrency: number) {
  const indexes = new Map(names(n).map((x) => [x, 1]));
  const moved: string[] = [];
  const probes = new HeldProbes(indexes);
  const hooks: SweepHooks = {
    cachedIndex: (name) => (indexes.has(name) ? 1 : undefined),
    probe: (name) => probes.probe(name),
    moved: (name) => void moved.push(name),
    failed: (e) => void probes.failures.push(e),
  };
  return { indexes, moved, hooks: probes, sweeper: new Sweeper(hooks, concurrency) };
}

test('at most `concurrency` probes at a time; a moved service is reported when its probe answers', async () => {
  const { indexes, moved, hooks, sweeper } = setup(20, 3);
  indexes.set('s01', 2);
  sweeper.enqueue(names(20));
  await tick();
  assert.equal(hooks.inFlight, 3);
  await hooks.release(3);
  assert.deepEqual(moved, ['s01'], 'reported after the first three probes, not at the end of the pass');
  assert.equal(sweeper.queued, 14);
  await hooks.release();
  while (sweeper.queued > 0 || hooks.inFlight > 0) await hooks.release();
  assert.equal(hooks.order.length, 20, 'each service probed once');
  await sweeper.stop();
});

test('a new pass while one runs re-queues only what was already probed; small sources and recent movers go first', async () => {
  const { indexes, moved, hooks, sweeper } = setup(10, 2);
  indexes.set('s05', 2);
  sweeper.enqueue(names(10));
  await tick();
  while (moved.length === 0) await hooks.release(1);
  const probedSoFar = hooks.order.length;
  // A second change: every name again, with s09 as a small source's service.
  sweeper.enqueue(names(10), ['s09']);
  await tick();
  await hooks.release();
  while (sweeper.queued > 0 || hooks.inFlight > 0) await hooks.release();
  const second = hooks.order.slice(probedSoFar);
  assert.ok(second.slice(0, 2).includes('s09'), `the small source's service is probed at once: ${second.join(',')}`);
  assert.ok(second.slice(0, 3).includes('s05'), `the service that just moved comes next: ${second.join(',')}`);
  assert.equal(hooks.order.length, 10 + probedSoFar, 'the names not yet probed kept their place: each probed once more at most');
  await sweeper.stop();
});

test('a failed probe drops the queue and reports the error once', async () => {
  const { hooks, sweeper } = setup(10, 1);
  sweeper.enqueue(names(10));
  await tick();
  await hooks.fail(new Error('agent gone'));
  assert.equal(hooks.failures.length, 1);
  assert.equal(sweeper.queued, 0);
  await sweeper.stop();
});
