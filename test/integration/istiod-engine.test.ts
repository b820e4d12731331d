/**
 * Generated ServiceEntries through the engine to istiod, with an in-memory registry
 * behind the provider interface (the Consul path is in istiod.test.ts): what istiod
 * computes, read from its /debug/endpointz and /debug/registryz.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import { Istiod, type IstiodEndpoint } from '../../src/dev/istiod.ts';
import { SOURCE_LABEL } from '../../src/api/ownership.ts';
import type { ServiceEntry } from '../../src/api/istio.ts';
import { MemoryRegistry, memoryProviderFactory } from '../fixtures/memory-provider.ts';
import { applyYaml, condition, eventually, getEntries, getSource, startLocalCluster, startOperator, type RunningOperator } from '../harness/operator-env.ts';

const registries = new Map<string, MemoryRegistry>();
let cluster: LocalCluster;
let op: RunningOperator;
let istiod: Istiod;

before(async () => {
  cluster = await startLocalCluster();
  const started = Date.now();
  istiod = await Istiod.start(cluster);
  process.stdout.write(`# istiod ready ${Date.now() - started} ms after start (CRDs included)\n`);
  // Served as consul: Consul's health status mode and host default are under test here.
  op = await startOperator(cluster, [memoryProviderFactory(registries, { servedAs: 'consul' })], { resyncPeriodMs: 60 * 60_000 });
});

after(async () => {
  await op?.stop();
  await istiod?.stop();
  await cluster?.stop();
});

function registry(id: string): { url: string; reg: MemoryRegistry } {
  const url = `http://${id}.registry.test`;
  const reg = new MemoryRegistry();
  registries.set(url, reg);
  return { url, reg };
}

async function applySource(ns: string, name: string, url: string, spec: Record<string, unknown>): Promise<void> {
  const docs = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
    { apiVersion: 'vmregistry.io/v1alpha1', kind: 'VmRegistrySource', metadata: { name, namespace: ns }, spec: { interval: '1h', consul: { address: url }, serviceEntries: {}, ...spec } },
  ];
  await applyYaml(cluster, docs.map((d) => JSON.stringify(d)).join('\n---\n'));
}

async function generated(ns: string): Promise<ServiceEntry[]> {
  const items = (JSON.parse(await cluster.kubectl(['get', 'serviceentries.networking.istio.io', '-n', ns, '-o', 'json'])) as { items: ServiceEntry[] }).items;
  return items.filter((se) => se.metadata.labels?.[SOURCE_LABEL] !== undefined);
}

function endpoints(host: string, ns: string, what: string, ok: (eps: IstiodEndpoint[]) => boolean): Promise<IstiodEndpoint[]> {
  return eventually(`istiod: ${host} ${what}`, async () => {
    const eps = await istiod.endpointsOf(host, ns);
    return ok(eps) ? eps : undefined;
  }, 30_000);
}

const addresses = (eps: IstiodEndpoint[]): string => [...new Set(eps.flatMap((e) => e.Addresses ?? []))].sort().join(',');

async function reconciles(): Promise<number> {
  return (await op.metrics.reconcileTotal.get()).values.reduce((a, v) => a + v.value, 0);
}

describe('generated ServiceEntries in istiod (in-memory registry)', { timeout: 600_000 }, () => {
  test('fields and identity reach istiod; a new instance and a new port are followed; a steady state writes nothing; drift is put back', async () => {
    const ns = 'ise-fields';
    const host = `web.${ns}.vm.internal`;
    const { url, reg } = registry('fields');
    reg.set('vm-1', '10.50.0.1', { service: 'web', __port_http__: '8080', version: 'v1' });
    reg.set('vm-2', '10.50.0.2', { service: 'web', __port_http__: '8080', version: 'v2' });
    // The memory provider is served as "consul"; a host template like the EC2/GCE default.
    await applySource(ns, 'web', url, {
      serviceEntries: { hosts: ['{service}.{namespace}.vm.internal'] },
      workloadEntry: { serviceAccount: 'web-sa', network: 'vm-net', locality: 'eu-west/eu-west-1a/rack-7', weight: 3 },
    });
    const eps = await endpoints(host, ns, 'two endpoints', (e) => addresses(e) === '10.50.0.1,10.50.0.2');
    const vm1 = eps.find((e) => e.Addresses?.includes('10.50.0.1'));
    assert.ok(vm1);
    assert.equal(vm1.ServicePortName, 'http');
    assert.equal(vm1.EndpointPort, 8080);
    assert.equal(vm1.Labels?.['app'], 'web');
    assert.equal(vm1.Labels?.['version'], 'v1');
    assert.equal(vm1.Locality?.Label, 'eu-west/eu-west-1a/rack-7');
    assert.equal(vm1.LbWeight, 3);
    assert.equal(vm1.Network, 'vm-net');
    assert.equal(vm1.ServiceAccount, `spiffe://cluster.local/ns/${ns}/sa/web-sa`);
    assert.equal(vm1.TLSMode, 'istio');
    const svc = (await istiod.registryz()).find((s) => s.hostname === host);
    assert.deepEqual(svc?.ports?.map((p) => [p.name, p.port, p.protocol]), [['http', 8080, 'HTTP']]);

    reg.set('vm-3', '10.50.0.3', { service: 'web', __port_http__: '8080', __port_metrics__: '9100' });
    const three = await endpoints(host, ns, 'vm-3 and its metrics port', (e) => addresses(e) === '10.50.0.1,10.50.0.2,10.50.0.3' && e.some((x) => x.ServicePortName === 'metrics'));
    assert.equal(three.find((x) => x.ServicePortName === 'metrics')?.EndpointPort, 9100);
    const [se] = await generated(ns);
    assert.ok(se);
    assert.deepEqual(se.spec.ports, [
      { number: 8080, name: 'http', protocol: 'HTTP' },
      { number: 9100, name: 'metrics' },
    ]);
    const source = await eventually('status', async () => {
      const s = await getSource(cluster, ns, 'web');
      return s.status?.managedServiceEntries === 1 && s.status.managedEntries === 3 && condition(s, 'Ready')?.status === 'True' ? s : undefined;
    });
    assert.equal(source.status?.serviceEntryConflicts, 0);

    const writes = await op.metrics.writeCount();
    const before = await reconciles();
    await cluster.kubectl(['annotate', 'vmrs', 'web', '-n', ns, `test/poke=${Date.now()}`, '--overwrite']);
    await eventually('another reconcile', async () => (await reconciles()) > before);
    assert.equal(await op.metrics.writeCount(), writes, 'no write in a steady state');

    await cluster.kubectl(['patch', 'serviceentry', se.metadata.name, '-n', ns, '--type=merge', '-p', '{"spec":{"hosts":["hijacked.example"]}}']);
    await eventually('the hosts to be restored', async () => (await generated(ns))[0]?.spec.hosts[0] === host);
  });

  test('status health mode: istiod follows the Healthy condition; a service with no healthy instance keeps its ServiceEntry', async () => {
    const ns = 'ise-health';
    const host = 'cart.service.consul';
    const { url, reg } = registry('health');
    reg.set('c-1', '10.51.0.1', { service: 'cart', __port_grpc__: '7000' }, { healthy: true });
    reg.set('c-2', '10.51.0.2', { service: 'cart', __port_grpc__: '7000' }, { healthy: false });
    await applySource(ns, 'cart', url, { consul: { address: url, health: { mode: 'status' } } });
    await endpoints(host, ns, 'only the healthy one', (e) => addresses(e) === '10.51.0.1');
    reg.set('c-1', '10.51.0.1', { service: 'cart', __port_grpc__: '7000' }, { healthy: false });
    await endpoints(host, ns, 'none', (e) => e.length === 0);
    assert.equal((await getEntries(cluster, ns)).length, 2);
    assert.equal((await generated(ns)).length, 1, 'the ServiceEntry stays');
    reg.set('c-2', '10.51.0.2', { service: 'cart', __port_grpc__: '7000' }, { healthy: true });
    await endpoints(host, ns, 'c-2 back', (e) => addresses(e) === '10.51.0.2');
  });

  test('a foreign ServiceEntry with the same host blocks ours and is never touched', async () => {
    const ns = 'ise-conflict';
    await cluster.kubectl(['create', 'namespace', ns]);
    const legacy = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'legacy', namespace: ns },
      spec: { hosts: ['db.service.consul'], location: 'MESH_INTERNAL', resolution: 'STATIC', ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }], workloadSelector: { labels: { app: 'db' } } },
    };
    await applyYaml(cluster, JSON.stringify(legacy));
    const rv = JSON.parse(await cluster.kubectl(['get', 'serviceentry', 'legacy', '-n', ns, '-o', 'json'])).metadata.resourceVersion as string;
    const { url, reg } = registry('conflict');
    reg.set('db-1', '10.52.0.1', { service: 'db', __port_tcp__: '5432' });
    reg.set('q-1', '10.52.0.2', { service: 'queue', __port_tcp__: '5672' });
    await applySource(ns, 'data', url, {});
    const s = await eventually('the conflict in status', async () => {
      const src = await getSource(cluster, ns, 'data');
      return src.status?.serviceEntryConflicts === 1 && src.status.managedServiceEntries === 1 ? src : undefined;
    });
    assert.equal(condition(s, 'Synced')?.reason, 'ServiceEntryConflict');
    assert.deepEqual((await generated(ns)).map((se) => se.spec.hosts[0]), ['queue.service.consul']);
    assert.equal(JSON.parse(await cluster.kubectl(['get', 'serviceentry', 'legacy', '-n', ns, '-o', 'json'])).metadata.resourceVersion, rv);
    assert.match(await cluster.kubectl(['get', 'vmrs', 'data', '-n', ns, '-o', 'wide']), /SERVICEENTRIES/);

    // No service account: clients send plain text. A DNS-name entry is not selected.
    const q = await endpoints('queue.service.consul', ns, 'the queue endpoint', (e) => e.length === 1);
    assert.equal(q[0]?.TLSMode, 'disabled');
    reg.set('q-2', 'q-2.vms.example', { service: 'queue', __port_tcp__: '5672' });
    await eventually('one unselected entry', async () => (await getSource(cluster, ns, 'data')).status?.unselectedEntries === 1);
    assert.equal(addresses(await istiod.endpointsOf('queue.service.consul', ns)), '10.52.0.2', 'istiod ignores the DNS-name entry');
    reg.remove('q-2');

    // The service leaves the registry: its ServiceEntry goes (the memory registry has no service catalog).
    reg.remove('q-1');
    await eventually('the queue ServiceEntry deleted', async () => (await generated(ns)).length === 0);
  });
});
