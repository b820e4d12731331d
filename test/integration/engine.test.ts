/**
 * The reconcile engine against the real local control plane (etcd, kube-apiserver,
 * kube-controller-manager's garbage collector), with an in-memory registry behind the
 * real provider interface.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryRegistry, memoryProviderFactory, TEST_API } from '../fixtures/memory-provider.ts';
import { afterReconciles, applyYaml, condition, eventually, getEntries, getSource, startTestCluster, startOperator, type RunningOperator } from '../harness/operator-env.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import { MANAGED_BY_LABEL, SOURCE_LABEL } from '../../src/api/ownership.ts';

const registries = new Map<string, MemoryRegistry>();
function registry(id: string): { url: string; reg: MemoryRegistry } {
  const url = `http://${id}.registry.test`;
  const reg = new MemoryRegistry();
  registries.set(url, reg);
  return { url, reg };
}

function sourceYaml(ns: string, name: string, url: string, extra = ''): string {
  return `apiVersion: v1
kind: Namespace
metadata: {name: ${ns}}
---
apiVersion: vmregistry.io/v1alpha1
kind: VmRegistrySource
metadata: {name: ${name}, namespace: ${ns}}
spec:
  interval: 1h
  memory: {registry: "${url}"}
  workloadEntry:
    ports: [{name: http, number: 8080}]
    labels: {team: payments}
${extra}`;
}

let cluster: LocalCluster;
let op: RunningOperator;

before(async () => {
  cluster = await startTestCluster();
  op = await startOperator(cluster, [memoryProviderFactory(registries)], { resyncPeriodMs: 60 * 60_000 });
});

after(async () => {
  await op?.stop();
  await cluster?.stop();
});

async function entriesOf(ns: string): Promise<Map<string, string>> {
  const items = await getEntries(cluster, ns);
  return new Map(items.map((e) => [e.metadata.annotations?.['vmregistry.io/endpoint'] ?? `foreign:${e.metadata.name}`, e.spec.address]));
}

async function waitFor(ns: string, expected: Record<string, string>): Promise<void> {
  await eventually(`entries in ${ns} to be ${JSON.stringify(expected)}`, async () => {
    const got = Object.fromEntries([...(await entriesOf(ns))].filter(([k]) => !k.startsWith('foreign:')));
    try {
      assert.deepEqual(got, expected);
      return true;
    } catch {
      return undefined;
    }
  });
}

describe('the reconcile engine', () => {
  test('creates, updates and deletes entries as the registry changes, with ownership metadata', async () => {
    const { url, reg } = registry('crud');
    reg.set('vm-1', '10.0.0.1', { service: 'payments' });
    reg.set('vm-2', '10.0.0.2', { service: 'payments' });
    // A user rule that maps a label to a key Kubernetes cannot take, and one that is reserved.
    await applyYaml(cluster, sourceYaml('crud', 'pay', url, '    relabelings:\n      - {action: replace, targetLabel: "!!!", replacement: x}\n      - {action: replace, targetLabel: vmregistry.io/source, replacement: forged}\n'));
    await waitFor('crud', { 'vm-1': '10.0.0.1', 'vm-2': '10.0.0.2' });

    const [entry] = await getEntries(cluster, 'crud');
    assert.ok(entry);
    assert.equal(entry.metadata.labels?.[MANAGED_BY_LABEL], 'vm-registry-operator');
    assert.equal(entry.metadata.labels?.[SOURCE_LABEL], 'pay');
    assert.equal(entry.metadata.labels?.['app'], 'payments');
    assert.equal(entry.spec.labels?.['team'], 'payments');
    assert.deepEqual(entry.spec.ports, { http: 8080 });
    const owner = entry.metadata.ownerReferences?.[0];
    assert.equal(owner?.kind, 'VmRegistrySource');
    assert.equal(owner?.controller, true);
    assert.equal(entry.metadata.labels?.['app.kubernetes.io/instance'], undefined, 'no Argo CD tracking label is copied');

    reg.set('vm-2', '10.0.0.22', { service: 'payments' });
    reg.set('vm-3', '10.0.0.3', { service: 'payments' });
    await waitFor('crud', { 'vm-1': '10.0.0.1', 'vm-2': '10.0.0.22', 'vm-3': '10.0.0.3' });
    reg.remove('vm-1');
    await waitFor('crud', { 'vm-2': '10.0.0.22', 'vm-3': '10.0.0.3' });

    const source = await eventually('status to report 2 entries', async () => {
      const s = await getSource(cluster, 'crud', 'pay');
      return s.status?.managedEntries === 2 && condition(s, 'Ready')?.status === 'True' ? s : undefined;
    });
    assert.equal(source.status?.observedGeneration, source.metadata.generation);
    assert.equal(source.status?.provider, 'memory');
    assert.equal(condition(source, 'Synced')?.reason, 'InSync');
    const dropped = await cluster.kubectl(['get', 'events', '-n', 'crud', '--field-selector', 'reason=LabelsDropped', '-o', 'jsonpath={.items[*].message}']);
    assert.match(dropped, /!!!/);
    assert.match(dropped, /vmregistry\.io\/source/);
    assert.equal(entry.metadata.labels?.[SOURCE_LABEL], 'pay', 'a reserved label cannot be forged');
    const table = await cluster.kubectl(['get', 'vmrs', '-n', 'crud']);
    assert.match(table, /NAME\s+PROVIDER\s+READY\s+ENTRIES\s+AGE/);
    assert.match(table, /pay\s+memory\s+True\s+2\s+/);
  });

  test('puts back a managed entry edited or deleted by hand, and counts the corrections', async () => {
    const { url, reg } = registry('drift');
    reg.set('vm-1', '10.1.0.1');
    reg.set('vm-2', '10.1.0.2');
    await applyYaml(cluster, sourceYaml('drift', 'web', url));
    await waitFor('drift', { 'vm-1': '10.1.0.1', 'vm-2': '10.1.0.2' });
    const [first, second] = await getEntries(cluster, 'drift');
    assert.ok(first && second);

    await cluster.kubectl(['patch', 'workloadentry', first.metadata.name, '-n', 'drift', '--type=merge', '-p', '{"spec":{"address":"192.168.99.99"}}']);
    await cluster.kubectl(['delete', 'workloadentry', second.metadata.name, '-n', 'drift']);
    await waitFor('drift', { 'vm-1': '10.1.0.1', 'vm-2': '10.1.0.2' });

    const drift = await op.metrics.driftCorrections.get();
    const bySource = (kind: string): number => drift.values.find((v) => v.labels['source'] === 'drift/web' && v.labels['kind'] === kind)?.value ?? 0;
    assert.ok(bySource('edited') >= 1, 'the edit is counted');
    assert.ok(bySource('deleted') >= 1, 'the deletion is counted');
  });

  test('never touches a foreign object with a clashing name: conflict in status and an Event; adopts it when asked', async () => {
    const { url, reg } = registry('foreign');
    reg.set('vm-1', '10.2.0.1');
    await applyYaml(cluster, sourceYaml('foreign', 'db', url, '  suspend: true\n'));
    // Learn the deterministic name the entry will get, then occupy it by hand.
    const { buildDesiredState } = await import('../../src/mapping/desired.ts');
    const spec = TEST_API.validateSpec((await getSource(cluster, 'foreign', 'db')).spec);
    const providerRules = memoryProviderFactory(registries).defaultMapping(spec);
    const [desired] = buildDesiredState({ sourceName: 'db', spec, endpoints: reg.snapshot().endpoints, providerRules }).entries;
    assert.ok(desired);
    await applyYaml(cluster, `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${desired.name}, namespace: foreign, labels: {owner: hand}}
spec: {address: 172.16.0.9}
`);
    await cluster.kubectl(['patch', 'vmrs', 'db', '-n', 'foreign', '--type=merge', '-p', '{"spec":{"suspend":false}}']);
    const source = await eventually('a Conflict condition', async () => {
      const s = await getSource(cluster, 'foreign', 'db');
      return condition(s, 'Synced')?.reason === 'Conflict' ? s : undefined;
    });
    assert.equal(source.status?.conflicts, 1);
    assert.match(condition(source, 'Ready')?.message ?? '', /spec\.adopt/);
    const foreign = JSON.parse(await cluster.kubectl(['get', 'workloadentry', desired.name, '-n', 'foreign', '-o', 'json'])) as { spec: { address: string }; metadata: { labels: Record<string, string> } };
    assert.equal(foreign.spec.address, '172.16.0.9', 'the foreign object is untouched');
    const events = await cluster.kubectl(['get', 'events', '-n', 'foreign', '--field-selector', 'reason=Conflict', '-o', 'name']);
    assert.notEqual(events.trim(), '', 'a Conflict event is recorded');

    await cluster.kubectl(['patch', 'vmrs', 'db', '-n', 'foreign', '--type=merge', '-p', '{"spec":{"adopt":true}}']);
    await eventually('the entry to be adopted', async () => {
      const e = JSON.parse(await cluster.kubectl(['get', 'workloadentry', desired.name, '-n', 'foreign', '-o', 'json'])) as { spec: { address: string }; metadata: { labels: Record<string, string> } };
      return e.spec.address === '10.2.0.1' && e.metadata.labels[SOURCE_LABEL] === 'db' ? true : undefined;
    });
  });

  test('a first sync of many endpoints checks names with one LIST, and still never touches a foreign object', async () => {
    const { url, reg } = registry('bulk');
    for (let i = 1; i <= 30; i++) reg.set(`vm-${i}`, `10.9.1.${i}`);
    await applyYaml(cluster, sourceYaml('bulk', 'bulk', url, '  suspend: true\n'));
    const { buildDesiredState } = await import('../../src/mapping/desired.ts');
    const spec = TEST_API.validateSpec((await getSource(cluster, 'bulk', 'bulk')).spec);
    const providerRules = memoryProviderFactory(registries).defaultMapping(spec);
    const desired = buildDesiredState({ sourceName: 'bulk', spec, endpoints: reg.snapshot().endpoints, providerRules }).entries;
    const taken = desired[7];
    assert.ok(taken);
    await applyYaml(cluster, `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: ${taken.name}, namespace: bulk}\nspec: {address: 172.16.9.9}\n`);
    const gets = async (): Promise<number> => ((await op.metrics.restRequests.get()).values.filter((v) => v.labels['method'] === 'GET').reduce((a, v) => a + v.value, 0));
    const getsBefore = await gets();
    await cluster.kubectl(['patch', 'vmrs', 'bulk', '-n', 'bulk', '--type=merge', '-p', '{"spec":{"suspend":false}}']);
    const source = await eventually('29 entries and one conflict', async () => {
      const s = await getSource(cluster, 'bulk', 'bulk');
      return s.status?.managedEntries === 29 && s.status.conflicts === 1 ? s : undefined;
    });
    assert.equal(condition(source, 'Synced')?.reason, 'Conflict');
    const foreign = (await getEntries(cluster, 'bulk')).find((e) => e.metadata.name === taken.name);
    assert.equal(foreign?.spec.address, '172.16.9.9', 'the foreign object is untouched');
    assert.ok((await gets()) - getsBefore < 30, 'names were not checked with a GET each');
  });

  test('adoption replaces a hand-written twin (same address, service and ports) with the managed one', async () => {
    const { url, reg } = registry('migrate');
    reg.set('vm-1', '10.9.2.1');
    await applyYaml(cluster, `apiVersion: v1
kind: Namespace
metadata: {name: migrate}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: legacy-hand-written, namespace: migrate, labels: {app: web}}
spec: {address: 10.9.2.1, ports: {http: 8080}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: unrelated, namespace: migrate}
spec: {address: 10.9.2.99}
`);
    await applyYaml(cluster, sourceYaml('migrate', 'mig', url, '  adopt: true\n'));
    await waitFor('migrate', { 'vm-1': '10.9.2.1' });
    const names = (await getEntries(cluster, 'migrate')).map((e) => e.metadata.name);
    assert.ok(!names.includes('legacy-hand-written'), 'the hand-written twin is gone');
    assert.ok(names.includes('unrelated'), 'an entry for another address is untouched');
  });

  test('keeps every entry while the registry is down, and says so in status', async () => {
    const { url, reg } = registry('outage');
    reg.set('vm-1', '10.3.0.1');
    reg.set('vm-2', '10.3.0.2');
    await applyYaml(cluster, sourceYaml('outage', 'q', url, '  interval: 1s\n'));
    await waitFor('outage', { 'vm-1': '10.3.0.1', 'vm-2': '10.3.0.2' });
    reg.failure = 'Unreachable';
    reg.clear();
    const source = await eventually('ProviderReady=False', async () => {
      const s = await getSource(cluster, 'outage', 'q');
      return condition(s, 'ProviderReady')?.status === 'False' ? s : undefined;
    });
    assert.equal(condition(source, 'ProviderReady')?.reason, 'MemoryUnreachable');
    assert.equal(condition(source, 'Ready')?.status, 'False');
    await afterReconciles(op, 3);
    assert.equal((await getEntries(cluster, 'outage')).length, 2, 'entries are kept during the outage');
    reg.failure = undefined;
    reg.set('vm-1', '10.3.0.1');
    await waitFor('outage', { 'vm-1': '10.3.0.1' });
  });

  test('holds back a sync that would delete most entries at once (an empty answer), until the guard is lifted', async () => {
    const { url, reg } = registry('guard');
    for (let i = 1; i <= 4; i++) reg.set(`vm-${i}`, `10.4.0.${i}`);
    await applyYaml(cluster, sourceYaml('guard', 'g', url));
    await waitFor('guard', { 'vm-1': '10.4.0.1', 'vm-2': '10.4.0.2', 'vm-3': '10.4.0.3', 'vm-4': '10.4.0.4' });
    reg.clear();
    const source = await eventually('DeletionGuard', async () => {
      const s = await getSource(cluster, 'guard', 'g');
      return condition(s, 'Synced')?.reason === 'DeletionGuard' ? s : undefined;
    });
    assert.equal(source.status?.heldBackDeletes, 4);
    // The alert reads the guard apart from policy holds.
    const held = await eventually('held-back deletes by reason', async () => {
      const values = (await op.metrics.heldBackDeletes.get()).values.filter((v) => v.labels['source'] === 'guard/g');
      const byReason = Object.fromEntries(values.map((v) => [v.labels['reason'], v.value]));
      return byReason['DeletionGuard'] === 4 ? byReason : undefined;
    });
    assert.deepEqual(held, { Policy: 0, DeletionGuard: 4, UnknownScope: 0 });
    assert.equal((await getEntries(cluster, 'guard')).length, 4);
    await cluster.kubectl(['patch', 'vmrs', 'g', '-n', 'guard', '--type=merge', '-p', '{"spec":{"deletionGuard":{"enabled":false}}}']);
    await waitFor('guard', {});
  });

  test('policies: upsert-only never deletes, create-only never updates', async () => {
    const { url, reg } = registry('policy');
    reg.set('vm-1', '10.5.0.1');
    reg.set('vm-2', '10.5.0.2');
    await applyYaml(cluster, sourceYaml('policy', 'p', url, '  policy: upsert-only\n'));
    await waitFor('policy', { 'vm-1': '10.5.0.1', 'vm-2': '10.5.0.2' });
    reg.remove('vm-1');
    reg.set('vm-2', '10.5.0.22');
    await waitFor('policy', { 'vm-1': '10.5.0.1', 'vm-2': '10.5.0.22' });
    const s = await getSource(cluster, 'policy', 'p');
    assert.match(condition(s, 'Synced')?.message ?? '', /not made because of the policy/);

    await cluster.kubectl(['patch', 'vmrs', 'p', '-n', 'policy', '--type=merge', '-p', '{"spec":{"policy":"create-only"}}']);
    // The registry changes only once the operator has synced the new spec: a sync of the old
    // one (upsert-only) would still update vm-2.
    await eventually('the create-only spec synced', async () => {
      const src = await getSource(cluster, 'policy', 'p');
      return src.status?.observedGeneration === src.metadata.generation;
    });
    reg.set('vm-2', '10.5.0.23');
    reg.set('vm-3', '10.5.0.3');
    await waitFor('policy', { 'vm-1': '10.5.0.1', 'vm-2': '10.5.0.22', 'vm-3': '10.5.0.3' });
  });

  test('suspend keeps entries as they are and reports it', async () => {
    const { url, reg } = registry('suspend');
    reg.set('vm-1', '10.6.0.1');
    await applyYaml(cluster, sourceYaml('suspend', 's', url));
    await waitFor('suspend', { 'vm-1': '10.6.0.1' });
    await cluster.kubectl(['patch', 'vmrs', 's', '-n', 'suspend', '--type=merge', '-p', '{"spec":{"suspend":true}}']);
    await eventually('Suspended', async () => condition(await getSource(cluster, 'suspend', 's'), 'Synced')?.reason === 'Suspended');
    reg.set('vm-1', '10.6.0.11');
    reg.set('vm-2', '10.6.0.2');
    await sleep(1500);
    assert.deepEqual(Object.fromEntries(await entriesOf('suspend')), { 'vm-1': '10.6.0.1' });
    await cluster.kubectl(['patch', 'vmrs', 's', '-n', 'suspend', '--type=merge', '-p', '{"spec":{"suspend":false}}']);
    await waitFor('suspend', { 'vm-1': '10.6.0.11', 'vm-2': '10.6.0.2' });
  });

  test('deleting the source cascades to its entries through the garbage collector', async () => {
    const { url, reg } = registry('cascade');
    reg.set('vm-1', '10.7.0.1');
    reg.set('vm-2', '10.7.0.2');
    await applyYaml(cluster, sourceYaml('cascade', 'c', url));
    await waitFor('cascade', { 'vm-1': '10.7.0.1', 'vm-2': '10.7.0.2' });
    await cluster.kubectl(['delete', 'vmrs', 'c', '-n', 'cascade', '--wait=false']);
    await eventually('entries to be garbage-collected', async () => ((await getEntries(cluster, 'cascade')).length === 0 ? true : undefined), 40_000);
  });

  test('makes no writes in steady state', async () => {
    const { url, reg } = registry('steady');
    for (let i = 1; i <= 5; i++) reg.set(`vm-${i}`, `10.8.0.${i}`);
    await applyYaml(cluster, sourceYaml('steady', 'st', url, '  interval: 1s\n'));
    await waitFor('steady', Object.fromEntries([1, 2, 3, 4, 5].map((i) => [`vm-${i}`, `10.8.0.${i}`])));
    await eventually('Ready', async () => condition(await getSource(cluster, 'steady', 'st'), 'Ready')?.status === 'True');
    // Settled: one more full read after Ready; then three reads at the interval make no write.
    const afterReady = reg.snapshots;
    await eventually('a read after Ready', async () => reg.snapshots > afterReady);
    const before = await op.metrics.writeCount();
    const snapshotsBefore = reg.snapshots;
    await eventually('three reads at the interval', async () => reg.snapshots - snapshotsBefore >= 3);
    assert.equal((await op.metrics.writeCount()) - before, 0, 'no writes while nothing changes');
  });
});
