import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ValuePool } from '../../../src/runtime/value-pool.ts';

test('equal strings and shared values come back as the first copy', () => {
  const pool = new ValuePool();
  const a = pool.string(['vm-registry', 'operator'].join('-'));
  const b = pool.string(['vm-registry', 'operator'].join('-'));
  assert.equal(a, b);
  const refs1 = [{ uid: 'u', name: 'fleet' }];
  const refs2 = JSON.parse(JSON.stringify(refs1)) as typeof refs1;
  assert.equal(pool.shared(refs1), refs1);
  assert.equal(pool.shared(refs2), refs1, 'an equal value is the pooled one');
  assert.deepEqual(pool.record({ app: 'web', version: 'v1' }), { app: 'web', version: 'v1' });
});

test('a full pool starts over instead of growing', () => {
  const pool = new ValuePool(3);
  for (let i = 0; i < 10; i++) pool.shared({ i });
  const first = { i: 100 };
  assert.equal(pool.shared(first), first);
  assert.equal(pool.shared({ i: 100 }), first);
  assert.equal(pool.string('x'.repeat(200)).length, 200, 'long strings pass through');
});

test('values of keys named unique are kept as they are, so they never fill the pool', () => {
  const pool = new ValuePool();
  const unique = new Set(['endpoint']);
  for (let i = 0; i < 100; i++) {
    const r = pool.record({ endpoint: `node-${i}/web-${i}`, scope: 'consul' }, unique);
    assert.deepEqual(r, { endpoint: `node-${i}/web-${i}`, scope: 'consul' });
  }
  assert.equal(pool.size, 3, 'the two keys and the shared value');
});
