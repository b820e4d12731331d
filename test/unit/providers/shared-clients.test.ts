/** One registry client per identity and place: sources with the same EC2 region and credentials share a client. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { silentLogger } from '../../../src/metrics/logger.ts';
import { ProviderMetrics } from '../../../src/metrics/provider-metrics.ts';
import { createEc2Provider, ec2Clients } from '../../../src/providers/ec2/index.ts';
import { clientKey, SharedClients } from '../../../src/providers/shared-clients.ts';
import { BUILTIN_API } from '../../../src/providers/builtin.ts';

const { applyDefaults } = BUILTIN_API;

test('a client is created once per key and closed after its last user releases it', () => {
  const closed: string[] = [];
  let created = 0;
  const pool = new SharedClients<string>((c) => closed.push(c));
  const a = pool.acquire('k', () => `client-${++created}`);
  const b = pool.acquire('k', () => `client-${++created}`);
  const c = pool.acquire('other', () => `client-${++created}`);
  assert.equal(a.client, b.client);
  assert.notEqual(a.client, c.client);
  assert.equal(pool.size, 2);
  a.release();
  a.release(); // idempotent
  assert.deepEqual(closed, []);
  b.release();
  assert.deepEqual(closed, ['client-1']);
  c.release();
  assert.equal(pool.size, 0);
  const d = pool.acquire('k', () => `client-${++created}`);
  assert.equal(d.client, 'client-3', 'a new client after the last release');
});

test('keys: same settings in any order are equal; secrets are hashed, never in clear', () => {
  assert.equal(clientKey({ a: 1, b: 'x' }, ['s']), clientKey({ b: 'x', a: 1 }, ['s']));
  assert.notEqual(clientKey({ a: 1 }, ['s']), clientKey({ a: 1 }, ['t']));
  assert.ok(!clientKey({ a: 1 }, ['super-secret-value']).includes('super-secret-value'));
});

function ec2Source(region: string, secrets: Map<string, string>, ref = false) {
  const spec = applyDefaults({
    ec2: { region, ...(ref ? { credentialsSecretRef: { name: 'aws', accessKeyIdKey: 'id', secretAccessKeyKey: 'key' } } : {}) },
  });
  return createEc2Provider({ source: `ns/${region}`, spec, secrets, metrics: new ProviderMetrics(new Registry()), log: silentLogger });
}

test('EC2 sources share a client per region and credentials', async () => {
  const keys = (id: string) => new Map([['aws/id', id], ['aws/key', 'secret']]);
  const a = ec2Source('eu-west-1', keys('AKIA1'), true);
  const b = ec2Source('eu-west-1', keys('AKIA1'), true);
  assert.equal(ec2Clients.size, 1, 'same region and keys: one client');
  const c = ec2Source('eu-west-1', keys('AKIA2'), true);
  const d = ec2Source('us-east-1', keys('AKIA1'), true);
  const e = ec2Source('eu-west-1', new Map());
  assert.equal(ec2Clients.size, 4, 'other keys, other region, default chain: a client each');
  for (const p of [a, b, c, d, e]) await p.close();
  assert.equal(ec2Clients.size, 0, 'closed with their last source');
});
