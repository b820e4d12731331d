/**
 * The operator across restarts, replicas and apiserver outages, against the real local
 * control plane.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryRegistry, memoryProviderFactory } from '../fixtures/memory-provider.ts';
import { applyYaml, condition, eventually, getEntries, getSource, startTestCluster, startOperator, type RunningOperator } from '../harness/operator-env.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';

const registries = new Map<string, MemoryRegistry>();
let cluster: LocalCluster;

function newRegistry(id: string): { url: string; reg: MemoryRegistry } {
  const url = `http://${id}.registry.test`;
  const reg = new MemoryRegistry();
  registries.set(url, reg);
  return { url, reg };
}

const source = (ns: string, url: string, interval = '1h'): string => `apiVersion: v1
kind: Namespace
metadata: {name: ${ns}}
---
apiVersion: vmregistry.io/v1alpha1
kind: VmRegistrySource
metadata: {name: src, namespace: ${ns}}
spec:
  interval: ${interval}
  memory: {registry: "${url}"}
`;

async function addressesIn(ns: string): Promise<string[]> {
  return (await getEntries(cluster, ns)).map((e) => e.spec.address).sort();
}

async function waitAddresses(ns: string, expected: string[], timeoutMs = 20_000): Promise<void> {
  const want = [...expected].sort();
  await eventually(`addresses ${want.join(',')} in ${ns}`, async () => JSON.stringify(await addressesIn(ns)) === JSON.stringify(want), timeoutMs);
}

before(async () => {
  cluster = await startTestCluster();
  await applyYaml(cluster, 'apiVersion: v1\nkind: Namespace\nmetadata: {name: operator-system}\n');
});

after(async () => {
  await cluster?.stop();
});

describe('operator lifecycle', () => {
  test('a restarted operator converges with no orphans or duplicates, and never unregisters the fleet on a failed first read', async () => {
    const { url, reg } = newRegistry('restart');
    for (let i = 1; i <= 3; i++) reg.set(`vm-${i}`, `10.20.0.${i}`);
    await applyYaml(cluster, source('restart', url));
    const first = await startOperator(cluster, [memoryProviderFactory(registries)]);
    await waitAddresses('restart', ['10.20.0.1', '10.20.0.2', '10.20.0.3']);
    await first.stop();

    // While it is down the registry changes; at start-up the registry is unreachable.
    reg.remove('vm-1');
    reg.set('vm-2', '10.20.0.22');
    reg.set('vm-4', '10.20.0.4');
    reg.failure = 'Unreachable';
    const second = await startOperator(cluster, [memoryProviderFactory(registries)]);
    try {
      await eventually('ProviderReady=False', async () => condition(await getSource(cluster, 'restart', 'src'), 'ProviderReady')?.status === 'False');
      assert.deepEqual(await addressesIn('restart'), ['10.20.0.1', '10.20.0.2', '10.20.0.3'], 'nothing is deleted before a complete snapshot');
      reg.failure = undefined;
      reg.changed();
      await waitAddresses('restart', ['10.20.0.22', '10.20.0.3', '10.20.0.4']);
      const names = (await getEntries(cluster, 'restart')).map((e) => e.metadata.name);
      assert.equal(new Set(names).size, 3, 'no duplicates');
    } finally {
      await second.stop();
    }
  });

  test('of two replicas only the leader writes; when it stops, the other takes over within the lease duration', async () => {
    const { url, reg } = newRegistry('ha');
    reg.set('vm-1', '10.21.0.1');
    await applyYaml(cluster, source('ha', url));
    const lease = { namespace: 'operator-system', name: 'vmreg-ha-test', leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 500 };
    const a = await startOperator(cluster, [memoryProviderFactory(registries)], { leaderElection: { ...lease, identity: 'replica-a' } });
    await eventually('replica a to lead', async () => a.operator.isLeader);
    const b = await startOperator(cluster, [memoryProviderFactory(registries)], { leaderElection: { ...lease, identity: 'replica-b' } });
    try {
      await waitAddresses('ha', ['10.21.0.1']);
      // The standby has tried the Lease three times (a GET each) while the leader held it.
      const leaseReads = async (): Promise<number> => (await b.metrics.restRequests.get()).values.filter((v) => v.labels['method'] === 'GET').reduce((sum, v) => sum + v.value, 0);
      const readsBefore = await leaseReads();
      await eventually('three Lease attempts by the standby', async () => (await leaseReads()) >= readsBefore + 3);
      assert.equal(a.operator.isLeader, true, 'the first replica leads');
      assert.equal(b.operator.isLeader, false, 'the second replica stands by');
      assert.equal(await b.metrics.writeCount(), 0, 'the standby made no writes');
      const leaseObj = JSON.parse(await cluster.kubectl(['get', 'lease', lease.name, '-n', lease.namespace, '-o', 'json'])) as { spec: { holderIdentity: string } };
      assert.equal(leaseObj.spec.holderIdentity, 'replica-a');

      const stoppedAt = Date.now();
      await a.stop();
      reg.set('vm-2', '10.21.0.2');
      await eventually('replica b to lead', async () => b.operator.isLeader, lease.leaseDurationMs + 2000);
      assert.ok(Date.now() - stoppedAt < lease.leaseDurationMs + 2000, 'fail-over within the lease duration');
      await waitAddresses('ha', ['10.21.0.1', '10.21.0.2']);
      assert.ok((await b.metrics.writeCount()) > 0, 'the new leader writes');
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test('informers recover from an apiserver restart and from 410 Gone: drift is still corrected afterwards', async () => {
    const { url, reg } = newRegistry('apirestart');
    reg.set('vm-1', '10.22.0.1');
    reg.set('vm-2', '10.22.0.2');
    await applyYaml(cluster, source('apirestart', url));
    const op = await startOperator(cluster, [memoryProviderFactory(registries)]);
    try {
      await waitAddresses('apirestart', ['10.22.0.1', '10.22.0.2']);
      await cluster.cp.stopApiserver();
      // History is compacted past every resourceVersion the watches know: resuming them gets 410 Gone.
      await cluster.cp.compactEtcd();
      await sleep(1000);
      await cluster.cp.startApiserver();
      // A change in the registry during the outage, and a hand deletion after it.
      reg.set('vm-3', '10.22.0.3');
      await waitAddresses('apirestart', ['10.22.0.1', '10.22.0.2', '10.22.0.3'], 40_000);
      const [victim] = await getEntries(cluster, 'apirestart');
      assert.ok(victim);
      await cluster.kubectl(['delete', 'workloadentry', victim.metadata.name, '-n', 'apirestart']);
      await eventually('the deleted entry to be recreated', async () => (await getEntries(cluster, 'apirestart')).some((e) => e.metadata.name === victim.metadata.name && e.metadata.uid !== victim.metadata.uid), 40_000);
    } finally {
      await op.stop();
    }
  });
});
