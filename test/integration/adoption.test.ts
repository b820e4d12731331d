/**
 * Adoption against the real apiserver: a hand-written entry is replaced only when it is
 * a twin of a managed one (same network, address, service and ports), and only as the
 * policy allows. One VM runs `orders` and already has a hand-written `payments` entry.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryRegistry, memoryProviderFactory } from '../fixtures/memory-provider.ts';
import { applyYaml, condition, eventually, getEntries, getSource, startTestCluster, startOperator, type RunningOperator } from '../harness/operator-env.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import { SOURCE_LABEL } from '../../src/api/ownership.ts';

const registries = new Map<string, MemoryRegistry>();
let cluster: LocalCluster;
let op: RunningOperator;

before(async () => {
  cluster = await startTestCluster({ controllerManager: false });
  op = await startOperator(cluster, [memoryProviderFactory(registries)], { resyncPeriodMs: 60 * 60_000 });
});

after(async () => {
  await op?.stop();
  await cluster?.stop();
});

/** A namespace with the hand-written entries of a VM at 10.30.0.1 and a source (suspended) whose registry has orders there. */
async function setUp(ns: string, policy: string): Promise<MemoryRegistry> {
  const url = `http://${ns}.registry.test`;
  const reg = new MemoryRegistry();
  registries.set(url, reg);
  reg.set('vm-1-orders', '10.30.0.1', { service: 'orders' });
  await applyYaml(cluster, `apiVersion: v1
kind: Namespace
metadata: {name: ${ns}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: payments-vm1, namespace: ${ns}, labels: {app: payments}}
spec: {address: 10.30.0.1, ports: {http: 8080}, labels: {app: payments}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: orders-vm1, namespace: ${ns}}
spec: {address: 10.30.0.1, ports: {http: 8080}, labels: {app: orders}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: orders-vm1-admin, namespace: ${ns}}
spec: {address: 10.30.0.1, ports: {admin: 9000}, labels: {app: orders}}
---
apiVersion: vmregistry.io/v1alpha1
kind: VmRegistrySource
metadata: {name: shop, namespace: ${ns}}
spec:
  interval: 1h
  adopt: true
  policy: ${policy}
  memory: {registry: "${url}"}
  workloadEntry:
    ports: [{name: http, number: 8080}]
`);
  return reg;
}

const names = async (ns: string): Promise<string[]> => (await getEntries(cluster, ns)).map((e) => e.metadata.name).sort();
const reconciles = async (): Promise<number> => (await op.metrics.reconcileTotal.get()).values.reduce((a, v) => a + v.value, 0);

describe('adoption through the planner', () => {
  test('sync: the real twin is replaced; payments (another service) and the admin port entry survive', async () => {
    await setUp('adopt-sync', 'sync');
    const managed = await eventually('the managed orders entry', async () => (await getEntries(cluster, 'adopt-sync')).find((e) => e.metadata.labels?.[SOURCE_LABEL] === 'shop'));
    assert.equal(managed.spec.address, '10.30.0.1');
    await eventually('the twin orders-vm1 to be gone', async () => !(await names('adopt-sync')).includes('orders-vm1'));
    assert.deepEqual(await names('adopt-sync'), [managed.metadata.name, 'orders-vm1-admin', 'payments-vm1'].sort());
    const events = await cluster.kubectl(['get', 'events', '-n', 'adopt-sync', '--field-selector', 'reason=Adopted', '-o', 'jsonpath={.items[*].message}']);
    assert.match(events, /orders-vm1/);
    assert.doesNotMatch(events, /payments-vm1/);
  });

  test('upsert-only: the twin is kept and the held-back deletion is reported', async () => {
    await setUp('adopt-upsert', 'upsert-only');
    const s = await eventually('the policy to hold the replacement back', async () => {
      const src = await getSource(cluster, 'adopt-upsert', 'shop');
      return src.status?.heldBackDeletes === 1 ? src : undefined;
    });
    assert.match(condition(s, 'Synced')?.message ?? '', /1 deletions not made because of the policy/);
    // More reconciles (each would replace the twin under sync) change nothing.
    const before = await reconciles();
    await cluster.kubectl(['annotate', 'vmrs', 'shop', '-n', 'adopt-upsert', 'poke=1']);
    await cluster.kubectl(['annotate', 'vmrs', 'shop', '-n', 'adopt-upsert', 'poke=2', '--overwrite']);
    await eventually('two more reconciles', async () => (await reconciles()) >= before + 2);
    const left = await names('adopt-upsert');
    assert.ok(left.includes('orders-vm1'), 'the twin is kept under upsert-only');
    assert.ok(left.includes('payments-vm1'));
    assert.equal(left.length, 4);
  });
});
