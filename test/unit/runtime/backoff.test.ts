import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../../../src/runtime/backoff.ts';

const O = { baseMs: 200, maxMs: 10_000, jitter: 0.5 };

test('the delay doubles per attempt, spread by the jitter on either side', () => {
  assert.equal(backoffDelay(0, O, () => 0), 100);
  assert.equal(backoffDelay(0, O, () => 0.5), 200);
  assert.equal(backoffDelay(0, O, () => 1), 300);
  assert.equal(backoffDelay(3, O, () => 0.5), 1600);
  const samples = new Set(Array.from({ length: 50 }, () => backoffDelay(4, O)));
  assert.ok(samples.size > 5, 'jitter spreads retries');
  for (const s of samples) assert.ok(s >= 1600 && s <= 4800, `${s}`);
});

test('the delay never exceeds the cap, jitter included, and huge attempts do not overflow', () => {
  assert.equal(backoffDelay(50, O, () => 1), 10_000);
  assert.equal(backoffDelay(50, O, () => 0), 5_000);
  assert.equal(backoffDelay(1e9, { ...O, jitter: 0 }), 10_000);
});

test('no jitter gives the exponential value itself', () => {
  assert.deepEqual([0, 1, 2, 3].map((n) => backoffDelay(n, { baseMs: 500, maxMs: 30_000, jitter: 0 })), [500, 1000, 2000, 4000]);
});
