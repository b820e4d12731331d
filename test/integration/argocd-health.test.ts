/**
 * config/argocd/health.lua in a real Lua 5.1 VM (gopher-lua, the VM Argo CD embeds),
 * against VmRegistrySource objects shaped as the apiserver returns them.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { ensureGlua, runHealthCheck, toLuaLiteral } from '../harness/argocd-health.ts';

const T = '2026-01-01T00:00:00Z';

interface Cond {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
}

function source(generation: number, status?: { observedGeneration?: number; conditions?: Cond[] }, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: 'vmregistry.io/v1alpha1',
    kind: 'VmRegistrySource',
    metadata: { name: 'orders', namespace: 'shop', generation, uid: '0b7e3c2a-1111-4222-8333-944455556666' },
    spec: { consul: { address: 'http://consul.consul.svc:8500' }, interval: '30s', suspend: false, ...spec },
    ...(status === undefined ? {} : { status: { provider: 'consul', managedEntries: 3, ...status } }),
  };
}

const cond = (type: string, status: Cond['status'], reason: string, message: string, observedGeneration?: number): Cond & { lastTransitionTime: string } => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: T,
  ...(observedGeneration === undefined ? {} : { observedGeneration }),
});

let glua = '';
before(async () => {
  glua = await ensureGlua((l) => process.stderr.write(l + '\n'));
});

const check = (obj: unknown) => runHealthCheck(obj, { glua });

describe('Argo CD health check for VmRegistrySource (gopher-lua)', () => {
  test('Healthy when Ready is True for the current generation', async () => {
    const obj = source(4, {
      observedGeneration: 4,
      conditions: [
        cond('ProviderReady', 'True', 'RegistryAnswered', 'Consul answered', 4),
        cond('Synced', 'True', 'InSync', '3 entries in sync', 4),
        cond('Ready', 'True', 'Synced', '3 WorkloadEntries in sync with Consul', 4),
      ],
    });
    assert.deepEqual(await check(obj), { status: 'Healthy', message: '3 WorkloadEntries in sync with Consul' });
  });

  test('Progressing while there is no status yet', async () => {
    const result = await check(source(1));
    assert.equal(result.status, 'Progressing');
    assert.match(result.message, /status/);
  });

  test('Progressing while the status describes an older generation, even if that one was Ready', async () => {
    const obj = source(5, { observedGeneration: 4, conditions: [cond('Ready', 'True', 'Synced', 'in sync', 4)] });
    const result = await check(obj);
    assert.equal(result.status, 'Progressing');
    assert.match(result.message, /generation 5 .*generation 4/);
  });

  test('Progressing while an old failure is still reported for an older generation', async () => {
    const obj = source(7, { observedGeneration: 6, conditions: [cond('Ready', 'False', 'ProviderError', 'Consul unreachable', 6)] });
    assert.equal((await check(obj)).status, 'Progressing');
  });

  test('Progressing when the Ready condition lags behind status.observedGeneration', async () => {
    const obj = source(3, { observedGeneration: 3, conditions: [cond('Ready', 'True', 'Synced', 'in sync', 2)] });
    assert.equal((await check(obj)).status, 'Progressing');
  });

  test('Progressing when the generation is observed but no Ready condition is written yet', async () => {
    const obj = source(2, { observedGeneration: 2, conditions: [cond('ProviderReady', 'True', 'RegistryAnswered', 'ok', 2)] });
    assert.deepEqual(await check(obj), { status: 'Progressing', message: 'Waiting for the Ready condition' });
  });

  test('Degraded with the Ready condition\'s message when Ready is False', async () => {
    const message = 'Get "http://consul.consul.svc:8500/v1/catalog/services": dial tcp 10.0.0.9:8500: connect: connection refused';
    const obj = source(2, {
      observedGeneration: 2,
      conditions: [
        cond('ProviderReady', 'False', 'ProviderError', message, 2),
        cond('Synced', 'Unknown', 'ProviderError', 'registry not read', 2),
        cond('Ready', 'False', 'ProviderError', message, 2),
      ],
    });
    assert.deepEqual(await check(obj), { status: 'Degraded', message });
  });

  test('Degraded keeps multi-line and non-ASCII messages intact', async () => {
    const message = '2 conflicts:\n  "orders-10-0-0-7" is owned by another source\n  naïve ‘quoted’ \\ backslash 100%';
    const obj = source(1, { observedGeneration: 1, conditions: [cond('Ready', 'False', 'Conflict', message, 1)] });
    assert.deepEqual(await check(obj), { status: 'Degraded', message });
  });

  test('Degraded falls back to the reason when the message is empty', async () => {
    const obj = source(1, { observedGeneration: 1, conditions: [cond('Ready', 'False', 'SecretNotFound', '', 1)] });
    assert.deepEqual(await check(obj), { status: 'Degraded', message: 'SecretNotFound' });
  });

  test('Degraded when Ready is Unknown for the current generation', async () => {
    const obj = source(1, { observedGeneration: 1, conditions: [cond('Ready', 'Unknown', 'ProviderError', 'registry did not answer', 1)] });
    assert.deepEqual(await check(obj), { status: 'Degraded', message: 'registry did not answer' });
  });

  test('Suspended when spec.suspend is true, whatever the status says', async () => {
    const failing = source(3, { observedGeneration: 2, conditions: [cond('Ready', 'False', 'ProviderError', 'down', 2)] }, { suspend: true });
    assert.equal((await check(failing)).status, 'Suspended');
    assert.equal((await check(source(1, undefined, { suspend: true }))).status, 'Suspended');
  });

  test('conditions without per-condition observedGeneration use status.observedGeneration', async () => {
    const obj = source(9, { observedGeneration: 9, conditions: [cond('Ready', 'True', 'Synced', 'in sync')] });
    assert.equal((await check(obj)).status, 'Healthy');
  });

  test('a script that breaks is reported, not mistaken for a status', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'vmreg-lua-'));
    try {
      // os is not available to Argo CD health scripts; the harness withholds it too.
      await writeFile(join(dir, 'bad.lua'), 'hs = {}\nhs.status = os.getenv("X")\nreturn hs\n');
      await assert.rejects(runHealthCheck(source(1), { glua, script: join(dir, 'bad.lua') }));
      await writeFile(join(dir, 'odd.lua'), 'hs = {}\nhs.status = "Fine"\nreturn hs\n');
      await assert.rejects(runHealthCheck(source(1), { glua, script: join(dir, 'odd.lua') }), /unknown status "Fine"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('JSON to Lua literal conversion', () => {
  test('round-trips strings byte for byte through the Lua lexer', async () => {
    const tricky = 'a"b\\c\n\r\t\u0000é€😀 1\u00012';
    const obj = source(1, { observedGeneration: 1, conditions: [cond('Ready', 'True', 'Synced', tricky, 1)] });
    assert.equal((await check(obj)).message, tricky);
  });

  test('arrays are 1-indexed sequences and objects use quoted keys', () => {
    assert.equal(toLuaLiteral({ a: [1, 'x', true], 'b-c': null }), '{["a"] = {1, "x", true}}');
  });
});
