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

test('service watches get only the blocking slots the feeds leave free, and a few stay for new feeds', async () => {
  const { AgentPool, DEFAULT_POOL_LIMITS, splitBudget } = await import('../../../src/providers/consul/pool.ts');
  const pool = new AgentPool({ address: 'http://127.0.0.1:1' }, DEFAULT_POOL_LIMITS);
  try {
    const { blocking } = splitBudget(DEFAULT_POOL_LIMITS.maxConnections);
    assert.equal(blocking, 74);
    pool.feedQueriesChanged(3);
    assert.equal(pool.claimWatches(100), 65, 'all but the feed’s three queries and a headroom of six');
    assert.equal(pool.claimWatches(1), 0, 'none left');
    pool.releaseWatches(10);
    pool.feedQueriesChanged(3);
    assert.equal(pool.claimWatches(100), 7, 'a second feed’s queries come first');
    pool.feedQueriesChanged(-6);
    pool.releaseWatches(65 - 10 + 7);
    assert.equal(pool.claimWatches(100), 74 - 6, 'every released slot is granted again');
  } finally {
    pool.close();
  }
});
