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
