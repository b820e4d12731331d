/**
 * The whole path against the real consumer: Consul → operator → WorkloadEntries and
 * generated ServiceEntries → istiod (pilot-discovery), read through its debug endpoints.
 * Everything is real: the local control plane, a Consul dev agent, istiod built from
 * the pinned istio.io/istio module with Istio's full CRD set.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsulAgent } from '../../src/dev/consul-agent.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import { Istiod, type IstiodEndpoint } from '../../src/dev/istiod.ts';
import { builtinProviders } from '../../src/providers/builtin.ts';
import { MANAGED_BY_LABEL, SOURCE_LABEL } from '../../src/api/ownership.ts';
import type { ServiceEntry } from '../../src/api/istio.ts';
import { applyYaml, condition, eventually, getEntries, getSource, startLocalCluster, startOperator, type RunningOperator, applyConsulSource } from '../harness/operator-env.ts';

const ttl = (id: string, status: 'passing' | 'critical' = 'passing') => ({ CheckID: id, Name: id, TTL: '10m', Status: status });

let cluster: LocalCluster;
let op: RunningOperator;
let agent: ConsulAgent;
let istiod: Istiod;

before(async () => {
  [cluster, agent] = await Promise.all([startLocalCluster(), ConsulAgent.start()]);
  const started = Date.now();
  istiod = await Istiod.start(cluster);
  process.stdout.write(`# istiod ready ${Date.now() - started} ms after start (CRDs included)\n`);
  op = await startOperator(cluster, builtinProviders(), { resyncPeriodMs: 60 * 60_000 });
});

after(async () => {
  await op?.stop();
  await Promise.allSettled([istiod?.stop(), agent?.stop()]);
  await cluster?.stop();
});

function applySource(ns: string, name: string, consul: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<void> {
  return applyConsulSource(cluster, ns, name, consul, { serviceEntries: {}, ...extra });
}

async function serviceEntries(ns: string): Promise<ServiceEntry[]> {
  return (JSON.parse(await cluster.kubectl(['get', 'serviceentries.networking.istio.io', '-n', ns, '-o', 'json'])) as { items: ServiceEntry[] }).items;
}

async function serviceEntryFor(ns: string, host: string): Promise<ServiceEntry | undefined> {
  return (await serviceEntries(ns)).find((se) => se.spec.hosts.includes(host) && se.metadata.labels?.[MANAGED_BY_LABEL] === 'vm-registry-operator');
}

/** Waits until istiod's endpoints of host satisfy ok; returns them. */
function istiodEndpoints(host: string, ns: string, what: string, ok: (eps: IstiodEndpoint[]) => boolean, timeoutMs = 30_000): Promise<IstiodEndpoint[]> {
  return eventually(`istiod: ${host} ${what}`, async () => {
    const eps = await istiod.endpointsOf(host, ns);
    return ok(eps) ? eps : undefined;
  }, timeoutMs);
}

const addressesOf = (eps: IstiodEndpoint[]): string[] => [...new Set(eps.flatMap((e) => e.Addresses ?? []))].sort();
const sameAddresses = (want: string[]) => (eps: IstiodEndpoint[]) => JSON.stringify(addressesOf(eps)) === JSON.stringify([...want].sort());

async function reconcileCount(): Promise<number> {
  const m = await op.metrics.reconcileTotal.get();
  return m.values.reduce((a, v) => a + v.value, 0);
}

describe('generated ServiceEntries as istiod sees them', { timeout: 900_000 }, () => {
  test('endpoints carry address, ports, labels, locality, weight, network and identity; zero writes in a steady state', async () => {
    const ns = 'ist-fields';
    await agent.registerService({ ID: 'web-1', Name: 'web', Tags: ['version|v1'], Address: '10.40.0.1', Port: 8080, Meta: { protocol: 'http', port_metrics: '9100' } });
    await agent.registerService({ ID: 'web-2', Name: 'web', Tags: ['version|v2'], Address: '10.40.0.2', Port: 8080, Meta: { protocol: 'http' } });
    await agent.registerService({ ID: 'cache-1', Name: 'cache', Address: '10.40.1.1', Port: 6379, Meta: { protocol: 'redis' } });
    await applySource(ns, 'web', { address: agent.address, services: ['web'] }, {
      workloadEntry: { serviceAccount: 'web-sa', network: 'vm-net', locality: 'eu-west/eu-west-1a/rack-7', weight: 3 },
    });
    await applySource(ns, 'cache', { address: agent.address, services: ['cache'] });

    const se = await eventually('the web ServiceEntry', () => serviceEntryFor(ns, 'web.service.consul'));
    assert.match(se.metadata.name, /^web-web-[0-9a-f]{10}$/);
    assert.equal(se.metadata.labels?.[SOURCE_LABEL], 'web');
    assert.deepEqual(se.metadata.ownerReferences?.map((r) => [r.kind, r.name, r.controller]), [['VmRegistrySource', 'web', true]]);
    assert.deepEqual(se.spec.ports, [
      { number: 8080, name: 'http', protocol: 'HTTP' },
      { number: 9100, name: 'metrics' },
    ]);
    assert.equal(se.spec.resolution, 'STATIC');
    assert.equal(se.spec.location, 'MESH_INTERNAL');
    assert.deepEqual(se.spec.workloadSelector, { labels: { app: 'web', [SOURCE_LABEL]: 'web' } });

    // Every selected entry is an endpoint of every ServiceEntry port: web-2 has no metrics
    // port of its own, so istiod uses the ServiceEntry's number for it.
    const eps = await istiodEndpoints('web.service.consul', ns, 'four endpoints', (e) => e.length === 4);
    assert.equal(eps.find((e) => e.Addresses?.includes('10.40.0.2') && e.ServicePortName === 'metrics')?.EndpointPort, 9100);
    const web1http = eps.find((e) => e.Addresses?.includes('10.40.0.1') && e.ServicePortName === 'http');
    const web1metrics = eps.find((e) => e.Addresses?.includes('10.40.0.1') && e.ServicePortName === 'metrics');
    assert.ok(web1http && web1metrics, JSON.stringify(eps));
    assert.equal(web1http.EndpointPort, 8080);
    assert.equal(web1metrics.EndpointPort, 9100);
    assert.equal(web1http.Labels?.['app'], 'web');
    assert.equal(web1http.Labels?.['version'], 'v1');
    assert.equal(web1http.Labels?.[SOURCE_LABEL], 'web', 'metadata labels reach istiod (they are what the selector matches)');
    assert.equal(web1http.Locality?.Label, 'eu-west/eu-west-1a/rack-7');
    assert.equal(web1http.LbWeight, 3);
    assert.equal(web1http.Network, 'vm-net');
    assert.equal(web1http.ServiceAccount, `spiffe://cluster.local/ns/${ns}/sa/web-sa`);
    assert.equal(web1http.TLSMode, 'istio', 'a service account means clients send Istio mTLS');
    assert.equal(eps.find((e) => e.Addresses?.includes('10.40.0.2'))?.Labels?.['version'], 'v2');

    const cache = await istiodEndpoints('cache.service.consul', ns, 'one endpoint', (e) => e.length === 1);
    assert.equal(cache[0]?.ServicePortName, 'redis');
    assert.equal(cache[0]?.TLSMode, 'disabled', 'no service account: clients send plain text');
    const registry = await istiod.registryz();
    const svc = registry.find((s) => s.hostname === 'cache.service.consul');
    assert.ok(svc, 'istiod lists the generated service');
    assert.deepEqual(svc.ports?.map((p) => [p.name, p.port, p.protocol]), [['redis', 6379, 'Redis']]);

    const source = await eventually('status counts', async () => {
      const s = await getSource(cluster, ns, 'web');
      return s.status?.managedServiceEntries === 1 && condition(s, 'Ready')?.status === 'True' ? s : undefined;
    });
    assert.equal(source.status?.desiredServiceEntries, 1);
    assert.equal(source.status?.serviceEntryConflicts, 0);
    assert.match(condition(source, 'Synced')?.message ?? '', /1 ServiceEntries match the services/);
    const wide = await cluster.kubectl(['get', 'vmrs', 'web', '-n', ns, '-o', 'wide']);
    assert.match(wide.split('\n')[0] ?? '', /SERVICEENTRIES/);

    // Steady state: reconciles that change nothing write nothing.
    const writes = await op.metrics.writeCount();
    const reconciles = await reconcileCount();
    for (const name of ['web', 'cache']) await cluster.kubectl(['annotate', 'vmrs', name, '-n', ns, `test/poke=${Date.now()}`, '--overwrite']);
    await eventually('two more reconciles', async () => (await reconcileCount()) >= reconciles + 2);
    assert.equal(await op.metrics.writeCount(), writes, 'no write in a steady state');

    // Drift: a hand edit of the ports is put back.
    await cluster.kubectl(['patch', 'serviceentry', se.metadata.name, '-n', ns, '--type=merge', '-p', '{"spec":{"ports":[{"number":1,"name":"http","protocol":"HTTP"}]}}']);
    await eventually('the ports to be restored', async () => (await serviceEntryFor(ns, 'web.service.consul'))?.spec.ports.length === 2);
    await cluster.kubectl(['delete', 'serviceentry', se.metadata.name, '-n', ns]);
    const back = await eventually('the deleted ServiceEntry to be recreated', async () => {
      const s = await serviceEntryFor(ns, 'web.service.consul');
      return s && s.metadata.uid !== se.metadata.uid ? s : undefined;
    });
    assert.equal(back.metadata.name, se.metadata.name, 'deterministic name');
  });

  test('exclude mode: a failing check removes the endpoint; a new instance is added; no healthy instance keeps the ServiceEntry; deregistration deletes it', async () => {
    const ns = 'ist-exclude';
    const host = 'pay.service.consul';
    await agent.registerService({ ID: 'pay-1', Name: 'pay', Address: '10.41.0.1', Port: 7000, Meta: { protocol: 'grpc' }, Checks: [ttl('pay-1-ttl')] });
    await agent.registerService({ ID: 'pay-2', Name: 'pay', Address: '10.41.0.2', Port: 7000, Meta: { protocol: 'grpc' }, Checks: [ttl('pay-2-ttl')] });
    await applySource(ns, 'pay', { address: agent.address, services: ['pay'] });
    await istiodEndpoints(host, ns, 'two endpoints', sameAddresses(['10.41.0.1', '10.41.0.2']));

    await agent.setTtl('pay-1-ttl', 'fail', 'down');
    await istiodEndpoints(host, ns, 'pay-1 gone', sameAddresses(['10.41.0.2']));
    await agent.setTtl('pay-1-ttl', 'pass');
    await istiodEndpoints(host, ns, 'pay-1 back', sameAddresses(['10.41.0.1', '10.41.0.2']));
    await agent.registerService({ ID: 'pay-3', Name: 'pay', Address: '10.41.0.3', Port: 7000, Meta: { protocol: 'grpc' }, Checks: [ttl('pay-3-ttl')] });
    const three = await istiodEndpoints(host, ns, 'pay-3 added', sameAddresses(['10.41.0.1', '10.41.0.2', '10.41.0.3']));
    assert.ok(three.every((e) => e.ServicePortName === 'grpc' && e.EndpointPort === 7000));

    const se = await serviceEntryFor(ns, host);
    assert.ok(se);
    // One at a time: several deletions at once would (rightly) trip the deletion guard.
    for (const [i, id] of ['pay-1', 'pay-2', 'pay-3'].entries()) {
      await agent.setTtl(`${id}-ttl`, 'fail', 'down');
      await eventually(`${2 - i} WorkloadEntries left`, async () => (await getEntries(cluster, ns)).length === 2 - i);
    }
    const status = await eventually('a sync with no entry', async () => {
      const s = await getSource(cluster, ns, 'pay');
      return s.status?.desiredEntries === 0 ? s : undefined;
    });
    assert.equal(status.status?.managedServiceEntries, 1);
    assert.equal((await serviceEntryFor(ns, host))?.metadata.uid, se.metadata.uid, 'a service with no healthy instance keeps its ServiceEntry');
    await istiodEndpoints(host, ns, 'no endpoint', (e) => e.length === 0);

    for (const id of ['pay-1', 'pay-2', 'pay-3']) await agent.deregisterService(id);
    await eventually('the ServiceEntry of the deregistered service to be deleted', async () => (await serviceEntryFor(ns, host)) === undefined);
  });

  test('status mode: istiod drops an entry whose Healthy condition is False and takes it back when True', async () => {
    const ns = 'ist-status';
    const host = 'cart.service.consul';
    await agent.registerService({ ID: 'cart-1', Name: 'cart', Address: '10.42.0.1', Port: 7000, Checks: [ttl('cart-1-ttl')] });
    await agent.registerService({ ID: 'cart-2', Name: 'cart', Address: '10.42.0.2', Port: 7000, Checks: [ttl('cart-2-ttl', 'critical')] });
    await applySource(ns, 'cart', { address: agent.address, services: ['cart'], health: { mode: 'status' } });
    await eventually('two WorkloadEntries', async () => (await getEntries(cluster, ns)).length === 2);
    await istiodEndpoints(host, ns, 'only the healthy instance', sameAddresses(['10.42.0.1']));
    await agent.setTtl('cart-1-ttl', 'fail', 'down');
    await istiodEndpoints(host, ns, 'no endpoint', (e) => e.length === 0);
    assert.equal((await getEntries(cluster, ns)).length, 2, 'the entries stay; only their Healthy condition changed');
    await agent.setTtl('cart-1-ttl', 'pass');
    await agent.setTtl('cart-2-ttl', 'pass');
    await istiodEndpoints(host, ns, 'both endpoints', sameAddresses(['10.42.0.1', '10.42.0.2']));
  });

  test('a new port in the registry reaches the ServiceEntry and istiod; DNS-name entries are reported as unselected', async () => {
    const ns = 'ist-ports';
    const host = 'api.service.consul';
    await agent.registerService({ ID: 'api-1', Name: 'api', Address: '10.43.0.1', Port: 9090, Meta: { protocol: 'grpc' } });
    await applySource(ns, 'api', { address: agent.address, services: ['api'] });
    await istiodEndpoints(host, ns, 'the grpc endpoint', (e) => e.length === 1 && e[0]?.ServicePortName === 'grpc');

    await agent.registerService({ ID: 'api-1', Name: 'api', Address: '10.43.0.1', Port: 9090, Meta: { protocol: 'grpc', port_admin: '9901' } });
    const se = await eventually('the admin port in the ServiceEntry', async () => {
      const s = await serviceEntryFor(ns, host);
      return s?.spec.ports.some((p) => p.name === 'admin') ? s : undefined;
    });
    assert.deepEqual(se.spec.ports, [
      { number: 9090, name: 'grpc', protocol: 'GRPC' },
      { number: 9901, name: 'admin' },
    ]);
    const eps = await istiodEndpoints(host, ns, 'the admin endpoint', (e) => e.some((x) => x.ServicePortName === 'admin'));
    assert.equal(eps.find((x) => x.ServicePortName === 'admin')?.EndpointPort, 9901);

    await agent.registerService({ ID: 'api-2', Name: 'api', Address: 'api-2.vms.example', Port: 9090, Meta: { protocol: 'grpc' } });
    const source = await eventually('one unselected entry in status', async () => {
      const s = await getSource(cluster, ns, 'api');
      return s.status?.unselectedEntries === 1 ? s : undefined;
    });
    assert.match(condition(source, 'Synced')?.message ?? '', /1 entries with a DNS-name address are not selected/);
    assert.equal((await getEntries(cluster, ns)).length, 2, 'the WorkloadEntry itself exists');
    assert.deepEqual(addressesOf(await istiod.endpointsOf(host, ns)), ['10.43.0.1'], 'istiod ignores the DNS-name entry of a STATIC ServiceEntry');
  });

  test('a foreign ServiceEntry with the same host is a conflict, reported and never touched', async () => {
    const ns = 'ist-conflict';
    await cluster.kubectl(['create', 'namespace', ns]);
    const legacy = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'legacy-db', namespace: ns },
      spec: { hosts: ['db.service.consul'], location: 'MESH_INTERNAL', resolution: 'STATIC', ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }], workloadSelector: { labels: { app: 'db' } } },
    };
    await applyYaml(cluster, JSON.stringify(legacy));
    const before = (await serviceEntries(ns))[0];
    await agent.registerService({ ID: 'db-1', Name: 'db', Address: '10.44.0.1', Port: 5432 });
    await agent.registerService({ ID: 'queue-1', Name: 'queue', Address: '10.44.0.2', Port: 5672 });
    await applySource(ns, 'data', { address: agent.address, services: ['db', 'queue'] });
    await eventually('the queue ServiceEntry', () => serviceEntryFor(ns, 'queue.service.consul'));
    const source = await eventually('the conflict in status', async () => {
      const s = await getSource(cluster, ns, 'data');
      return s.status?.serviceEntryConflicts === 1 ? s : undefined;
    });
    assert.equal(condition(source, 'Synced')?.reason, 'ServiceEntryConflict');
    assert.match(condition(source, 'Synced')?.message ?? '', /host db\.service\.consul is already declared by ServiceEntry legacy-db/);
    assert.equal(source.status?.managedServiceEntries, 1);
    const all = await serviceEntries(ns);
    assert.equal(all.length, 2);
    const after = all.find((s) => s.metadata.name === 'legacy-db');
    assert.equal(after?.metadata.resourceVersion, before?.metadata.resourceVersion, 'the foreign ServiceEntry is untouched');
    const wide = await cluster.kubectl(['get', 'vmrs', 'data', '-n', ns, '-o', 'wide', '--no-headers']);
    assert.match(wide, /ServiceEntryConflict/);
  });
});
