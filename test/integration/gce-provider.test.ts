/**
 * The GCE provider with its real REST client (google-auth-library) against the local
 * Compute server (test/harness/gce-server.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { VmRegistrySourceSpecInput } from '../../src/api/types.ts';
import { silentLogger } from '../../src/metrics/logger.ts';
import { ProviderMetrics } from '../../src/metrics/provider-metrics.ts';
import { isProviderError, type ProviderErrorKind } from '../../src/providers/errors.ts';
import { gceProviderFactory } from '../../src/providers/gce/index.ts';
import { secretKey, type Provider, type Snapshot } from '../../src/providers/provider.ts';
import { GceFakeServer } from '../harness/gce-server.ts';
import { BUILTIN_API } from '../../src/providers/builtin.ts';

const { applyDefaults } = BUILTIN_API;

type GceInput = NonNullable<VmRegistrySourceSpecInput['gce']>;

const KEY_REF = { name: 'gce-key', key: 'key.json' };

interface Made {
  readonly provider: Provider;
  readonly registry: Registry;
}

function makeProvider(server: GceFakeServer, gce: Partial<GceInput> = {}, keyJson?: string): Made {
  const registry = new Registry();
  const spec = applyDefaults({
    gce: {
      project: server.project,
      endpoint: server.url,
      ...(keyJson !== undefined ? { credentialsSecretRef: KEY_REF } : {}),
      ...gce,
    },
  });
  const secrets = new Map<string, string>(keyJson !== undefined ? [[secretKey(KEY_REF), keyJson]] : []);
  const provider = gceProviderFactory.create({
    source: 'test/gce',
    spec,
    secrets,
    metrics: new ProviderMetrics(registry),
    log: silentLogger,
  });
  return { provider, registry };
}

async function snap(made: Made): Promise<Snapshot> {
  return made.provider.snapshot(AbortSignal.timeout(20_000));
}

async function expectKind(p: Promise<unknown>, kind: ProviderErrorKind, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isProviderError(e), `expected a ProviderError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    assert.equal(e.provider, 'gce');
    if (message) assert.match(e.message, message);
    return true;
  });
}

function names(s: Snapshot): string[] {
  return s.endpoints.map((e) => e.labels['__meta_gce_instance_name'] ?? '').sort();
}

describe('GCE provider against the local Compute server', () => {
  let server: GceFakeServer;

  before(async () => {
    server = await GceFakeServer.start({ zones: ['europe-west1-b', 'europe-west1-c', 'us-central1-a'] });
  });
  after(async () => {
    await server.stop();
  });

  test('reads every page across zones and labels instances in gce_sd vocabulary', async () => {
    const zones = ['europe-west1-b', 'europe-west1-c', 'us-central1-a'];
    for (let i = 0; i < 37; i++) {
      server.addInstance({ name: `vm-${String(i).padStart(2, '0')}`, zone: zones[i % 3] ?? 'europe-west1-b', labels: { service: `svc${i % 4}` } });
    }
    const rich = server.addInstance({
      name: 'rich',
      zone: 'us-central1-a',
      labels: { service: 'payments', 'team-name': 'core' },
      metadata: { ports: 'http=8080,grpc=9090,bad=x', role: 'api', 'startup-script': 'echo secret' },
      tags: ['web', 'mesh'],
      machineType: 'n2-standard-4',
      interfaces: [
        { networkIP: '10.1.2.3', natIP: '34.1.2.3', network: 'vpc-a', subnetwork: 'sub-a' },
        { networkIP: '192.168.0.5', network: 'vpc-b' },
      ],
      serviceAccountEmail: 'vm@test-project.iam.gserviceaccount.com',
    });
    server.setPageSizeLimit(5);
    const made = makeProvider(server, { portsMetadataKey: 'ports' });
    const before = server.requests.length;
    try {
      const s = await snap(made);
      assert.equal(s.endpoints.length, 38);
      assert.equal(new Set(s.endpoints.map((e) => e.id)).size, 38);
      assert.deepEqual(s.unknownScopes, []);
      const pages = server.requests.slice(before).filter((r) => r.path.endsWith('/aggregated/instances'));
      assert.equal(pages.length, 8, '38 instances at 5 per page');
      assert.ok(pages.slice(1).every((r) => r.query['pageToken']), 'later pages carry a page token');
      assert.ok(pages.every((r) => r.query['maxResults'] === '500'), 'the provider asks for full pages');

      const ep = s.endpoints.find((e) => e.id === rich.id);
      assert.ok(ep, 'uint64 id kept exactly as a string');
      assert.equal(ep.scope, 'us-central1-a');
      assert.deepEqual(ep.labels, {
        __address__: '10.1.2.3',
        __meta_gce_instance_id: rich.id,
        __meta_gce_instance_name: 'rich',
        __meta_gce_instance_status: 'RUNNING',
        __meta_gce_project: 'test-project',
        __meta_gce_zone: 'us-central1-a',
        __meta_gce_region: 'us-central1',
        __meta_gce_machine_type: 'n2-standard-4',
        __meta_gce_network: 'vpc-a',
        __meta_gce_subnetwork: 'sub-a',
        __meta_gce_private_ip: '10.1.2.3',
        __meta_gce_public_ip: '34.1.2.3',
        __meta_gce_interface_ipv4_nic0: '10.1.2.3',
        __meta_gce_interface_ipv4_nic1: '192.168.0.5',
        __meta_gce_tags: ',web,mesh,',
        __meta_gce_service_account: 'vm@test-project.iam.gserviceaccount.com',
        __meta_gce_label_service: 'payments',
        '__meta_gce_label_team-name': 'core',
        __meta_gce_metadata_ports: 'http=8080,grpc=9090,bad=x',
        __meta_gce_metadata_role: 'api',
        __port_http__: '8080',
        __port_grpc__: '9090',
      });
      assert.deepEqual(ep.problems, ['invalid ports metadata "ports" "http=8080,grpc=9090,bad=x": "bad=x": "x" is not a port number from 1 to 65535']);
      const text = await made.registry.metrics();
      assert.match(text, /vmregistry_provider_requests_total\{provider="gce",operation="aggregatedList",outcome="success"\} 8/);
    } finally {
      server.setPageSizeLimit(undefined);
      await made.provider.close();
    }
  });

  test('chooses the address by addressType and networkInterface', async () => {
    const external = makeProvider(server, { addressType: 'external', filter: 'name = rich OR name = vm-00' });
    const nic1 = makeProvider(server, { networkInterface: 'nic1', filter: 'name = rich' });
    try {
      const s = await snap(external);
      const byName = Object.fromEntries(s.endpoints.map((e) => [e.labels['__meta_gce_instance_name'], e.labels['__address__']]));
      assert.deepEqual(byName, { rich: '34.1.2.3', 'vm-00': '' }, 'no external address → empty, the engine skips it');
      const s1 = await snap(nic1);
      assert.equal(s1.endpoints[0]?.labels['__address__'], '192.168.0.5');
      assert.equal(s1.endpoints[0]?.labels['__meta_gce_network'], 'vpc-b');
    } finally {
      await external.provider.close();
      await nic1.provider.close();
    }
  });

  test('label changes, stopped and deleted instances show in the next snapshot', async () => {
    const zone = 'europe-west1-b';
    server.addInstance({ name: 'life', zone, labels: { service: 'a', old: 'x' } });
    const made = makeProvider(server, { filter: 'labels.service:*' });
    try {
      let s = await snap(made);
      let ep = s.endpoints.find((e) => e.labels['__meta_gce_instance_name'] === 'life');
      assert.equal(ep?.labels['__meta_gce_label_old'], 'x');

      server.setLabels(zone, 'life', { service: 'b', fresh: 'y' });
      s = await snap(made);
      ep = s.endpoints.find((e) => e.labels['__meta_gce_instance_name'] === 'life');
      assert.equal(ep?.labels['__meta_gce_label_service'], 'b');
      assert.equal(ep?.labels['__meta_gce_label_fresh'], 'y');
      assert.equal(ep?.labels['__meta_gce_label_old'], undefined, 'a removed GCE label is gone');

      server.setStatus(zone, 'life', 'TERMINATED');
      s = await snap(made);
      assert.ok(!names(s).includes('life'), 'without a status filter only RUNNING instances count');

      server.deleteInstance(zone, 'life');
      s = await snap(made);
      assert.ok(!names(s).includes('life'));
    } finally {
      await made.provider.close();
    }
  });

  test('a status filter is sent to the server and decides alone', async () => {
    const zone = 'europe-west1-c';
    server.addInstance({ name: 'stopped-1', zone, labels: { tier: 'x' } });
    server.setStatus(zone, 'stopped-1', 'TERMINATED');
    server.addInstance({ name: 'running-1', zone, labels: { tier: 'x' } });
    const running = makeProvider(server, { filter: 'labels.tier = x AND status = RUNNING' });
    const both = makeProvider(server, { filter: '(labels.tier = "x") ((status = RUNNING) OR (status = TERMINATED))' });
    try {
      const before = server.requests.length;
      assert.deepEqual(names(await snap(running)), ['running-1']);
      assert.equal(server.requests.at(-1)?.query['filter'], 'labels.tier = x AND status = RUNNING');
      assert.ok(server.requests.length > before);
      const s = await snap(both);
      assert.deepEqual(names(s), ['running-1', 'stopped-1']);
      assert.equal(s.endpoints.find((e) => e.labels['__meta_gce_instance_name'] === 'stopped-1')?.labels['__meta_gce_instance_status'], 'TERMINATED');
    } finally {
      await running.provider.close();
      await both.provider.close();
    }
  });

  test('an unreachable zone is unknown, never empty', async () => {
    for (const mode of ['warning', 'unreachables', 'both'] as const) {
      server.setZoneUnreachable('europe-west1-c', mode);
      const made = makeProvider(server);
      try {
        const s = await snap(made);
        assert.deepEqual(s.unknownScopes, ['europe-west1-c'], mode);
        assert.equal(s.warnings.length, 1);
        assert.match(s.warnings[0] ?? '', /europe-west1-c/);
        if (mode !== 'unreachables') assert.match(s.warnings[0] ?? '', /UNREACHABLE/);
        assert.ok(s.endpoints.every((e) => e.scope !== 'europe-west1-c'), 'no endpoints claimed for the unknown zone');
        assert.ok(s.endpoints.some((e) => e.scope === 'europe-west1-b'), 'other zones still reported');
      } finally {
        server.setZoneUnreachable('europe-west1-c', false);
        await made.provider.close();
      }
    }
  });

  test('listed zones: a failing zone is unknown; all zones failing is an error', async () => {
    server.setZoneUnreachable('europe-west1-c');
    const some = makeProvider(server, { zones: ['europe-west1-b', 'europe-west1-c'] });
    const all = makeProvider(server, { zones: ['europe-west1-c'] });
    try {
      const s = await snap(some);
      assert.deepEqual(s.unknownScopes, ['europe-west1-c']);
      assert.match(s.warnings[0] ?? '', /Unreachable/);
      assert.ok(s.endpoints.length > 0 && s.endpoints.every((e) => e.scope === 'europe-west1-b'));
      const zonal = server.requests.filter((r) => r.path.includes('/zones/'));
      assert.ok(zonal.length >= 2, 'zones listed one by one');
      await expectKind(snap(all), 'Unreachable');
    } finally {
      server.setZoneUnreachable('europe-west1-c', false);
      await some.provider.close();
      await all.provider.close();
    }
  });

  test('credentials: a trusted key works, a wrong key or missing permission is Unauthorized', async () => {
    const goodKey = server.createServiceAccountKey('reader@test-project.iam.gserviceaccount.com');
    const strangerKey = server.createServiceAccountKey('reader@test-project.iam.gserviceaccount.com', { trusted: false });
    const noPermKey = server.createServiceAccountKey('nobody@test-project.iam.gserviceaccount.com', { canList: false });
    server.requireAuth(true);
    const good = makeProvider(server, {}, goodKey);
    const wrong = makeProvider(server, {}, strangerKey);
    const noPerm = makeProvider(server, {}, noPermKey);
    const anonymous = makeProvider(server);
    try {
      const s = await snap(good);
      assert.ok(s.endpoints.length > 0);
      await expectKind(snap(wrong), 'Unauthorized', /credentials/);
      await expectKind(snap(noPerm), 'Unauthorized', /permission/);
      await expectKind(snap(anonymous), 'Unauthorized');
    } finally {
      server.requireAuth(false);
      await Promise.all([good, wrong, noPerm, anonymous].map((m) => m.provider.close()));
    }
  });

  test('a key that is not a key is BadConfig, and never echoed', async () => {
    const made = makeProvider(server, {}, '{"client_email":"x@y","private_key":"not-a-pem-SECRETVALUE"}');
    try {
      await assert.rejects(snap(made), (e: unknown) => {
        assert.ok(isProviderError(e) && e.kind === 'BadConfig');
        assert.doesNotMatch(e.message, /SECRETVALUE/);
        return true;
      });
    } finally {
      await made.provider.close();
    }
  });

  test('429 is Throttled, the next sync succeeds', async () => {
    const made = makeProvider(server);
    try {
      server.failNext(429);
      await expectKind(snap(made), 'Throttled');
      const s = await snap(made);
      assert.ok(s.endpoints.length > 0);
      assert.match(await made.registry.metrics(), /outcome="Throttled"\} 1/);
    } finally {
      await made.provider.close();
    }
  });

  test('a filter the API refuses is BadConfig', async () => {
    const made = makeProvider(server, { filter: 'nosuchfield = 1' });
    try {
      await expectKind(snap(made), 'BadConfig', /filter/);
    } finally {
      await made.provider.close();
    }
  });

  test('server down is Unreachable within seconds; it recovers when the server is back', async () => {
    const made = makeProvider(server);
    try {
      await server.stop();
      const t0 = Date.now();
      await expectKind(snap(made), 'Unreachable');
      assert.ok(Date.now() - t0 < 5_000, `took ${Date.now() - t0} ms: the client must not retry for minutes`);
      await server.restart();
      const s = await snap(made);
      assert.ok(s.endpoints.length > 0);
    } finally {
      await server.restart();
      await made.provider.close();
    }
  });
});
