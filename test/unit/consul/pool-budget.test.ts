import { test } from 'node:test';
import assert from 'node:assert/strict';

test('the connection budget: one socket for the status call, a quarter for reads, the rest for blocking queries', async () => {
  const { splitBudget } = await import('../../../src/providers/consul/pool.ts');
  assert.deepEqual(splitBudget(64), { reads: 16, blocking: 47 });
  assert.deepEqual(splitBudget(3), { reads: 1, blocking: 1 });
  for (const cap of [3, 4, 10, 64, 150]) {
    const b = splitBudget(cap);
    assert.equal(b.reads + b.blocking + 1, cap, `cap ${cap} is used exactly`);
  }
});
