/**
 * The EC2 provider against a real moto server (tools/moto): paging, changes between
 * snapshots, empty answers, rejected credentials and an endpoint that goes away.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateTagsCommand, DeleteTagsCommand, StopInstancesCommand, TerminateInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { Registry } from 'prom-client';
import type { VmRegistrySourceSpecInput } from '../../src/api/types.ts';
import { createIamUser, launchInstances, motoEc2Client, startMoto, type MotoServer } from '../../src/dev/moto.ts';
import { ProviderMetrics } from '../../src/metrics/provider-metrics.ts';
import { silentLogger } from '../../src/metrics/logger.ts';
import { isProviderError, type ProviderErrorKind } from '../../src/providers/errors.ts';
import { createEc2Provider, ec2ProviderFactory } from '../../src/providers/ec2/index.ts';
import type { Provider, Snapshot } from '../../src/providers/provider.ts';
import { BUILTIN_API } from '../../src/providers/builtin.ts';

const { applyDefaults } = BUILTIN_API;

const REGION = 'eu-west-1';
type Ec2Input = NonNullable<VmRegistrySourceSpecInput['ec2']>;

let moto: MotoServer;
let seed: EC2Client;
let registry: Registry;
let metrics: ProviderMetrics;
const open: Provider[] = [];

before(async () => {
  moto = await startMoto();
  seed = motoEc2Client(moto, REGION);
});

after(async () => {
  for (const p of open) await p.close();
  seed?.destroy();
  await moto?.stop();
});

beforeEach(async () => {
  await moto.reset();
  registry = new Registry();
  metrics = new ProviderMetrics(registry);
});

interface Options {
  readonly secrets?: Record<string, string>;
  readonly pageSize?: number;
}

/** A provider as the controller would create it, with small page size and timeouts. */
function provider(ec2: Partial<Ec2Input> = {}, options: Options = {}): Provider {
  const secrets = options.secrets ?? { 'aws/AWS_ACCESS_KEY_ID': 'testing', 'aws/AWS_SECRET_ACCESS_KEY': 'testing' };
  const spec = applyDefaults({
    ec2: {
      region: REGION,
      endpoint: moto.endpoint,
      credentialsSecretRef: { name: 'aws' },
      maxAttempts: 1,
      ...ec2,
    },
  });
  const p = createEc2Provider(
    { source: 'mesh/vms', spec, secrets: new Map(Object.entries(secrets)), metrics, log: silentLogger },
    { pageSize: options.pageSize ?? 5, connectionTimeoutMs: 1000, requestTimeoutMs: 5000 },
  );
  open.push(p);
  return p;
}

const snap = (p: Provider): Promise<Snapshot> => p.snapshot(AbortSignal.timeout(30_000));
const ids = (s: Snapshot): string[] => s.endpoints.map((e) => e.id);

async function rejectsWith(p: Provider, kind: ProviderErrorKind): Promise<Error> {
  let caught: unknown;
  try {
    await snap(p);
  } catch (e) {
    caught = e;
  }
  assert.ok(isProviderError(caught), `expected a ProviderError ${kind}, got ${String(caught)}`);
  assert.equal(caught.kind, kind, caught.message);
  assert.equal(caught.provider, 'ec2');
  return caught;
}

async function requestCount(outcome: string): Promise<number> {
  const metric = await registry.getSingleMetric('vmregistry_provider_requests_total')?.get();
  return (metric?.values ?? [])
    .filter((v) => v.labels['provider'] === 'ec2' && v.labels['operation'] === 'DescribeInstances' && v.labels['outcome'] === outcome)
    .reduce((n, v) => n + v.value, 0);
}

describe('EC2 provider against moto', () => {
  test('lists hundreds of instances across many pages, each once, with ec2_sd labels', async () => {
    const launched: string[] = [];
    // 40 reservations of 8 instances; moto pages by reservation, 5 per page → 8 pages.
    for (let r = 0; r < 40; r++) {
      launched.push(...(await launchInstances(seed, { count: 8, tags: { service: `svc-${r % 4}`, team: 'payments', Name: `vm-${r}` } })));
    }
    const p = provider({ portsTagKey: 'ports' });
    const started = performance.now();
    const s = await snap(p);
    const ms = performance.now() - started;
    console.log(`# ${s.endpoints.length} instances in ${await requestCount('success')} pages: ${ms.toFixed(0)} ms`);

    assert.equal(s.endpoints.length, 320);
    assert.deepEqual(new Set(ids(s)), new Set(launched));
    assert.equal(await requestCount('success'), 8);
    assert.deepEqual(s.unknownScopes, []);

    const e = s.endpoints[0];
    assert.ok(e);
    const l = e.labels;
    assert.equal(l['__meta_ec2_instance_id'], e.id);
    assert.equal(l['__meta_ec2_instance_state'], 'running');
    assert.equal(l['__meta_ec2_instance_type'], 't3.micro');
    assert.equal(l['__meta_ec2_region'], REGION);
    assert.match(l['__meta_ec2_availability_zone'] ?? '', /^eu-west-1[a-z]$/);
    assert.equal(e.scope, l['__meta_ec2_availability_zone']);
    assert.match(l['__meta_ec2_vpc_id'] ?? '', /^vpc-/);
    assert.match(l['__meta_ec2_subnet_id'] ?? '', /^subnet-/);
    assert.match(l['__meta_ec2_private_ip'] ?? '', /^\d+\.\d+\.\d+\.\d+$/);
    assert.equal(l['__address__'], l['__meta_ec2_private_ip']);
    assert.match(l['__meta_ec2_private_dns_name'] ?? '', /^ip-/);
    assert.equal(l['__meta_ec2_ami'], 'ami-12345678');
    assert.match(l['__meta_ec2_owner_id'] ?? '', /^\d{12}$/);
    assert.equal(l['__meta_ec2_tag_team'], 'payments');
    assert.match(l['__meta_ec2_tag_service'] ?? '', /^svc-[0-3]$/);
    assert.match(l['__meta_ec2_tag_Name'] ?? '', /^vm-\d+$/);
  });

  test('address types pick the public IP or the private DNS name', async () => {
    await launchInstances(seed, { count: 2 });
    const pub = await snap(provider({ addressType: 'public-ipv4' }));
    for (const e of pub.endpoints) assert.equal(e.labels['__address__'], e.labels['__meta_ec2_public_ip']);
    const dns = await snap(provider({ addressType: 'private-dns' }));
    for (const e of dns.endpoints) assert.equal(e.labels['__address__'], e.labels['__meta_ec2_private_dns_name']);
    assert.notEqual(pub.endpoints[0]?.labels['__address__'], dns.endpoints[0]?.labels['__address__']);
  });

  test('follows tag changes, new instances, stops and terminations between snapshots', async () => {
    const [a, b, c, d] = await launchInstances(seed, { count: 4, tags: { service: 'web', ports: 'http=8080' } });
    assert.ok(a && b && c && d);
    const p = provider({ portsTagKey: 'ports', networkTagKey: 'mesh-network', serviceAccountTagKey: 'sa' });
    const first = await snap(p);
    assert.deepEqual(ids(first).sort(), [a, b, c, d].sort());
    assert.equal(first.endpoints[0]?.labels['__port_http__'], '8080');

    await seed.send(new CreateTagsCommand({ Resources: [a], Tags: [{ Key: 'service', Value: 'api' }, { Key: 'ports', Value: 'grpc=9090,junk,http=x' }, { Key: 'mesh-network', Value: 'net-2' }, { Key: 'sa', Value: 'api-sa' }] }));
    await seed.send(new DeleteTagsCommand({ Resources: [b], Tags: [{ Key: 'ports' }] }));
    await seed.send(new StopInstancesCommand({ InstanceIds: [c] }));
    await seed.send(new TerminateInstancesCommand({ InstanceIds: [d] }));
    const [e] = await launchInstances(seed, { count: 1, tags: { service: 'web' } });
    assert.ok(e);

    const second = await snap(p);
    assert.deepEqual(ids(second).sort(), [a, b, e].sort());
    const byId = new Map(second.endpoints.map((x) => [x.id, x.labels]));
    const la = byId.get(a);
    assert.equal(la?.['__meta_ec2_tag_service'], 'api');
    assert.equal(la?.['__port_grpc__'], '9090');
    assert.equal(la?.['__port_http__'], undefined, 'a malformed part gives no port');
    const problems = second.endpoints.find((x) => x.id === a)?.problems ?? [];
    assert.match(problems[0] ?? '', /^invalid ports tag "ports" "grpc=9090,junk,http=x": "junk" is not name=number; "http=x": "x" is not a port number/, 'and is reported');
    assert.equal(la?.['__network__'], 'net-2');
    assert.equal(la?.['__service_account__'], 'api-sa');
    assert.equal(byId.get(b)?.['__port_http__'], undefined);
    assert.equal(byId.get(b)?.['__meta_ec2_tag_ports'], undefined);

    // A user filter on the state replaces the running-only default.
    const stopped = await snap(provider({ filters: [{ name: 'instance-state-name', values: ['stopped'] }] }));
    assert.deepEqual(ids(stopped), [c]);
    assert.equal(stopped.endpoints[0]?.labels['__meta_ec2_instance_state'], 'stopped');
  });

  test('filters select by tag; one that matches nothing is a valid empty snapshot', async () => {
    const web = await launchInstances(seed, { count: 3, tags: { mesh: 'true' } });
    await launchInstances(seed, { count: 2, tags: { mesh: 'false' } });
    const meshed = await snap(provider({ filters: [{ name: 'tag:mesh', values: ['true'] }] }));
    assert.deepEqual(ids(meshed).sort(), [...web].sort());

    const none = await snap(provider({ filters: [{ name: 'tag:mesh', values: ['nobody'] }] }));
    assert.deepEqual(none.endpoints, []);
    assert.deepEqual(none.unknownScopes, []);
  });

  test('a filter the server cannot evaluate is an error, never an empty answer', async () => {
    await launchInstances(seed, { count: 1 });
    // moto answers unimplemented filters with an HTML 500 page (real EC2: 400 InvalidParameterValue → BadConfig).
    await rejectsWith(provider({ filters: [{ name: 'no-such-filter', values: ['x'] }] }), 'BadResponse');
  });

  test('the default credential chain reads the environment', async () => {
    await launchInstances(seed, { count: 2 });
    const saved = { id: process.env['AWS_ACCESS_KEY_ID'], secret: process.env['AWS_SECRET_ACCESS_KEY'] };
    process.env['AWS_ACCESS_KEY_ID'] = 'testing';
    process.env['AWS_SECRET_ACCESS_KEY'] = 'testing';
    try {
      const s = await snap(provider({ credentialsSecretRef: undefined }));
      assert.equal(s.endpoints.length, 2);
    } finally {
      for (const [k, v] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  test('a Secret without the named keys is BadConfig', async () => {
    await rejectsWith(provider({}, { secrets: { 'aws/AWS_ACCESS_KEY_ID': 'AKIA0000' } }), 'BadConfig');
    assert.deepEqual(
      ec2ProviderFactory.secretRefs(applyDefaults({ ec2: { region: REGION, credentialsSecretRef: { name: 'aws', sessionTokenKey: 'token' } } })),
      [
        { name: 'aws', key: 'AWS_ACCESS_KEY_ID' },
        { name: 'aws', key: 'AWS_SECRET_ACCESS_KEY' },
        { name: 'aws', key: 'token' },
      ],
    );
  });

  describe('with IAM authentication on', () => {
    after(async () => {
      await moto.disableAuth();
    });

    test('unknown keys are Unauthorized; keys of an allowed IAM user work', async () => {
      await launchInstances(seed, { count: 3 });
      const keys = await createIamUser(moto, 'operator', ['ec2:DescribeInstances']);
      await moto.enableAuth(0);

      const err = await rejectsWith(provider({}, { secrets: { 'aws/AWS_ACCESS_KEY_ID': 'AKIAUNKNOWN000000000', 'aws/AWS_SECRET_ACCESS_KEY': 'wrong' } }), 'Unauthorized');
      assert.doesNotMatch(err.message, /wrong/, 'no secret in the message');
      assert.equal(await requestCount('Unauthorized'), 1);

      const good = provider({}, { secrets: { 'aws/AWS_ACCESS_KEY_ID': keys.accessKeyId, 'aws/AWS_SECRET_ACCESS_KEY': keys.secretAccessKey } });
      assert.equal((await snap(good)).endpoints.length, 3);

      const wrongSecret = provider({}, { secrets: { 'aws/AWS_ACCESS_KEY_ID': keys.accessKeyId, 'aws/AWS_SECRET_ACCESS_KEY': 'not-the-secret' } });
      await rejectsWith(wrongSecret, 'Unauthorized');
    });

    test('assumeRole goes through STS (AWS_ENDPOINT_URL_STS); rejected base keys are Unauthorized', async () => {
      await moto.disableAuth();
      await launchInstances(seed, { count: 2 });
      const saved = process.env['AWS_ENDPOINT_URL_STS'];
      process.env['AWS_ENDPOINT_URL_STS'] = moto.endpoint;
      try {
        const role = { assumeRole: { roleArn: 'arn:aws:iam::123456789012:role/reader' } };
        const unknownKeys = { 'aws/AWS_ACCESS_KEY_ID': 'AKIAUNKNOWN000000000', 'aws/AWS_SECRET_ACCESS_KEY': 'wrong' };
        const first = provider(role, { secrets: unknownKeys });
        assert.equal((await snap(first)).endpoints.length, 2);
        // Sources with the same keys and role share one client and its assumed-role session
        // until the last of them closes; a fresh client must assume the role again.
        await first.close();
        await moto.enableAuth(0);
        // STS answers InvalidClientTokenId (EC2 itself would say AuthFailure): the role path was taken.
        const err = await rejectsWith(provider(role, { secrets: unknownKeys }), 'Unauthorized');
        assert.match(err.message, /InvalidClientTokenId/);
      } finally {
        if (saved === undefined) delete process.env['AWS_ENDPOINT_URL_STS'];
        else process.env['AWS_ENDPOINT_URL_STS'] = saved;
      }
    });

    test('a user without ec2:DescribeInstances is Unauthorized', async () => {
      await moto.disableAuth();
      const keys = await createIamUser(moto, 'no-ec2', ['s3:ListBucket']);
      await moto.enableAuth(0);
      await rejectsWith(provider({}, { secrets: { 'aws/AWS_ACCESS_KEY_ID': keys.accessKeyId, 'aws/AWS_SECRET_ACCESS_KEY': keys.secretAccessKey } }), 'Unauthorized');
    });
  });

  test('an endpoint that is down is Unreachable at once, and the provider recovers when it is back', async () => {
    await launchInstances(seed, { count: 2 });
    const p = provider({ maxAttempts: 2 });
    assert.equal((await snap(p)).endpoints.length, 2);

    await moto.stop();
    let ms = Number.NaN;
    try {
      const started = performance.now();
      await rejectsWith(p, 'Unreachable');
      ms = performance.now() - started;
    } finally {
      await moto.restart();
    }
    console.log(`# endpoint down reported in ${ms.toFixed(0)} ms (2 attempts)`);
    assert.ok(ms < 3000, `took ${ms} ms`);

    // A restarted moto is empty: an empty but successful answer.
    assert.deepEqual((await snap(p)).endpoints, []);
    await launchInstances(seed, { count: 1 });
    assert.equal((await snap(p)).endpoints.length, 1);
  });
});
