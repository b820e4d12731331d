import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Semaphore } from '../../../src/providers/consul/semaphore.ts';

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

test('the connection budget: one socket for the status call, a quarter for reads, the rest for blocking queries', async () => {
  const { splitBudget } = await import('../../../src/providers/consul/pool.ts');
  assert.deepEqual(splitBudget(64), { reads: 16, blocking: 47 });
  assert.deepEqual(splitBudget(3), { reads: 1, blocking: 1 });
  for (const cap of [3, 4, 10, 64, 150]) {
    const b = splitBudget(cap);
    assert.equal(b.reads + b.blocking + 1, cap, `cap ${cap} is used exactly`);
  }
});
