/**
 * The reconciler against an in-memory cluster: read → map → plan → apply → report, with
 * one status write per reconcile whose counts come from the inventory after the apply,
 * and a snapshot reused until it is as old as the interval tick.
 */
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { HEALTH_CHECKS_ANNOTATION, WORKLOAD_ENTRIES, type WorkloadEntry } from '../../../src/api/istio.ts';
import type { VmRegistrySource, VmRegistrySourceSpecInput, VmRegistrySourceStatus } from '../../../src/api/types.ts';
import { EventRecorder } from '../../../src/controller/events.ts';
import { Reconciler } from '../../../src/controller/reconciler.ts';
import { ControllerMetrics } from '../../../src/metrics/controller-metrics.ts';
import { silentLogger } from '../../../src/metrics/logger.ts';
import { factoriesOf } from '../../../src/providers/registry.ts';
import { MANAGED_BY_LABEL, MANAGED_SELECTOR } from '../../../src/api/ownership.ts';
import { source } from '../../fixtures/builders.ts';
import { MemoryRegistry, memoryProviderFactory } from '../../fixtures/memory-provider.ts';
import { MemoryCluster } from '../../fixtures/memory-writer.ts';

const ADDRESS = 'http://registry.test:8500';
const KEY = 'apps/web';

interface Rig {
  readonly cluster: MemoryCluster;
  readonly registry: MemoryRegistry;
  readonly reconciler: Reconciler;
  /** Reconciles once; the source's status then holds what was written (as the informer would show it). */
  readonly run: () => Promise<unknown>;
  readonly status: () => VmRegistrySourceStatus | undefined;
  /** How often the whole cache of the namespace's entries was read (a whole sync). */
  readonly wholeReads: () => number;
}

/**
 * `partial`: the registry reports its endpoints in groups (one per service, as Consul's
 * provider does) and the reconciler can look up single entries in the cache, so a sync
 * may plan only what changed. Informer events are told by the test (noteEntry).
 */
function rig(spec: Partial<VmRegistrySourceSpecInput> = {}, consul: Record<string, unknown> = {}, options: { partial?: boolean } = {}): Rig {
  const cluster = new MemoryCluster();
  const registry = new MemoryRegistry();
  registry.grouped = options.partial === true;
  let wholeReads = 0;
  let current: VmRegistrySource = source('web').namespace('apps').uid('uid-web').consul({ address: ADDRESS, ...consul }).spec({ interval: '30s', ...spec }).build();
  const reconciler = new Reconciler({
    client: cluster,
    getSource: (ns, name) => (ns === 'apps' && name === 'web' ? current : undefined),
    listManaged: (ns) => {
      wholeReads++;
      return cluster.all<WorkloadEntry>(WORKLOAD_ENTRIES, ns, MANAGED_SELECTOR);
    },
    ...(options.partial ? { getManaged: (ns: string, name: string) => cluster.peek<WorkloadEntry>(WORKLOAD_ENTRIES, ns, name) } : {}),
    listServiceEntries: () => [],
    factories: factoriesOf([memoryProviderFactory(new Map([[ADDRESS, registry]]), { watch: false, servedAs: 'consul' })]),
    metrics: new ControllerMetrics(new Registry(), { defaultMetrics: false }),
    log: silentLogger,
    events: new EventRecorder(cluster, silentLogger),
    enqueue: () => {},
  });
  const status = (): VmRegistrySourceStatus | undefined => cluster.statuses.at(-1)?.status as VmRegistrySourceStatus | undefined;
  const run = async (): Promise<unknown> => {
    try {
      return await reconciler.reconcile(KEY, AbortSignal.timeout(5000));
    } finally {
      const s = status();
      if (s !== undefined) current = { ...current, status: s };
    }
  };
  return { cluster, registry, reconciler, run, status, wholeReads: () => wholeReads };
}

const entries = (r: Rig): WorkloadEntry[] => r.cluster.all<WorkloadEntry>(WORKLOAD_ENTRIES, 'apps');
const condition = (r: Rig, type: string) => r.status()?.conditions?.find((c) => c.type === type);

function handWritten(name: string, address: string): WorkloadEntry {
  return { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name, namespace: 'apps' }, spec: { address, labels: { app: 'web' } } };
}

describe('Reconciler', () => {
  beforeEach(() => mock.timers.enable({ apis: ['Date'], now: Date.parse('2026-01-01T00:00:00Z') }));
  afterEach(() => mock.timers.reset());

  test('creates the entries, writes status once, and counts managed entries from the inventory', async () => {
    const r = rig();
    r.registry.set('vm-1', '10.0.0.1');
    r.registry.set('vm-2', '10.0.0.2');
    await r.run();
    assert.equal(entries(r).length, 2);
    assert.equal(r.cluster.writesOf('mergeStatus').length, 1);
    assert.deepEqual([r.status()?.desiredEntries, r.status()?.managedEntries, r.status()?.conflicts], [2, 2, 0]);
    assert.equal(condition(r, 'Synced')?.reason, 'InSync');

    const before = r.cluster.writes.length;
    await r.run();
    assert.equal(r.cluster.writes.length, before, 'a steady state writes nothing, status included');
  });

  test('the echo of its own writes asks nothing of a source; an edit, a deletion by hand or an unwanted entry does', async () => {
    const r = rig();
    r.registry.set('vm-1', '10.0.0.1');
    r.registry.set('vm-2', '10.0.0.2');
    assert.equal(r.reconciler.isSettled(KEY, 'add', handWritten('x', '10.0.0.9')), false, 'nothing is settled before the first sync');
    await r.run();
    const [one, two] = entries(r);
    assert.ok(one && two);
    assert.equal(r.reconciler.isSettled(KEY, 'add', one), true, 'the entry as applied');
    assert.equal(r.reconciler.isSettled(KEY, 'update', two), true);
    assert.equal(r.reconciler.isSettled(KEY, 'update', { ...one, spec: { ...one.spec, address: '10.6.6.6' } }), false, 'edited by hand');
    assert.equal(r.reconciler.isSettled(KEY, 'delete', one), false, 'a wanted entry deleted by hand');
    assert.equal(r.reconciler.isSettled(KEY, 'update', { ...one, metadata: { ...one.metadata, name: 'not-wanted' } }), false, 'an owned entry the source no longer wants');
    assert.equal(r.reconciler.isSettled(KEY, 'delete', { ...one, metadata: { ...one.metadata, name: 'not-wanted' } }), true, 'an unwanted entry gone');
    assert.equal(r.reconciler.isSettled(KEY, 'update', { ...one, metadata: { ...one.metadata, ownerReferences: [] } }), false, 'no longer owned');
  });

  test('in health status mode an entry whose Healthy condition differs from the registry is not settled', async () => {
    const r = rig({}, { health: { mode: 'status' } });
    r.registry.set('vm-1', '10.0.0.1', {}, { healthy: false });
    await r.run();
    const [one] = entries(r);
    assert.ok(one);
    assert.equal(r.reconciler.isSettled(KEY, 'update', one), true);
    const healthy: WorkloadEntry = { ...one, status: { conditions: [{ type: 'Healthy', status: 'True' as const }] } };
    assert.equal(r.reconciler.isSettled(KEY, 'update', healthy), false);
  });

  test('a foreign entry holding a desired name is a conflict: not touched, reported once in status', async () => {
    const r = rig();
    r.registry.set('vm-1', '10.0.0.1');
    await r.run();
    const name = entries(r)[0]!.metadata.name;
    r.cluster.remove(WORKLOAD_ENTRIES, 'apps', name);
    r.cluster.seed(WORKLOAD_ENTRIES, { ...handWritten(name, '10.9.9.9'), metadata: { name, namespace: 'apps', labels: { [MANAGED_BY_LABEL]: 'helm' } } });
    r.registry.changed();
    r.reconciler.markStale(KEY);
    const writes = r.cluster.writes.length;
    await r.run();
    assert.deepEqual(r.cluster.writes.slice(writes).map((w) => w.op), ['mergeStatus']);
    assert.deepEqual([r.status()?.conflicts, r.status()?.managedEntries], [1, 0]);
    assert.equal(condition(r, 'Synced')?.reason, 'Conflict');
    assert.ok(r.cluster.eventReasons().includes('Conflict'));
  });

  test('with spec.adopt an unowned entry of a desired name is taken over and counted as managed', async () => {
    const plain = rig();
    plain.registry.set('vm-1', '10.0.0.1');
    await plain.run();
    const name = entries(plain)[0]!.metadata.name;

    const r = rig({ adopt: true });
    r.registry.set('vm-1', '10.0.0.1');
    r.cluster.seed(WORKLOAD_ENTRIES, handWritten(name, '10.0.0.1'));
    await r.run();
    assert.deepEqual([r.status()?.managedEntries, r.status()?.conflicts], [1, 0]);
    assert.equal(entries(r)[0]?.metadata.labels?.[MANAGED_BY_LABEL], 'vm-registry-operator');
  });

  test('the deletion guard and the policy hold deletions back; status says how many', async () => {
    const r = rig({ deletionGuard: { enabled: true, maxDeletePercent: 50 } });
    for (const i of [1, 2, 3, 4]) r.registry.set(`vm-${i}`, `10.0.0.${i}`);
    await r.run();
    for (const i of [2, 3, 4]) r.registry.remove(`vm-${i}`);
    r.reconciler.markStale(KEY);
    await r.run();
    assert.equal(entries(r).length, 4);
    assert.deepEqual([r.status()?.heldBackDeletes, r.status()?.managedEntries], [3, 4]);
    assert.equal(condition(r, 'Synced')?.reason, 'DeletionGuard');

    const upsert = rig({ policy: 'upsert-only' });
    upsert.registry.set('vm-1', '10.0.0.1');
    await upsert.run();
    upsert.registry.clear();
    upsert.reconciler.markStale(KEY);
    await upsert.run();
    assert.deepEqual([entries(upsert).length, upsert.status()?.heldBackDeletes], [1, 1]);
  });

  test('a failed write fails the reconcile after one status write that says so', async () => {
    const r = rig();
    r.registry.set('vm-1', '10.0.0.1');
    r.registry.set('vm-2', '10.0.0.2');
    r.cluster.fail('apply', () => new Error('admission denied'));
    await assert.rejects(r.run(), /1 WorkloadEntry writes failed/);
    assert.equal(r.cluster.writesOf('mergeStatus').length, 1);
    assert.equal(condition(r, 'Synced')?.reason, 'ApplyFailed');
    assert.deepEqual([r.status()?.desiredEntries, r.status()?.managedEntries], [2, 1], 'managed counts the entry that was written');
  });

  test('the snapshot is reused until it is as old as the interval tick', async () => {
    const r = rig();
    r.registry.set('vm-1', '10.0.0.1');
    const outcome = (await r.run()) as { requeueAfterMs: number };
    assert.equal(r.registry.snapshots, 1);
    await r.run();
    assert.equal(r.registry.snapshots, 1, 'a reconcile between ticks reuses the snapshot');
    mock.timers.tick(outcome.requeueAfterMs);
    await r.run();
    assert.equal(r.registry.snapshots, 2, 'the tick reads afresh');
  });

  test("Consul's status health mode: the mapping adds the health-checks switch and Healthy is written", async () => {
    const r = rig({}, { health: { mode: 'status' } });
    r.registry.set('vm-1', '10.0.0.1', {}, { healthy: false });
    await r.run();
    const [e] = entries(r);
    assert.equal(e?.metadata.annotations?.[HEALTH_CHECKS_ANNOTATION], 'true');
    assert.equal(e?.status?.conditions?.[0]?.status, 'False');
  });

  test('an invalid spec writes one status and fails terminally', async () => {
    const r = rig({ interval: 'soon' });
    await assert.rejects(r.run(), { name: 'TerminalError' });
    assert.equal(r.cluster.writesOf('mergeStatus').length, 1);
    assert.equal(condition(r, 'Synced')?.reason, 'InvalidSpec');
  });
});

describe('Reconciler: a sync plans only what changed', () => {
  beforeEach(() => mock.timers.enable({ apis: ['Date'], now: Date.parse('2026-01-01T00:00:00Z') }));
  afterEach(() => mock.timers.reset());

  /** Three services of two instances each; the first sync is whole. */
  async function fleet(spec: Partial<VmRegistrySourceSpecInput> = {}): Promise<Rig> {
    const r = rig(spec, {}, { partial: true });
    for (const s of [1, 2, 3]) for (const i of [1, 2]) r.registry.set(`vm-${s}-${i}`, `10.0.${s}.${i}`, { service: `svc-${s}` });
    await r.run();
    assert.equal(r.wholeReads(), 1, 'the first sync reads the whole cache');
    assert.equal(entries(r).length, 6);
    return r;
  }

  test('a registry change in one service is applied without reading the whole cache, and status still counts all', async () => {
    const r = await fleet();
    r.registry.set('vm-2-1', '10.9.2.1', { service: 'svc-2' });
    r.registry.set('vm-2-3', '10.0.2.3', { service: 'svc-2' });
    r.reconciler.markStale(KEY);
    await r.run();
    assert.equal(r.wholeReads(), 1, 'no whole read: only the names of svc-2 were planned');
    assert.deepEqual(
      entries(r).map((e) => e.spec?.address).sort(),
      ['10.0.1.1', '10.0.1.2', '10.0.2.2', '10.0.2.3', '10.0.3.1', '10.0.3.2', '10.9.2.1'],
    );
    assert.deepEqual([r.status()?.desiredEntries, r.status()?.managedEntries], [7, 7]);

    r.registry.remove('vm-3-2');
    r.reconciler.markStale(KEY);
    await r.run();
    assert.equal(r.wholeReads(), 1);
    assert.deepEqual([entries(r).length, r.status()?.desiredEntries, r.status()?.managedEntries], [6, 6, 6]);
  });

  test('an entry deleted or edited by hand, as the informer reports it, is put back by a partial sync', async () => {
    const r = await fleet();
    const [first, second] = entries(r);
    assert.ok(first && second);
    r.cluster.remove(WORKLOAD_ENTRIES, 'apps', first.metadata.name);
    r.reconciler.noteEntry(KEY, first.metadata.name);
    r.cluster.seed(WORKLOAD_ENTRIES, { ...second, spec: { ...second.spec, address: '10.6.6.6' } });
    r.reconciler.noteEntry(KEY, second.metadata.name);
    await r.run();
    assert.equal(r.wholeReads(), 1);
    assert.equal(r.cluster.peek<WorkloadEntry>(WORKLOAD_ENTRIES, 'apps', first.metadata.name)?.spec?.address, first.spec?.address, 'recreated');
    assert.equal(r.cluster.peek<WorkloadEntry>(WORKLOAD_ENTRIES, 'apps', second.metadata.name)?.spec?.address, second.spec?.address, 'edit undone');
  });

  test('the deletion guard weighs a partial sync against every owned entry, and held-back deletions stay counted', async () => {
    const r = await fleet({ deletionGuard: { enabled: true, maxDeletePercent: 40 } });
    for (const id of ['vm-3-1', 'vm-3-2']) r.registry.remove(id);
    r.reconciler.markStale(KEY);
    await r.run();
    // 2 of 6 (33%) is within 40%: a partial sync that saw only 2 owned entries would have tripped.
    assert.deepEqual([entries(r).length, r.status()?.heldBackDeletes], [4, 0]);

    for (const id of ['vm-1-1', 'vm-1-2', 'vm-2-1']) r.registry.remove(id);
    r.reconciler.markStale(KEY);
    await r.run();
    assert.deepEqual([entries(r).length, r.status()?.heldBackDeletes, r.status()?.managedEntries], [4, 3, 4], '3 of 4 is over 40%');
    assert.equal(condition(r, 'Synced')?.reason, 'DeletionGuard');

    // Another change elsewhere: the held-back names are planned again, still held, still reported.
    r.registry.set('vm-2-2', '10.8.2.2', { service: 'svc-2' });
    r.reconciler.markStale(KEY);
    await r.run();
    assert.equal(r.wholeReads(), 1);
    assert.deepEqual([r.status()?.heldBackDeletes, r.status()?.managedEntries], [3, 4]);
    assert.equal(condition(r, 'Synced')?.reason, 'DeletionGuard');
  });

  test('a conflict stays reported by partial syncs until the foreign entry goes', async () => {
    const r = await fleet();
    const [first] = entries(r);
    assert.ok(first);
    const name = first.metadata.name;
    r.cluster.remove(WORKLOAD_ENTRIES, 'apps', name);
    r.cluster.seed(WORKLOAD_ENTRIES, { ...handWritten(name, '10.9.9.9'), metadata: { name, namespace: 'apps', labels: { [MANAGED_BY_LABEL]: 'helm' } } });
    r.reconciler.noteEntry(KEY, name);
    await r.run();
    assert.deepEqual([r.status()?.conflicts, r.status()?.managedEntries], [1, 5]);
    r.registry.set('vm-3-3', '10.0.3.3', { service: 'svc-3' });
    r.reconciler.markStale(KEY);
    await r.run();
    assert.deepEqual([r.status()?.conflicts, r.status()?.managedEntries, r.status()?.desiredEntries], [1, 6, 7]);
    r.cluster.remove(WORKLOAD_ENTRIES, 'apps', name);
    await r.run();
    assert.deepEqual([r.status()?.conflicts, r.status()?.managedEntries], [0, 7]);
    assert.equal(r.wholeReads(), 1);
  });

  test('a whole sync still comes with each direct LIST (not each interval), and after a failed sync', async () => {
    const r = await fleet();
    r.cluster.fail('apply', () => new Error('admission denied'));
    r.registry.set('vm-1-1', '10.7.1.1', { service: 'svc-1' });
    r.reconciler.markStale(KEY);
    await assert.rejects(r.run());
    const afterFailure = r.wholeReads();
    await r.run();
    assert.equal(r.wholeReads(), afterFailure + 1, 'the sync after a failure is whole');
    await r.run();
    assert.equal(r.wholeReads(), afterFailure + 1);
    const directLists = (): number => r.cluster.calls.filter((c) => c.op === 'list' && c.plural === WORKLOAD_ENTRIES.plural).length;
    const listed = directLists();
    mock.timers.tick(30_000);
    await r.run();
    assert.deepEqual([r.wholeReads(), directLists()], [afterFailure + 1, listed], 'the interval reads the registry and plans only what changed');
    mock.timers.tick(10 * 60_000);
    await r.run();
    assert.equal(directLists(), listed + 1, 'the direct LIST of the owned entries brings a whole sync');
  });
});
