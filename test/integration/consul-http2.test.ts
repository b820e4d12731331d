/**
 * Service watches over HTTP/2 against a real Consul dev agent serving HTTPS: a source of
 * far more services than the HTTP/1.1 watch slots has every service watched (as streams
 * of a few connections), and an instance added, re-addressed or removed in any of them is
 * answered by its own service's query: the catalog summary and the node list, whose cost
 * grows with the whole catalog, are mostly left unread. Request counts are asserted;
 * latencies are printed as diagnostics, nothing asserts on time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ConsulAgent } from '../../src/dev/consul-agent.ts';
import { silentLogger } from '../../src/metrics/logger.ts';
import { ProviderMetrics } from '../../src/metrics/provider-metrics.ts';
import { createConsulProviderFactory, type ConsulProviderFactory } from '../../src/providers/consul/index.ts';
import { secretKey } from '../../src/providers/provider.ts';
import { source } from '../fixtures/builders.ts';
import { ProviderView } from '../fixtures/provider-view.ts';

const SERVICES = 300;
const CA_REF = { name: 'consul-ca', key: 'ca.crt' };
const name = (s: number): string => `svc-${String(s).padStart(3, '0')}`;

let agent: ConsulAgent;
let factory: ConsulProviderFactory;
let view: ProviderView;
const registry = new Registry();

async function count(operation: string): Promise<number> {
  const m = await registry.getSingleMetric('vmregistry_provider_requests_total')?.get();
  return (m?.values ?? []).filter((v) => v.labels['operation'] === operation).reduce((s, v) => s + v.value, 0);
}

async function eventually(what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 3000 && !(await ok()); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(await ok(), `timed out waiting for ${what}`);
}

/** Waits until no `operation` answered for 2 s (each blocking query then waits for a change). */
async function settled(operation: string): Promise<void> {
  let last = -1;
  let quietSince = performance.now();
  for (let i = 0; i < 3000; i++) {
    const now = await count(operation);
    if (now !== last) [last, quietSince] = [now, performance.now()];
    else if (performance.now() - quietSince >= 2000) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${operation} kept answering`);
}

function register(service: string, id: string, address: string): Promise<void> {
  return agent.registerExternal({ Node: `vm-${id}`, Address: address, Service: { ID: id, Service: service, Tags: ['mesh'], Address: address, Port: 8080 } });
}

before(async () => {
  agent = await ConsulAgent.start({ tls: true });
  const ops: unknown[] = [];
  for (let s = 0; s < SERVICES; s++) {
    const node = `vm-${name(s)}-0`;
    const address = `10.16.${s >> 8}.${s & 255}`;
    ops.push({ Node: { Verb: 'set', Node: { Node: node, Address: address } } });
    ops.push({ Service: { Verb: 'set', Node: node, Service: { ID: `${name(s)}-0`, Service: name(s), Tags: ['mesh'], Address: address, Port: 8080 } } });
  }
  for (let at = 0; at < ops.length; at += 128) await agent.api('PUT', '/v1/txn', ops.slice(at, at + 128));
  // The default budget (100 sockets): over HTTP/1.1 it would grant 65 service watches.
  factory = createConsulProviderFactory();
  const spec = source('big').consul({ address: agent.httpsAddress, tags: ['mesh'], tls: { caSecretRef: CA_REF } }).spec({ interval: '1h' }).build().spec;
  const secrets = new Map([[secretKey(CA_REF), agent.caPem ?? '']]);
  view = new ProviderView(factory.create({ source: 'default/big', spec, secrets, metrics: new ProviderMetrics(registry), log: silentLogger }), 120_000);
  await view.refresh();
});

after(async () => {
  await view?.provider.close();
  await agent?.stop();
});

describe(`service watches over HTTP/2, ${SERVICES} services`, { timeout: 600_000 }, () => {
  test('the endpoint is found to speak HTTP/2 and every selected service is watched, beyond the HTTP/1.1 slots', async () => {
    await view.until(`${SERVICES} endpoints`, (eps) => eps.size === SERVICES);
    await eventually('every service watched', () => factory.hub.servicesWatched === SERVICES);
    assert.equal(factory.hub.multiplexedEndpoints, 1);
    // The agent answers a new watch at once when its own view of the service is newer than the
    // cached answer; once those answers have come, the watches wait.
    await settled('watch_health_service');
  });

  test('adds, re-addresses and removals in a large source are answered by their services’ watches: most list reads are left out', async (t) => {
    await eventually('the first sweep to end', () => factory.hub.feedsSweeping === 0);
    const lists = async (): Promise<number> => (await count('ui_services')) + (await count('catalog_nodes'));
    const listsBefore = await lists();
    const readsBefore = await count('health_service');
    const sparedBefore = factory.hub.readsSpared;
    const seenAfter: number[] = [];
    for (const s of [17, 151, 289]) {
      const id = `${name(s)}-new`;
      const epId = `vm-${id}/${id}`;
      let seen = view.until(`add to ${name(s)}`, (eps) => eps.has(epId));
      await register(name(s), id, `10.99.0.${s & 255}`);
      seenAfter.push(await seen);
      seen = view.until(`re-address in ${name(s)}`, (eps) => eps.get(epId)?.labels['__address__'] === `10.98.0.${s & 255}`);
      await register(name(s), id, `10.98.0.${s & 255}`);
      seenAfter.push(await seen);
      seen = view.until(`removal from ${name(s)}`, (eps) => !eps.has(epId));
      await agent.deregisterExternal(`vm-${id}`, id);
      seenAfter.push(await seen);
    }
    for (let i = 0; i < 500 && factory.hub.readsSpared - sparedBefore < 5; i++) await new Promise((r) => setTimeout(r, 20));
    const spared = factory.hub.readsSpared - sparedBefore;
    const read = (await lists()) - listsBefore;
    // 15 moves of the service or node list; a watch answer slower than the lists' 30 ms wait costs a read.
    assert.ok(spared >= 5 && read <= 3, `list reads left out: ${spared}; summary and node-list reads: ${read}`);
    // The code before read each changed service at least once (9); a watch whose answer comes after the lists' 30 ms
    // wait (a busy machine) costs a read.
    const reads = (await count('health_service')) - readsBefore;
    assert.ok(reads <= 3, `the services were read ${reads} times for 9 changes: most were taken from their watches' answers`);
    const sorted = [...seenAfter].sort((a, b) => a - b);
    t.diagnostic(`adds, re-addresses and removals seen after p50 ${Math.round(sorted[4] ?? NaN)} ms, max ${Math.round(sorted[8] ?? NaN)} ms; ${spared} list reads left out, ${read} made`);
  });
});
