/**
 * Fenced leadership against the real apiserver. Two in-process replicas; the leader
 * reaches the apiserver through a loopback TCP proxy that stops forwarding mid-write.
 * The leader must stop writing before its lease expires, the standby must take over,
 * and at no time may two replicas write.
 *
 * How writes are attributed, from the apiserver's own view: each replica reads its own
 * registry (same source, different VMs), so every change a watch shows says who made
 * it: an entry for 10.40.1.x is written by A (and deleted by B), 10.40.2.x the reverse;
 * a status with 2 desired entries is A's, 3 is B's. With one etcd, resourceVersions
 * are etcd revisions, one counter for every object, so the watch events of entries,
 * source status and the Lease are totally ordered: all of A's writes must come before
 * the Lease names B, and all of B's after.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Watch } from '@kubernetes/client-node';
import { MemoryRegistry, memoryProviderFactory } from '../fixtures/memory-provider.ts';
import { applyYaml, eventually, startTestCluster, startOperator, type RunningOperator } from '../harness/operator-env.ts';
import { StallableProxy } from '../harness/tcp-proxy.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import type { Lease } from '../../src/runtime/lease.ts';
import type { VmRegistrySource } from '../../src/api/types.ts';
import type { WorkloadEntry } from '../../src/api/istio.ts';

const NS = 'fence';
const URL_ = 'http://fence.registry.test';
const TIMINGS = { leaseDurationMs: 6000, renewDeadlineMs: 3000, retryPeriodMs: 500 };
const LEASE = { namespace: 'ops', name: 'vmreg-fence-test', ...TIMINGS };

let cluster: LocalCluster;
let proxy: StallableProxy;
const stops: (() => Promise<unknown>)[] = [];

before(async () => {
  cluster = await startTestCluster({ controllerManager: false });
  await applyYaml(cluster, `apiVersion: v1
kind: Namespace
metadata: {name: ops}
---
apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: vmregistry.io/v1alpha1
kind: VmRegistrySource
metadata: {name: src, namespace: ${NS}}
spec:
  interval: 1h
  # Each replica deletes the other's entries: the deletions are part of what is checked.
  deletionGuard: {enabled: false}
  memory: {registry: "${URL_}"}
  workloadEntry:
    ports: [{name: http, number: 8080}]
`);
  const server = new URL(cluster.cp.server);
  proxy = await StallableProxy.start({ host: server.hostname, port: Number(server.port) });
});

after(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
  await proxy?.close();
  await cluster?.stop();
});

type Writer = 'a' | 'b' | 'unknown';
interface Seen {
  readonly rv: number;
  readonly what: string;
  readonly by: Writer;
}

/** Watches entries, the source and the Lease directly (not through the proxy). */
async function watchWrites(): Promise<{ writes: Seen[]; holders: { rv: number; holder: string; renewTime: string; acquireTime: string }[] }> {
  const writes: Seen[] = [];
  const holders: { rv: number; holder: string; renewTime: string; acquireTime: string }[] = [];
  const watch = new Watch(cluster.kc);
  const rvOf = (o: { metadata?: { resourceVersion?: string } }): number => Number(o.metadata?.resourceVersion);
  const done = (): void => {};
  const controllers = await Promise.all([
    watch.watch(`/apis/networking.istio.io/v1/namespaces/${NS}/workloadentries`, {}, (type, e: WorkloadEntry) => {
      const address = e.spec?.address ?? '';
      const owner: Writer = address.startsWith('10.40.1.') ? 'a' : address.startsWith('10.40.2.') ? 'b' : 'unknown';
      const other: Writer = owner === 'a' ? 'b' : owner === 'b' ? 'a' : 'unknown';
      writes.push({ rv: rvOf(e), what: `${type} ${e.metadata.name} ${address}`, by: type === 'DELETED' ? other : owner });
    }, done),
    watch.watch(`/apis/vmregistry.io/v1alpha1/namespaces/${NS}/vmregistrysources`, {}, (type, s: VmRegistrySource) => {
      if (s.status === undefined) return; // created by the test
      const desired = s.status.desiredEntries;
      writes.push({ rv: rvOf(s), what: `${type} status desired=${desired}`, by: desired === 2 ? 'a' : desired === 3 ? 'b' : 'unknown' });
    }, done),
    watch.watch(`/apis/coordination.k8s.io/v1/namespaces/${LEASE.namespace}/leases`, {}, (_type, l: Lease) => {
      if (l.metadata.name !== LEASE.name) return;
      holders.push({ rv: rvOf(l), holder: l.spec?.holderIdentity ?? '', renewTime: l.spec?.renewTime ?? '', acquireTime: l.spec?.acquireTime ?? '' });
    }, done),
  ]);
  stops.push(async () => controllers.forEach((c) => c.abort()));
  return { writes, holders };
}

async function reconciles(r: RunningOperator): Promise<number> {
  return (await r.metrics.reconcileTotal.get()).values.reduce((a, v) => a + v.value, 0);
}

test('a leader whose apiserver connection stalls stops writing before its lease expires; the standby takes over; never two writers', { timeout: 180_000 }, async () => {
  // Replica A's kubeconfig points at the proxy (the serving certificate names 127.0.0.1, so TLS still verifies).
  const kubeconfigA = join(cluster.cp.dir, 'kubeconfig-replica-a');
  await writeFile(kubeconfigA, (await readFile(cluster.cp.kubeconfig, 'utf8')).replaceAll(cluster.cp.server, `https://127.0.0.1:${proxy.port}`));

  const regA = new MemoryRegistry();
  regA.set('a-1', '10.40.1.1');
  regA.set('a-2', '10.40.1.2');
  const regB = new MemoryRegistry();
  regB.set('b-1', '10.40.2.1');
  regB.set('b-2', '10.40.2.2');
  regB.set('b-3', '10.40.2.3');

  const seen = await watchWrites();
  const a = await startOperator(cluster, [memoryProviderFactory(new Map([[URL_, regA]]))], { kubeconfig: kubeconfigA, leaderElection: { ...LEASE, identity: 'replica-a' } });
  stops.push(() => a.stop());
  let fenceClosedAtA: number | undefined;
  a.operator.client.fence.signal.addEventListener('abort', () => (fenceClosedAtA = Date.now()));
  await eventually('replica A to lead and write its entries', async () => a.operator.isLeader && seen.writes.some((w) => w.by === 'a'), 30_000);
  const b = await startOperator(cluster, [memoryProviderFactory(new Map([[URL_, regB]]))], { leaderElection: { ...LEASE, identity: 'replica-b' } });
  stops.push(() => b.stop());

  // Both registries keep changing, so whoever leads always has writes to make.
  let flip = 0;
  const flipper = setInterval(() => {
    flip++;
    regA.set('a-1', flip % 2 ? '10.40.1.11' : '10.40.1.1');
    regB.set('b-1', flip % 2 ? '10.40.2.11' : '10.40.2.1');
  }, 150);
  stops.push(async () => clearInterval(flipper));

  const writesA = await a.metrics.writeCount();
  await eventually('replica A to be writing steadily', async () => (await a.metrics.writeCount()) >= writesA + 10, 30_000);
  assert.equal(b.operator.isLeader, false, 'B stands by');
  assert.equal(await b.metrics.writeCount(), 0, 'the standby has written nothing');

  proxy.stall();
  await eventually('replica B to lead', async () => b.operator.isLeader, 30_000);
  await eventually('replica B to have replaced A\'s entries', async () => seen.writes.some((w) => w.by === 'b'), 30_000);

  // The path heals: a replica still writing after its lease was lost would show up now.
  proxy.heal();
  await a.stop();
  const settledAt = await reconciles(b);
  await eventually('ten more reconciles by B after the heal', async () => (await reconciles(b)) >= settledAt + 10, 30_000);
  clearInterval(flipper);
  const fencedA = (await a.metrics.fencedWrites.get()).values[0]?.value ?? 0;
  assert.ok(fencedA > 0, 'replica A had writes refused or aborted by its fence (the stall hit it mid-work)');

  // Client side, one process clock: A's fence closed before B started the acquisition, and before A's lease expired.
  const takeover = seen.holders.find((h) => h.holder === 'replica-b');
  assert.ok(takeover, 'the Lease names B');
  assert.ok(fenceClosedAtA !== undefined, 'A closed its fence');
  assert.ok(fenceClosedAtA < Date.parse(takeover.acquireTime), 'A stopped writing before B began to acquire');
  const lastRenewA = Math.max(...seen.holders.filter((h) => h.holder === 'replica-a').map((h) => Date.parse(h.renewTime)));
  assert.ok(fenceClosedAtA < lastRenewA + TIMINGS.leaseDurationMs, 'A stopped writing before its lease expired');

  // Server side: the apiserver's order of A's writes, the takeover and B's writes.
  const acquiredByA = seen.holders.find((h) => h.holder === 'replica-a');
  assert.ok(acquiredByA);
  const unknown = seen.writes.filter((w) => w.by === 'unknown');
  assert.deepEqual(unknown, [], 'every write is attributed');
  const byA = seen.writes.filter((w) => w.by === 'a');
  const byB = seen.writes.filter((w) => w.by === 'b');
  assert.ok(byA.length > 0 && byB.length > 0, `both replicas wrote (${byA.length} by A, ${byB.length} by B)`);
  const lateA = byA.filter((w) => w.rv > takeover.rv || w.rv < acquiredByA.rv);
  assert.deepEqual(lateA, [], 'A wrote only while it held the lease');
  const earlyB = byB.filter((w) => w.rv < takeover.rv);
  assert.deepEqual(earlyB, [], 'B wrote only after it held the lease');
});
