/**
 * The GCE provider end to end: the project's local Compute server as the registry, the
 * real local control plane, and the operator in-process with the providers this build
 * ships. The service-account key reaches the operator through a Secret next to the
 * VmRegistrySource, and the server checks the signed requests it makes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { builtinProviders } from '../../src/providers/builtin.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import type { VmRegistrySource } from '../../src/api/types.ts';
import type { WorkloadEntry } from '../../src/api/istio.ts';
import { ENDPOINT_ANNOTATION, SCOPE_ANNOTATION, SOURCE_LABEL } from '../../src/api/ownership.ts';
import { GceFakeServer, type InstanceJson } from '../harness/gce-server.ts';
import { applyYaml, condition, eventually, getEntries, getSource, startLocalCluster, startOperator, type RunningOperator, entriesByEndpoint, eventReasons as eventReasonsIn, waitForEndpoints, waitForSource as waitForSourceIn } from '../harness/operator-env.ts';

const ZONES = ['europe-west1-b', 'europe-west1-c', 'us-central1-a'] as const;
const READER = 'mesh-reader@test-project.iam.gserviceaccount.com';

let cluster: LocalCluster;
let server: GceFakeServer;
let op: RunningOperator;
/** The key of a service account the server trusts, as Google would issue it. */
let trustedKey: string;

before(async () => {
  [cluster, server] = await Promise.all([startLocalCluster(), GceFakeServer.start({ zones: [...ZONES] })]);
  trustedKey = server.createServiceAccountKey(READER);
  server.requireAuth();
  op = await startOperator(cluster, builtinProviders());
});

after(async () => {
  await op?.stop();
  await server?.stop();
  await cluster?.stop();
});

function secretYaml(ns: string, keyJson: string): string {
  return `apiVersion: v1
kind: Secret
metadata: {name: gce-key, namespace: ${ns}, annotations: {vmregistry.io/allowed-endpoints: "${server.url}"}}
stringData:
  key.json: '${keyJson.replace(/'/g, "''")}'`;
}

/** A namespace, the key Secret and a GCE source reading the instances labelled suite=<suite>. */
function sourceYaml(ns: string, name: string, suite: string, extraGce = ''): string {
  return `apiVersion: v1
kind: Namespace
metadata: {name: ${ns}}
---
${secretYaml(ns, trustedKey)}
---
apiVersion: vmregistry.io/v1alpha1
kind: VmRegistrySource
metadata: {name: ${name}, namespace: ${ns}}
spec:
  interval: 1s
  gce:
    project: ${server.project}
    endpoint: "${server.url}"
    credentialsSecretRef: {name: gce-key}
    filter: 'labels.suite = "${suite}"'
${extraGce}`;
}

const byInstance = (ns: string, selector?: string): Promise<Map<string, WorkloadEntry>> => entriesByEndpoint(cluster, ns, selector);
const waitForIds = (ns: string, ids: readonly string[], timeoutMs?: number): Promise<Map<string, WorkloadEntry>> => waitForEndpoints(cluster, ns, ids, timeoutMs);
const waitForSource = (ns: string, name: string, what: string, ok: (s: VmRegistrySource) => boolean, timeoutMs?: number): Promise<VmRegistrySource> =>
  waitForSourceIn(cluster, ns, name, what, ok, timeoutMs);
const eventReasons = (ns: string): Promise<string[]> => eventReasonsIn(cluster, ns);

function networkIpOf(i: InstanceJson): string {
  const nics = i['networkInterfaces'] as { networkIP: string }[];
  return nics[0]?.networkIP ?? '';
}

describe('GCE through the operator', () => {
  test('instances across zones and pages become WorkloadEntries; label changes, stops and deletions follow', { timeout: 120_000 }, async () => {
    const made: InstanceJson[] = [];
    for (let i = 0; i < 45; i++) {
      const zone = ZONES[i % 3] ?? 'europe-west1-b';
      made.push(
        server.addInstance({
          name: `fleet-${String(i).padStart(2, '0')}`,
          zone,
          labels: { suite: 'fleet', service: `svc${i % 3}`, team: 'core' },
          metadata: { ports: 'http=8080,grpc=9090' },
          interfaces: [{ networkIP: `10.20.${i}.5`, network: 'mesh-vpc', subnetwork: `sub-${zone}` }],
        }),
      );
    }
    // A stopped instance in the selection never gets an entry.
    const stoppedFromStart = server.addInstance({ name: 'fleet-stopped', zone: 'us-central1-a', status: 'TERMINATED', labels: { suite: 'fleet', service: 'svc0' } });
    server.setPageSizeLimit(10);
    const requestsBefore = server.requests.length;
    try {
      await applyYaml(cluster, sourceYaml('gce-fleet', 'fleet', 'fleet', '    portsMetadataKey: ports\n'));
      const entries = await waitForIds('gce-fleet', made.map((m) => m.id));
      assert.equal(entries.has(stoppedFromStart.id), false);
      const aggregated = server.requests.slice(requestsBefore).filter((r) => r.path.endsWith('/aggregated/instances') && r.status === 200);
      assert.ok(aggregated.some((r) => r.query['pageToken']), 'later pages were asked for with a page token');
      assert.ok(aggregated.length >= 5, `46 matching instances at 10 per page take 5 pages (saw ${aggregated.length} requests)`);

      const source = await waitForSource('gce-fleet', 'fleet', 'InSync with 45 entries', (s) => condition(s, 'Synced')?.reason === 'InSync' && s.status?.managedEntries === 45);
      assert.equal(source.status?.provider, 'gce');
      assert.equal(condition(source, 'ProviderReady')?.reason, 'SnapshotReceived');
      assert.equal(condition(source, 'Ready')?.status, 'True');

      const first = made[0];
      const sample = first ? entries.get(first.id) : undefined;
      assert.ok(first && sample);
      assert.equal(sample.spec.address, '10.20.0.5');
      assert.equal(sample.spec.address, networkIpOf(first));
      assert.equal(sample.spec.locality, 'europe-west1/europe-west1-b');
      assert.equal(sample.spec.network, 'mesh-vpc');
      assert.deepEqual(sample.spec.ports, { http: 8080, grpc: 9090 });
      assert.equal(sample.spec.labels?.['app'], 'svc0');
      assert.equal(sample.spec.labels?.['team'], 'core');
      assert.equal(sample.spec.labels?.['suite'], 'fleet');
      assert.equal(sample.metadata.labels?.[SOURCE_LABEL], 'fleet');
      assert.equal(sample.metadata.annotations?.[SCOPE_ANNOTATION], 'europe-west1-b');
      const zonesSeen = new Set([...entries.values()].map((e) => e.spec.locality));
      assert.deepEqual(zonesSeen, new Set(['europe-west1/europe-west1-b', 'europe-west1/europe-west1-c', 'us-central1/us-central1-a']));

      // A label change updates the entry in place; a stop and a deletion remove theirs.
      const [relabelled, stopped, deleted] = made;
      assert.ok(relabelled && stopped && deleted);
      const uid = entries.get(relabelled.id)?.metadata.uid;
      server.setLabels('europe-west1-b', relabelled.name, { suite: 'fleet', service: 'svc0', team: 'edge', tier: 'gold' });
      server.setStatus(stopped.zone.split('/').pop() ?? '', stopped.name, 'STOPPED');
      server.deleteInstance(deleted.zone.split('/').pop() ?? '', deleted.name);
      const afterChange = await waitForIds('gce-fleet', made.filter((m) => m !== stopped && m !== deleted).map((m) => m.id));
      const updated = await eventually('the relabelled entry', async () => {
        const e = (await byInstance('gce-fleet', 'team=edge')).get(relabelled.id);
        return e?.spec.labels?.['tier'] === 'gold' ? e : undefined;
      });
      assert.equal(updated.metadata.uid, uid, 'updated in place, not recreated');
      assert.equal(afterChange.size, 43);
    } finally {
      server.setPageSizeLimit(undefined);
      await cluster.kubectl(['delete', 'namespace', 'gce-fleet', '--wait=false']);
    }
  });

  test('an unreachable zone: PartialSnapshot, its entries kept while another zone\'s deletions still happen', { timeout: 120_000 }, async () => {
    const inB = [0, 1, 2].map((i) => server.addInstance({ name: `part-b-${i}`, zone: 'europe-west1-b', labels: { suite: 'partial', service: 'api' } }));
    const inC = [0, 1, 2].map((i) => server.addInstance({ name: `part-c-${i}`, zone: 'europe-west1-c', labels: { suite: 'partial', service: 'api' } }));
    try {
      await applyYaml(cluster, sourceYaml('gce-partial', 'p', 'partial'));
      await waitForIds('gce-partial', [...inB, ...inC].map((i) => i.id));

      server.setZoneUnreachable('europe-west1-b', 'warning');
      const [goneB] = inB;
      const [goneC] = inC;
      assert.ok(goneB && goneC);
      server.deleteInstance('europe-west1-b', goneB.name);
      server.deleteInstance('europe-west1-c', goneC.name);
      const partial = await waitForSource('gce-partial', 'p', 'ProviderReady=False', (s) => condition(s, 'ProviderReady')?.status === 'False');
      assert.equal(condition(partial, 'ProviderReady')?.reason, 'PartialSnapshot');
      assert.match(condition(partial, 'ProviderReady')?.message ?? '', /europe-west1-b/);
      assert.equal(condition(partial, 'Ready')?.status, 'False');
      // The readable zone's deletion goes through; the unknown zone is left as it was.
      const during = await waitForIds('gce-partial', [...inB, ...inC.slice(1)].map((i) => i.id));
      await sleep(2500);
      assert.equal((await byInstance('gce-partial')).has(goneB.id), true, 'the unreachable zone\'s entries are kept');
      assert.equal(during.size, 5);

      server.setZoneUnreachable('europe-west1-b', false);
      await waitForIds('gce-partial', [...inB.slice(1), ...inC.slice(1)].map((i) => i.id));
      await waitForSource('gce-partial', 'p', 'Ready again', (s) => condition(s, 'Ready')?.status === 'True');
    } finally {
      server.setZoneUnreachable('europe-west1-b', false);
      await cluster.kubectl(['delete', 'namespace', 'gce-partial', '--wait=false']);
    }
  });

  test('an untrusted key in the Secret: GCEUnauthorized, entries kept; the trusted key recovers', { timeout: 120_000 }, async () => {
    const vms = [0, 1, 2].map((i) => server.addInstance({ name: `auth-${i}`, zone: ZONES[i] ?? 'europe-west1-b', labels: { suite: 'auth', service: 'db' } }));
    try {
      await applyYaml(cluster, sourceYaml('gce-auth', 'a', 'auth'));
      const entries = await waitForIds('gce-auth', vms.map((v) => v.id));

      const untrusted = server.createServiceAccountKey('intruder@test-project.iam.gserviceaccount.com', { trusted: false });
      await applyYaml(cluster, secretYaml('gce-auth', untrusted));
      const failed = await waitForSource('gce-auth', 'a', 'ProviderReady=False', (s) => condition(s, 'ProviderReady')?.status === 'False');
      assert.equal(condition(failed, 'ProviderReady')?.reason, 'GCEUnauthorized');
      assert.doesNotMatch(condition(failed, 'ProviderReady')?.message ?? '', /PRIVATE KEY/, 'no key material in status');
      assert.equal(condition(failed, 'Ready')?.status, 'False');
      await sleep(2500);
      const kept = await byInstance('gce-auth');
      assert.deepEqual(new Set(kept.keys()), new Set(vms.map((v) => v.id)));
      for (const [id, e] of kept) assert.equal(e.metadata.uid, entries.get(id)?.metadata.uid, 'untouched');
      assert.ok((await eventReasons('gce-auth')).includes('GCEUnauthorized'));

      await applyYaml(cluster, secretYaml('gce-auth', trustedKey));
      await waitForSource('gce-auth', 'a', 'Ready again', (s) => condition(s, 'Ready')?.status === 'True', 60_000);
    } finally {
      await cluster.kubectl(['delete', 'namespace', 'gce-auth', '--wait=false']);
    }
  });

  test('rate limited (429): GCEThrottled, entries kept, then recovery', { timeout: 120_000 }, async () => {
    const vms = [0, 1].map((i) => server.addInstance({ name: `busy-${i}`, zone: 'us-central1-a', labels: { suite: 'busy', service: 'queue' } }));
    try {
      await applyYaml(cluster, sourceYaml('gce-busy', 'b', 'busy'));
      await waitForIds('gce-busy', vms.map((v) => v.id));
      await waitForSource('gce-busy', 'b', 'Ready', (s) => condition(s, 'Ready')?.status === 'True');

      server.failNext(429, 4);
      const throttled = await waitForSource('gce-busy', 'b', 'ProviderReady=False', (s) => condition(s, 'ProviderReady')?.status === 'False');
      assert.equal(condition(throttled, 'ProviderReady')?.reason, 'GCEThrottled');
      assert.equal((await byInstance('gce-busy')).size, 2, 'entries are kept while throttled');
      const recovered = await waitForSource('gce-busy', 'b', 'Ready again', (s) => condition(s, 'Ready')?.status === 'True', 60_000);
      assert.equal(condition(recovered, 'ProviderReady')?.reason, 'SnapshotReceived');
      assert.equal(recovered.status?.managedEntries, 2);
      assert.ok((await eventReasons('gce-busy')).includes('GCEThrottled'));
      assert.ok(server.requests.filter((r) => r.status === 429).length >= 4, 'the server answered 429 as asked');
    } finally {
      await cluster.kubectl(['delete', 'namespace', 'gce-busy', '--wait=false']);
    }
  });
});
