/**
 * The KubeClient against the real apiserver: every request (applies, reads, deletes, a
 * watch) shares one pool and one set of credentials, and the apiserver's errors come
 * back as KubeApiErrors with its Status.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WORKLOAD_ENTRIES, type WorkloadEntry } from '../../src/api/istio.ts';
import { isNotFound, KubeApiError, KubeClient } from '../../src/runtime/kube-client.ts';
import type { WatchEvent } from '../../src/runtime/api-watch.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import { applyYaml, startTestCluster } from '../harness/operator-env.ts';

const NS = 'direct-writes';
let cluster: LocalCluster;
let client: KubeClient;
const counted: string[] = [];

function entry(name: string, address: string): WorkloadEntry {
  return { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name, namespace: NS, labels: { app: 'web' } }, spec: { address } };
}

before(async () => {
  cluster = await startTestCluster();
  await applyYaml(cluster, `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}\n`);
  client = new KubeClient(cluster.kc, 'vm-registry-operator', { restRequest: (method, code) => void counted.push(`${method} ${code}`) });
});

after(async () => {
  await client?.close();
  await cluster?.stop();
});

describe('KubeClient writes', () => {
  test('applies and reads land as through any client, over one pool', async () => {
    await client.apply(WORKLOAD_ENTRIES, entry('vm-1', '10.0.0.1'));
    await client.apply(WORKLOAD_ENTRIES, entry('vm-1', '10.0.0.2'));
    await client.apply(WORKLOAD_ENTRIES, entry('vm-2', '10.0.0.3'));
    const read = await client.get<WorkloadEntry>(WORKLOAD_ENTRIES, NS, 'vm-1');
    assert.equal(read.spec.address, '10.0.0.2');
    const managers = (read.metadata as { managedFields?: { manager?: string }[] }).managedFields?.map((f) => f.manager);
    assert.deepEqual(managers, ['vm-registry-operator'], 'applied with the field manager');
    await client.applyStatus(WORKLOAD_ENTRIES, { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'vm-1', namespace: NS }, status: { conditions: [{ type: 'Healthy', status: 'False' }] } });
    const withStatus = await client.get<WorkloadEntry>(WORKLOAD_ENTRIES, NS, 'vm-1');
    assert.equal(withStatus.status?.conditions?.[0]?.status, 'False');
    assert.deepEqual(counted.filter((c) => c.startsWith('PATCH')), ['PATCH 200', 'PATCH 200', 'PATCH 200', 'PATCH 200'], 'every write is counted');
    assert.equal(client.channel.renewals, 1, 'one pool and one set of credentials served every request');
  });

  test("a write's failure is the apiserver's Status: a uid precondition, a missing object, an invalid object", async () => {
    const stale = client.delete(WORKLOAD_ENTRIES, NS, 'vm-2', 'not-its-uid');
    await assert.rejects(stale, (e: unknown) => e instanceof KubeApiError && e.code === 409 && e.reason === 'Conflict');
    await assert.rejects(client.delete(WORKLOAD_ENTRIES, NS, 'nobody', undefined), isNotFound);
    const invalid = { ...entry('vm-3', '10.0.0.4'), spec: { address: '10.0.0.4', ports: { http: 70_000 } } };
    await assert.rejects(client.apply(WORKLOAD_ENTRIES, invalid), (e: unknown) => e instanceof KubeApiError && e.code === 422 && e.reason === 'Invalid' && /ports/.test(e.message));
    const uid = (await client.get<WorkloadEntry>(WORKLOAD_ENTRIES, NS, 'vm-2')).metadata.uid;
    await client.delete(WORKLOAD_ENTRIES, NS, 'vm-2', uid);
    await assert.rejects(client.get(WORKLOAD_ENTRIES, NS, 'vm-2'), isNotFound);
  });

  test('a watch from a list\'s version sees the changes after it, and a compacted-away version is 410 Expired', async () => {
    const page = await client.listPage<WorkloadEntry>(WORKLOAD_ENTRIES, NS, { labelSelector: 'app=web' });
    const from = page.metadata?.resourceVersion ?? '';
    const stop = new AbortController();
    const seen: string[] = [];
    const onEvent = (e: WatchEvent): void => {
      const name = (e.object as { metadata?: { name?: string } }).metadata?.name;
      if (e.type !== 'BOOKMARK') seen.push(`${e.type} ${name}`);
      if (seen.length === 2) stop.abort(new Error('seen enough'));
    };
    // Its rejection is awaited from the start: the watch may end before the delete's answer comes.
    const watching = assert.rejects(client.watch(WORKLOAD_ENTRIES, NS, { resourceVersion: from, labelSelector: 'app=web', timeoutSeconds: 60, idleMs: 60_000 }, onEvent, stop.signal), /seen enough/);
    await client.apply(WORKLOAD_ENTRIES, entry('vm-4', '10.0.0.5'));
    await client.delete(WORKLOAD_ENTRIES, NS, 'vm-4', undefined);
    await watching;
    assert.deepEqual(seen, ['ADDED vm-4', 'DELETED vm-4']);
    const expired = client.watch(WORKLOAD_ENTRIES, NS, { resourceVersion: '1', timeoutSeconds: 60, idleMs: 60_000 }, () => undefined, AbortSignal.timeout(30_000));
    await assert.rejects(expired, (e: unknown) => e instanceof KubeApiError && e.code === 410);
  });
});
