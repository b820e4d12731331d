/**
 * The EC2 provider end to end: a moto server as the registry, the real local control
 * plane, and the operator in-process with the providers this build ships. Credentials
 * reach the operator the way a user gives them: a Secret next to the VmRegistrySource.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateTagsCommand, DescribeInstancesCommand, StopInstancesCommand, TerminateInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { builtinProviders } from '../../src/providers/builtin.ts';
import { MOTO_CREDENTIALS, createIamUser, launchInstances, motoEc2Client, startMoto, type MotoServer } from '../../src/dev/moto.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import { freePort } from '../../src/dev/process.ts';
import type { VmRegistrySource } from '../../src/api/types.ts';
import type { WorkloadEntry } from '../../src/api/istio.ts';
import { ENDPOINT_ANNOTATION, SOURCE_LABEL } from '../../src/api/ownership.ts';
import { afterReconciles, applyYaml, condition, eventually, getEntries, getSource, startLocalCluster, startOperator, type RunningOperator, entriesByEndpoint, eventReasons as eventReasonsIn, waitForEndpoints, waitForSource as waitForSourceIn } from '../harness/operator-env.ts';

const REGION = 'eu-west-1';

let cluster: LocalCluster;
let moto: MotoServer;
let seed: EC2Client;
let op: RunningOperator;

before(async () => {
  [cluster, moto] = await Promise.all([startLocalCluster(), startMoto()]);
  seed = motoEc2Client(moto, REGION);
  op = await startOperator(cluster, builtinProviders());
});

after(async () => {
  await op?.stop();
  seed?.destroy();
  await moto?.stop();
  await cluster?.stop();
});

interface SourceOptions {
  readonly filters?: Record<string, string>;
  readonly interval?: string;
  readonly extraEc2?: string;
  readonly keys?: { accessKeyId: string; secretAccessKey: string };
}

/** A namespace, an AWS credentials Secret and an EC2 source reading moto. */
function sourceYaml(ns: string, name: string, o: SourceOptions = {}): string {
  const keys = o.keys ?? MOTO_CREDENTIALS;
  const filters = Object.entries(o.filters ?? {}).map(([k, v]) => `{name: "tag:${k}", values: ["${v}"]}`);
  return `apiVersion: v1
kind: Namespace
metadata: {name: ${ns}}
---
${secretYaml(ns, keys)}
---
apiVersion: vmregistry.io/v1alpha1
kind: VmRegistrySource
metadata: {name: ${name}, namespace: ${ns}}
spec:
  interval: ${o.interval ?? '1s'}
  ec2:
    region: ${REGION}
    endpoint: "${moto.endpoint}"
    credentialsSecretRef: {name: aws}
    maxAttempts: 1
    filters: [${filters.join(', ')}]
${o.extraEc2 ?? ''}`;
}

function secretYaml(ns: string, keys: { accessKeyId: string; secretAccessKey: string }): string {
  return `apiVersion: v1
kind: Secret
metadata: {name: aws, namespace: ${ns}, annotations: {vmregistry.io/allowed-endpoints: "${moto.endpoint}"}}
stringData:
  AWS_ACCESS_KEY_ID: "${keys.accessKeyId}"
  AWS_SECRET_ACCESS_KEY: "${keys.secretAccessKey}"`;
}

const byInstance = (ns: string, selector?: string): Promise<Map<string, WorkloadEntry>> => entriesByEndpoint(cluster, ns, selector);
const waitForIds = (ns: string, ids: readonly string[], timeoutMs?: number): Promise<Map<string, WorkloadEntry>> => waitForEndpoints(cluster, ns, ids, timeoutMs);
const waitForSource = (ns: string, name: string, what: string, ok: (s: VmRegistrySource) => boolean, timeoutMs?: number): Promise<VmRegistrySource> =>
  waitForSourceIn(cluster, ns, name, what, ok, timeoutMs);
const eventReasons = (ns: string): Promise<string[]> => eventReasonsIn(cluster, ns);

async function instance(id: string): Promise<{ ip: string; vpc: string }> {
  const out = await seed.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  const i = out.Reservations?.[0]?.Instances?.[0];
  assert.ok(i?.PrivateIpAddress && i.VpcId, `instance ${id} has an address and a VPC`);
  return { ip: i.PrivateIpAddress, vpc: i.VpcId };
}

/** Launches `count` instances, one reservation each (moto pages by reservation), eight requests at a time. */
async function launchMany(count: number, tags: (i: number) => Record<string, string>): Promise<string[]> {
  const ids: string[] = new Array<string>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < count) {
        const i = next++;
        const [id] = await launchInstances(seed, { count: 1, tags: tags(i) });
        assert.ok(id);
        ids[i] = id;
      }
    }),
  );
  return ids;
}

describe('EC2 through the operator', () => {
  test('more reservations than one DescribeInstances page become WorkloadEntries; tag changes, stops and terminations follow', { timeout: 420_000 }, async () => {
    await moto.reset();
    // The provider asks for pages of 1000 reservations: 1003 single-instance reservations need two.
    const COUNT = 1003;
    const ids = await launchMany(COUNT, (i) => ({ suite: 'scale', service: `svc-${i % 5}`, team: 'payments', ports: 'http=8080,grpc=9090', Name: `vm-${i}` }));
    const first = await instance(ids[0] ?? '');
    await applyYaml(
      cluster,
      sourceYaml('ec2-scale', 'fleet', {
        filters: { suite: 'scale' },
        interval: '2s',
        extraEc2: `    portsTagKey: ports\n    vpcNetworks: {"${first.vpc}": net-eu}\n`,
      }),
    );
    const source = await waitForSource(
      'ec2-scale',
      'fleet',
      `${COUNT} managed entries`,
      (s) => s.status?.managedEntries === COUNT && condition(s, 'Synced')?.reason === 'InSync',
      240_000,
    );
    assert.equal(source.status?.desiredEntries, COUNT);
    assert.equal(source.status?.skipped, 0);
    assert.equal(source.status?.provider, 'ec2');
    assert.equal(condition(source, 'ProviderReady')?.status, 'True');
    assert.equal(condition(source, 'Ready')?.status, 'True');
    const requests = await op.metrics.registry.getSingleMetric('vmregistry_provider_requests_total')?.get();
    const describeCalls = (requests?.values ?? []).filter((v) => v.labels['provider'] === 'ec2' && v.labels['operation'] === 'DescribeInstances' && v.labels['outcome'] === 'success').reduce((n, v) => n + v.value, 0);
    assert.ok(describeCalls >= 2, `a snapshot of ${COUNT} reservations reads two pages (saw ${describeCalls} successful calls)`);
    // The registry does page at 1000: every entry past the first page came through NextToken.
    const firstPage = await seed.send(new DescribeInstancesCommand({ MaxResults: 1000, Filters: [{ Name: 'tag:suite', Values: ['scale'] }] }));
    assert.equal(firstPage.Reservations?.length, 1000);
    assert.ok(firstPage.NextToken, 'moto has a second page');

    const entries = await byInstance('ec2-scale');
    assert.deepEqual(new Set(entries.keys()), new Set(ids), 'one entry per instance, none missing, none extra');
    const sample = entries.get(ids[0] ?? '');
    assert.ok(sample);
    assert.equal(sample.spec.address, first.ip);
    assert.equal(sample.spec.network, 'net-eu', 'network from vpcNetworks');
    assert.match(sample.spec.locality ?? '', /^eu-west-1\/eu-west-1[a-z]$/);
    assert.deepEqual(sample.spec.ports, { http: 8080, grpc: 9090 });
    assert.equal(sample.spec.labels?.['app'], 'svc-0', 'app label from the service tag');
    assert.equal(sample.spec.labels?.['team'], 'payments');
    assert.equal(sample.spec.labels?.['suite'], 'scale');
    for (const consumed of ['Name', 'ports', 'service']) assert.equal(sample.spec.labels?.[consumed], undefined, `tag ${consumed} is not a label`);
    assert.equal(sample.metadata.labels?.['team'], 'payments');
    assert.equal(sample.metadata.labels?.[SOURCE_LABEL], 'fleet');
    assert.ok(sample.metadata.name.startsWith('fleet-svc-0-'), sample.metadata.name);

    // Tag changes: a team and ports change updates the entry in place; a service change renames it.
    const [changed, renamed, stopped1, stopped2, stopped3, gone1, gone2] = ids;
    assert.ok(changed && renamed && stopped1 && stopped2 && stopped3 && gone1 && gone2);
    const uidBefore = entries.get(changed)?.metadata.uid;
    await seed.send(new CreateTagsCommand({ Resources: [changed], Tags: [{ Key: 'team', Value: 'risk' }, { Key: 'ports', Value: 'http=8081' }] }));
    await seed.send(new CreateTagsCommand({ Resources: [renamed], Tags: [{ Key: 'service', Value: 'billing' }] }));
    await seed.send(new StopInstancesCommand({ InstanceIds: [stopped1, stopped2, stopped3] }));
    await seed.send(new TerminateInstancesCommand({ InstanceIds: [gone1, gone2] }));

    await waitForSource('ec2-scale', 'fleet', `${COUNT - 5} managed entries`, (s) => s.status?.managedEntries === COUNT - 5 && condition(s, 'Synced')?.reason === 'InSync', 120_000);
    const risk = await byInstance('ec2-scale', 'team=risk');
    assert.deepEqual([...risk.keys()], [changed]);
    const updated = risk.get(changed);
    assert.equal(updated?.metadata.uid, uidBefore, 'updated in place, not recreated');
    assert.deepEqual(updated?.spec.ports, { http: 8081 });
    const billing = await byInstance('ec2-scale', 'app=billing');
    assert.deepEqual([...billing.keys()], [renamed]);
    assert.ok(billing.get(renamed)?.metadata.name.startsWith('fleet-billing-'));

    const after = await byInstance('ec2-scale');
    assert.equal(after.size, COUNT - 5, 'the renamed entry replaced the old one');
    for (const id of [stopped1, stopped2, stopped3, gone1, gone2]) assert.equal(after.has(id), false, `${id} (stopped or terminated) has no entry`);

    // This fleet is large: stop reading it, so the other tests have moto to themselves.
    await cluster.kubectl(['delete', 'namespace', 'ec2-scale', '--wait=false']);
  });

  test('a filter that matches nothing is an empty answer the deletion guard holds back; a mass termination too, until the guard is raised', { timeout: 180_000 }, async () => {
    await moto.reset();
    const ids = await launchMany(4, () => ({ suite: 'guard', service: 'web' }));
    await applyYaml(cluster, sourceYaml('ec2-guard', 'g', { filters: { suite: 'guard' } }));
    await waitForIds('ec2-guard', ids);

    await cluster.kubectl(['patch', 'vmrs', 'g', '-n', 'ec2-guard', '--type=merge', '-p', '{"spec":{"ec2":{"filters":[{"name":"tag:suite","values":["nobody"]}]}}}']);
    const held = await waitForSource('ec2-guard', 'g', 'Synced=DeletionGuard', (s) => condition(s, 'Synced')?.reason === 'DeletionGuard' && s.status?.observedGeneration === s.metadata.generation);
    assert.equal(condition(held, 'ProviderReady')?.status, 'True', 'the empty answer is a successful answer');
    assert.equal(condition(held, 'Synced')?.status, 'False');
    assert.equal(held.status?.desiredEntries, 0);
    assert.equal(held.status?.heldBackDeletes, 4);
    await afterReconciles(op, 3);
    assert.equal((await byInstance('ec2-guard')).size, 4, 'entries are kept while the guard holds');
    assert.ok((await eventReasons('ec2-guard')).includes('DeletionGuard'), 'a DeletionGuard event is recorded');

    await cluster.kubectl(['patch', 'vmrs', 'g', '-n', 'ec2-guard', '--type=merge', '-p', '{"spec":{"ec2":{"filters":[{"name":"tag:suite","values":["guard"]}]}}}']);
    await waitForSource('ec2-guard', 'g', 'InSync again', (s) => condition(s, 'Synced')?.reason === 'InSync' && s.status?.heldBackDeletes === 0 && s.status?.observedGeneration === s.metadata.generation);

    const [keep, ...terminated] = ids;
    assert.ok(keep);
    await seed.send(new TerminateInstancesCommand({ InstanceIds: terminated }));
    const guarded = await waitForSource('ec2-guard', 'g', 'the guard holding back 3 of 4', (s) => condition(s, 'Synced')?.reason === 'DeletionGuard');
    assert.equal(guarded.status?.heldBackDeletes, 3);
    assert.equal(guarded.status?.desiredEntries, 1);
    assert.equal((await byInstance('ec2-guard')).size, 4);

    await cluster.kubectl(['patch', 'vmrs', 'g', '-n', 'ec2-guard', '--type=merge', '-p', '{"spec":{"deletionGuard":{"maxDeletePercent":80}}}']);
    await waitForIds('ec2-guard', [keep]);
    await waitForSource('ec2-guard', 'g', 'InSync with 1 entry', (s) => condition(s, 'Synced')?.reason === 'InSync' && s.status?.managedEntries === 1);
    await cluster.kubectl(['delete', 'namespace', 'ec2-guard', '--wait=false']);
  });

  test('rejected credentials: ProviderReady False (EC2Unauthorized), entries kept; good keys in the Secret recover', { timeout: 120_000 }, async () => {
    await moto.reset();
    const ids = await launchMany(3, () => ({ suite: 'auth', service: 'db' }));
    const keys = await createIamUser(moto, 'mesh-reader', ['ec2:DescribeInstances']);
    await moto.enableAuth(0);
    try {
      await applyYaml(cluster, sourceYaml('ec2-auth', 'a', { filters: { suite: 'auth' }, keys }));
      const entries = await waitForIds('ec2-auth', ids);

      await applyYaml(cluster, secretYaml('ec2-auth', { accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: 'not-a-real-secret' }));
      const failed = await waitForSource('ec2-auth', 'a', 'ProviderReady=False', (s) => condition(s, 'ProviderReady')?.status === 'False');
      assert.equal(condition(failed, 'ProviderReady')?.reason, 'EC2Unauthorized');
      assert.doesNotMatch(condition(failed, 'ProviderReady')?.message ?? '', /not-a-real-secret/, 'no secret in status');
      assert.equal(condition(failed, 'Ready')?.status, 'False');
      assert.equal(condition(failed, 'Synced')?.status, 'Unknown');
      await afterReconciles(op, 3);
      const kept = await byInstance('ec2-auth');
      assert.deepEqual(new Set(kept.keys()), new Set(ids), 'entries are kept');
      for (const [id, e] of kept) assert.equal(e.metadata.uid, entries.get(id)?.metadata.uid, 'untouched');
      assert.ok((await eventReasons('ec2-auth')).includes('EC2Unauthorized'), 'a Warning event names the reason');

      await applyYaml(cluster, secretYaml('ec2-auth', keys));
      await waitForSource('ec2-auth', 'a', 'Ready again', (s) => condition(s, 'Ready')?.status === 'True' && condition(s, 'ProviderReady')?.reason === 'SnapshotReceived', 60_000);
    } finally {
      await moto.disableAuth();
      await cluster.kubectl(['delete', 'namespace', 'ec2-auth', '--wait=false']);
    }
  });

  test('the endpoint going away: EC2Unreachable, entries kept; back: converges without churn', { timeout: 180_000 }, async () => {
    // moto keeps its state in memory only, so the outage is the endpoint becoming
    // unreachable for this source (a closed port), while the fleet stays as it was, as a
    // real region's would. Stopping and restarting moto itself is covered by the
    // provider's own tests.
    const ids = await launchInstances(seed, { count: 3, tags: { suite: 'outage', service: 'cache' } });
    await applyYaml(cluster, sourceYaml('ec2-outage', 'o', { filters: { suite: 'outage' } }));
    const entries = await waitForIds('ec2-outage', ids);

    const closed = await freePort();
    // The Secret consents to the new endpoint first, or the source would be SecretNotPermitted.
    await cluster.kubectl(['annotate', 'secret', 'aws', '-n', 'ec2-outage', '--overwrite', `vmregistry.io/allowed-endpoints=${moto.endpoint},http://127.0.0.1:${closed}`]);
    await cluster.kubectl(['patch', 'vmrs', 'o', '-n', 'ec2-outage', '--type=merge', '-p', JSON.stringify({ spec: { ec2: { endpoint: `http://127.0.0.1:${closed}` } } })]);
    const down = await waitForSource('ec2-outage', 'o', 'ProviderReady=False', (s) => condition(s, 'ProviderReady')?.status === 'False');
    assert.equal(condition(down, 'ProviderReady')?.reason, 'EC2Unreachable');
    assert.equal(condition(down, 'Ready')?.status, 'False');
    assert.equal(condition(down, 'Synced')?.reason, 'RegistryUnavailable');
    await afterReconciles(op, 3);
    assert.equal((await byInstance('ec2-outage')).size, 3, 'entries are kept while the endpoint is down');
    assert.ok((await eventReasons('ec2-outage')).includes('EC2Unreachable'));

    await cluster.kubectl(['patch', 'vmrs', 'o', '-n', 'ec2-outage', '--type=merge', '-p', JSON.stringify({ spec: { ec2: { endpoint: moto.endpoint } } })]);
    const back = await waitForSource('ec2-outage', 'o', 'Ready again', (s) => condition(s, 'Ready')?.status === 'True' && s.status?.observedGeneration === s.metadata.generation, 60_000);
    assert.equal(condition(back, 'Synced')?.reason, 'InSync');
    assert.equal(back.status?.managedEntries, 3);
    const now = await byInstance('ec2-outage');
    for (const [id, e] of entries) {
      assert.equal(now.get(id)?.metadata.uid, e.metadata.uid, `${id} kept the same entry`);
      assert.equal(now.get(id)?.spec.address, e.spec.address);
    }
    await cluster.kubectl(['delete', 'namespace', 'ec2-outage', '--wait=false']);
  });
});
