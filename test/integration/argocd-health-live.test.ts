/**
 * config/argocd/health.lua against the status the operator really writes: an operator
 * runs against the real local control plane and an in-memory registry, and the
 * VmRegistrySource objects read back from the apiserver are fed to the health script in
 * gopher-lua, the Lua VM Argo CD embeds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryRegistry, memoryProviderFactory } from '../fixtures/memory-provider.ts';
import { applyYaml, condition, eventually, getSource, startTestCluster, startOperator, type RunningOperator } from '../harness/operator-env.ts';
import { ensureGlua, runHealthCheck, type HealthResult } from '../harness/argocd-health.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import type { VmRegistrySource } from '../../src/api/types.ts';

const NS = 'argo-live';
const registries = new Map<string, MemoryRegistry>();

let cluster: LocalCluster;
let op: RunningOperator;
let glua = '';

before(async () => {
  glua = await ensureGlua();
  cluster = await startTestCluster({ controllerManager: false });
  op = await startOperator(cluster, [memoryProviderFactory(registries)], { resyncPeriodMs: 60 * 60_000 });
  await applyYaml(cluster, `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}\n`);
});

after(async () => {
  await op?.stop();
  await cluster?.stop();
});

const health = (obj: unknown): Promise<HealthResult> => runHealthCheck(obj, { glua });

function registry(name: string): { url: string; reg: MemoryRegistry } {
  const url = `http://${name}.registry.test`;
  const reg = new MemoryRegistry();
  registries.set(url, reg);
  return { url, reg };
}

function sourceYaml(name: string, url: string, interval = '1h'): string {
  return `apiVersion: vmregistry.io/v1alpha1
kind: VmRegistrySource
metadata: {name: ${name}, namespace: ${NS}}
spec:
  interval: ${interval}
  memory: {registry: "${url}"}
  workloadEntry:
    ports: [{name: http, number: 8080}]
`;
}

async function readyFor(name: string, status: 'True' | 'False', generation?: number): Promise<VmRegistrySource> {
  return eventually(`Ready=${status} for ${name}`, async () => {
    const s = await getSource(cluster, NS, name);
    const ready = condition(s, 'Ready');
    const gen = generation ?? s.metadata.generation;
    return ready?.status === status && s.status?.observedGeneration === gen ? s : undefined;
  });
}

async function patchSpec(name: string, patch: unknown): Promise<VmRegistrySource> {
  // The patch response is the object as stored by this very write: its spec is new and its
  // status can only describe an older generation, whatever the operator does next.
  const out = await cluster.kubectl(['patch', 'vmrs', name, '-n', NS, '--type=merge', '-p', JSON.stringify(patch), '-o', 'json']);
  return JSON.parse(out) as VmRegistrySource;
}

describe('the Argo CD health check on live VmRegistrySources', () => {
  test('Progressing for a new source the operator has not reported on yet, then Healthy when in sync', async () => {
    const { url, reg } = registry('sync');
    reg.set('vm-1', '10.30.0.1');
    reg.set('vm-2', '10.30.0.2');
    const created = JSON.parse(await cluster.kubectl(['create', '-f', '-', '-o', 'json'], { input: sourceYaml('sync', url) })) as VmRegistrySource;
    assert.equal(created.status?.observedGeneration, undefined, 'the create response carries no status');
    const fresh = await health(created);
    assert.equal(fresh.status, 'Progressing');
    assert.match(fresh.message, /Waiting for the operator/);

    const synced = await eventually('2 managed entries', async () => {
      const s = await readyFor('sync', 'True');
      return s.status?.managedEntries === 2 ? s : undefined;
    });
    const result = await health(synced);
    assert.equal(result.status, 'Healthy');
    assert.equal(result.message, condition(synced, 'Ready')?.message);
    assert.notEqual(result.message, '');
  });

  test('Degraded with the Ready condition\'s message while the registry is down, Healthy again after', async () => {
    const { url, reg } = registry('down');
    reg.set('vm-1', '10.31.0.1');
    await applyYaml(cluster, sourceYaml('down', url, '1s'));
    await readyFor('down', 'True');
    reg.failure = 'Unreachable';
    const down = await eventually('ProviderReady=False', async () => {
      const s = await getSource(cluster, NS, 'down');
      return condition(s, 'ProviderReady')?.reason === 'MemoryUnreachable' && condition(s, 'Ready')?.status === 'False' ? s : undefined;
    });
    const degraded = await health(down);
    assert.equal(degraded.status, 'Degraded');
    assert.equal(degraded.message, condition(down, 'Ready')?.message);
    assert.match(degraded.message, /Unreachable/);
    assert.match(degraded.message, /WorkloadEntries are kept/);

    reg.failure = undefined;
    reg.changed();
    assert.equal((await health(await readyFor('down', 'True'))).status, 'Healthy');
  });

  test('Progressing right after a spec change, until the operator observes the new generation', async () => {
    const { url, reg } = registry('change');
    reg.set('vm-1', '10.32.0.1');
    await applyYaml(cluster, sourceYaml('change', url));
    const inSync = await readyFor('change', 'True');
    const generation = inSync.metadata.generation ?? 0;

    const patched = await patchSpec('change', { spec: { workloadEntry: { labels: { tier: 'gold' } } } });
    assert.equal(patched.metadata.generation, generation + 1, 'a spec change bumps the generation');
    assert.equal(patched.status?.observedGeneration, generation, 'the status still describes the previous generation');
    const progressing = await health(patched);
    assert.equal(progressing.status, 'Progressing');
    assert.match(progressing.message, new RegExp(`observe generation ${generation + 1}`));

    const observed = await readyFor('change', 'True', generation + 1);
    assert.equal((await health(observed)).status, 'Healthy');
  });

  test('Suspended with spec.suspend, with the status the operator writes for it', async () => {
    const { url, reg } = registry('pause');
    reg.set('vm-1', '10.33.0.1');
    await applyYaml(cluster, sourceYaml('pause', url));
    await readyFor('pause', 'True');
    await patchSpec('pause', { spec: { suspend: true } });
    const suspended = await eventually('Synced=Suspended', async () => {
      const s = await getSource(cluster, NS, 'pause');
      return condition(s, 'Synced')?.reason === 'Suspended' && s.status?.observedGeneration === s.metadata.generation ? s : undefined;
    });
    // The operator reports a suspended source as not Ready; Argo CD must show Suspended, not Degraded.
    assert.notEqual(condition(suspended, 'Ready')?.status, 'True');
    const result = await health(suspended);
    assert.equal(result.status, 'Suspended');
    assert.match(result.message, /spec\.suspend/);

    await patchSpec('pause', { spec: { suspend: false } });
    assert.equal((await health(await readyFor('pause', 'True'))).status, 'Healthy');
  });
});
