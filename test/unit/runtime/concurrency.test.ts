import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mapLimit, Semaphore } from '../../../src/runtime/concurrency.ts';

test('the semaphore caps holders, hands slots over in order, and drops aborted waiters', async () => {
  const sem = new Semaphore(2);
  const never = new AbortController().signal;
  await sem.acquire(never);
  await sem.acquire(never);
  const order: string[] = [];
  const aborted = new AbortController();
  const a = sem.acquire(never).then(() => order.push('a'));
  const b = sem.acquire(aborted.signal).then(
    () => order.push('b'),
    () => order.push('b-aborted'),
  );
  const c = sem.acquire(never).then(() => order.push('c'));
  await Promise.resolve();
  assert.deepEqual(order, [], 'no third holder while two hold slots');
  aborted.abort(new Error('stop'));
  await b;
  sem.release();
  sem.release();
  await Promise.all([a, c]);
  assert.deepEqual(order, ['b-aborted', 'a', 'c']);
});

test('mapLimit keeps at most limit calls in flight, keeps the order of results and collects every failure', async () => {
  let inFlight = 0;
  let most = 0;
  const results = await mapLimit([1, 2, 3, 4, 5, 6], 2, async (n) => {
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise<void>((resolve) => setImmediate(resolve));
    inFlight--;
    if (n % 3 === 0) throw new Error(`no ${n}`);
    return n * 10;
  });
  assert.equal(most, 2);
  assert.deepEqual(
    results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)),
    [10, 20, 'no 3', 40, 50, 'no 6'],
  );
});
