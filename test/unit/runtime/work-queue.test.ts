/**
 * The keyed work queue: deduplication, one worker per key, delayed adds (earliest wins),
 * per-key exponential backoff with jitter, and shutdown. Real timers with delays of tens
 * of milliseconds; the assertions are on order and counts, never on speed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkQueue } from '../../../src/runtime/work-queue.ts';

/** The next key, or 'timeout' (the queue's own timers are unref'd, so this sleep keeps the test alive). */
async function nextKey(q: WorkQueue, withinMs = 1000): Promise<string | undefined | 'timeout'> {
  return Promise.race([q.get(), sleep(withinMs, 'timeout' as const)]);
}

/** Takes every key queued right now, in order, marking each done. */
async function drain(q: WorkQueue): Promise<string[]> {
  const out: string[] = [];
  while (q.length > 0) {
    const k = await q.get();
    assert.ok(k !== undefined);
    out.push(k);
    q.done(k);
  }
  return out;
}

describe('WorkQueue: adds', () => {
  test('a key waits at most once; first-come order is kept', async () => {
    const q = new WorkQueue('t');
    for (const k of ['ns/a', 'ns/b', 'ns/a', 'ns/c', 'ns/b', 'ns/a']) q.add(k);
    assert.equal(q.length, 3);
    assert.deepEqual(await drain(q), ['ns/a', 'ns/b', 'ns/c']);
    assert.equal(q.length, 0);
    q.shutDown();
  });

  test('a key can be added again once taken', async () => {
    const q = new WorkQueue('t');
    q.add('k');
    assert.equal(await q.get(), 'k');
    q.done('k');
    q.add('k');
    assert.equal(q.length, 1);
    assert.equal(await q.get(), 'k');
    q.shutDown();
  });

  test('a waiting worker gets the key as soon as it is added, and the key is not queued twice', async () => {
    const q = new WorkQueue('t');
    const waiting = q.get();
    q.add('k');
    q.add('k'); // now processing: marked dirty, not queued
    assert.equal(await waiting, 'k');
    assert.equal(q.length, 0);
    q.done('k');
    assert.equal(q.length, 1, 'runs again after done');
    q.shutDown();
  });

  test('waiting workers are served in the order they asked', async () => {
    const q = new WorkQueue('t');
    const first = q.get();
    const second = q.get();
    q.add('a');
    q.add('b');
    assert.deepEqual(await Promise.all([first, second]), ['a', 'b']);
    q.shutDown();
  });
});

describe('WorkQueue: one worker per key', () => {
  test('a key added while processing is not handed out; it runs once more after done', async () => {
    const q = new WorkQueue('t');
    q.add('k');
    q.add('other');
    assert.equal(await q.get(), 'k');
    q.add('k');
    q.add('k');
    assert.equal(q.length, 1, 'only "other" is waiting');
    assert.equal(await q.get(), 'other');
    q.done('other');
    assert.equal(q.length, 0, 'k is still being processed');
    q.done('k');
    assert.equal(q.length, 1, 'k is queued again, once');
    assert.equal(await q.get(), 'k');
    q.done('k');
    assert.equal(q.length, 0, 'and not a third time');
    q.shutDown();
  });

  test('done without a pending add does not requeue', async () => {
    const q = new WorkQueue('t');
    q.add('k');
    q.done((await q.get()) as string);
    assert.equal(q.length, 0);
    q.shutDown();
  });

  test('concurrent workers never process the same key at once, and the last add is always processed', async () => {
    const q = new WorkQueue('t');
    const active = new Set<string>();
    const runs = new Map<string, number>();
    const lastAdd = new Map<string, number>();
    const lastStart = new Map<string, number>();
    let seq = 0;
    let overlaps = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const k = await q.get();
        if (k === undefined) return;
        if (active.has(k)) overlaps++;
        active.add(k);
        lastStart.set(k, ++seq);
        runs.set(k, (runs.get(k) ?? 0) + 1);
        await sleep(5);
        active.delete(k);
        q.done(k);
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    const keys = ['a', 'b', 'c'];
    for (let i = 0; i < 30; i++) {
      const k = keys[i % keys.length] as string;
      lastAdd.set(k, ++seq);
      q.add(k);
      if (i % 4 === 0) await sleep(2);
    }
    // Let every pending run finish, then stop.
    for (let i = 0; i < 200 && (q.length > 0 || active.size > 0); i++) await sleep(10);
    q.shutDown();
    await Promise.all(workers);
    assert.equal(overlaps, 0);
    for (const k of keys) {
      const n = runs.get(k) ?? 0;
      assert.ok(n >= 1 && n <= 10, `${k} ran ${n} times (adds merged, never more runs than adds)`);
      assert.ok((lastStart.get(k) ?? 0) > (lastAdd.get(k) ?? 0), `${k}: a run started after its last add`);
    }
  });
});

describe('WorkQueue: delayed adds', () => {
  test('addAfter adds the key once the delay has passed', async () => {
    const q = new WorkQueue('t');
    q.addAfter('k', 20);
    assert.equal(q.length, 0);
    assert.equal(await nextKey(q), 'k');
    q.shutDown();
  });

  test('the earliest pending add wins: a later request is ignored', async () => {
    const q = new WorkQueue('t');
    q.addAfter('k', 20);
    q.addAfter('k', 5_000);
    assert.equal(await nextKey(q), 'k');
    q.shutDown();
  });

  test('the earliest pending add wins: an earlier request replaces the later one, which then never fires', async () => {
    const q = new WorkQueue('t');
    q.addAfter('k', 150);
    q.addAfter('k', 10);
    assert.equal(await nextKey(q), 'k');
    q.done('k');
    await sleep(250);
    assert.equal(q.length, 0, 'the replaced delayed add did not fire');
    q.shutDown();
  });

  test('an immediate add cancels a pending delayed add of the key', async () => {
    const q = new WorkQueue('t');
    q.addAfter('k', 40);
    q.add('k');
    assert.equal(await q.get(), 'k');
    q.done('k');
    await sleep(100);
    assert.equal(q.length, 0);
    q.shutDown();
  });

  test('a delay of zero or less adds at once', () => {
    const q = new WorkQueue('t');
    q.addAfter('a', 0);
    q.addAfter('b', -5);
    assert.equal(q.length, 2);
    q.shutDown();
  });

  test('delayed adds of different keys keep their own order', async () => {
    const q = new WorkQueue('t');
    q.addAfter('late', 80);
    q.addAfter('soon', 10);
    assert.equal(await nextKey(q), 'soon');
    assert.equal(await nextKey(q), 'late');
    q.shutDown();
  });

  test('a delayed add firing while the key is processed marks it for another run', async () => {
    const q = new WorkQueue('t');
    q.add('k');
    assert.equal(await q.get(), 'k');
    q.addAfter('k', 10);
    await sleep(50);
    assert.equal(q.length, 0, 'not handed out while processing');
    q.done('k');
    assert.equal(q.length, 1);
    q.shutDown();
  });
});

describe('WorkQueue: rate-limited retries', () => {
  test('backoff doubles per failure up to the maximum, with jitter at its bounds, never above the maximum', (t) => {
    const q = new WorkQueue('t', undefined, { baseMs: 10, maxMs: 80, jitter: 0.2 });
    const random = t.mock.method(Math, 'random', () => 0);
    assert.deepEqual(Array.from({ length: 6 }, () => q.addRateLimited('low')), [8, 16, 32, 64, 64, 64]);
    random.mock.mockImplementation(() => 0.999_999);
    assert.deepEqual(Array.from({ length: 6 }, () => q.addRateLimited('high')), [12, 24, 48, 80, 80, 80], 'never above the maximum');
    random.mock.mockImplementation(() => 0.5);
    assert.deepEqual(Array.from({ length: 5 }, () => q.addRateLimited('mid')), [10, 20, 40, 80, 80]);
    assert.equal(q.failuresOf('low'), 6);
    assert.equal(q.failuresOf('mid'), 5);
    q.shutDown();
  });

  test('with real randomness every delay stays within ±20% of its step and at most the maximum', () => {
    const q = new WorkQueue('t', undefined, { baseMs: 100, maxMs: 1_600, jitter: 0.2 });
    for (let round = 0; round < 20; round++) {
      const key = `k${round}`;
      for (let n = 0; n < 7; n++) {
        const step = Math.min(1_600, 100 * 2 ** n);
        const delay = q.addRateLimited(key);
        assert.ok(delay >= Math.round(step * 0.8) && delay <= Math.min(1_600, Math.round(step * 1.2)), `failure ${n + 1}: ${delay} within ${step} ±20%, at most 1600`);
      }
    }
    q.shutDown();
  });

  test('failures are counted per key, and forget resets only that key', (t) => {
    t.mock.method(Math, 'random', () => 0.5);
    const q = new WorkQueue('t', undefined, { baseMs: 10, maxMs: 1_000, jitter: 0.2 });
    q.addRateLimited('a');
    q.addRateLimited('a');
    q.addRateLimited('a');
    q.addRateLimited('b');
    assert.equal(q.failuresOf('a'), 3);
    assert.equal(q.failuresOf('b'), 1);
    q.forget('a');
    assert.equal(q.failuresOf('a'), 0);
    assert.equal(q.failuresOf('b'), 1);
    assert.equal(q.addRateLimited('a'), 10, 'back to the base delay');
    assert.equal(q.addRateLimited('b'), 20);
    assert.equal(q.failuresOf('never'), 0);
    q.shutDown();
  });

  test('a rate-limited key comes back after its backoff', async () => {
    const q = new WorkQueue('t', undefined, { baseMs: 10, maxMs: 100, jitter: 0.2 });
    q.add('k');
    assert.equal(await q.get(), 'k');
    q.addRateLimited('k');
    q.done('k');
    assert.equal(q.length, 0, 'not at once');
    assert.equal(await nextKey(q), 'k');
    q.shutDown();
  });
});

describe('WorkQueue: shutdown', () => {
  test('shutDown releases every waiting worker with undefined', async () => {
    const q = new WorkQueue('t');
    const waiting = [q.get(), q.get(), q.get()];
    q.shutDown();
    assert.deepEqual(await Promise.all(waiting), [undefined, undefined, undefined]);
  });

  test('after shutDown: adds are ignored and get answers undefined', async () => {
    const q = new WorkQueue('t');
    q.shutDown();
    q.add('k');
    q.addAfter('k', 0);
    q.addRateLimited('k');
    assert.equal(q.length, 0);
    assert.equal(await q.get(), undefined);
  });

  test('shutDown cancels pending delayed adds', async () => {
    const q = new WorkQueue('t');
    q.addAfter('k', 10);
    q.shutDown();
    await sleep(50);
    assert.equal(q.length, 0);
    assert.equal(await q.get(), undefined);
  });

  test('keys queued before shutDown can still be drained, then get answers undefined', async () => {
    const q = new WorkQueue('t');
    q.add('a');
    q.add('b');
    q.shutDown();
    assert.deepEqual(await drain(q), ['a', 'b']);
    assert.equal(await q.get(), undefined);
  });

  test('a key marked dirty while processing is not requeued after shutDown', async () => {
    const q = new WorkQueue('t');
    q.add('k');
    assert.equal(await q.get(), 'k');
    q.add('k');
    q.shutDown();
    q.done('k');
    assert.equal(q.length, 0);
    assert.equal(await q.get(), undefined);
  });
});
