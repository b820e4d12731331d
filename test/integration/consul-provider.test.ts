/**
 * The Consul provider against a real Consul dev agent (built from tools/consul on first
 * use, which takes minutes): snapshots, blocking-query watches, health modes, ACLs,
 * outages and awkward data.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import type { VmRegistrySourceSpecInput } from '../../src/api/types.ts';
import { ConsulAgent } from '../../src/dev/consul-agent.ts';
import { freePort } from '../../src/dev/process.ts';
import { silentLogger } from '../../src/metrics/logger.ts';
import { ProviderMetrics } from '../../src/metrics/provider-metrics.ts';
import { consulProviderFactory, createConsulProviderFactory } from '../../src/providers/consul/index.ts';
import { isProviderError, type ProviderErrorKind } from '../../src/providers/errors.ts';
import type { Endpoint, Provider } from '../../src/providers/provider.ts';
import { buildDesiredState } from '../../src/mapping/desired.ts';
import { source } from '../fixtures/builders.ts';

type ConsulInput = NonNullable<VmRegistrySourceSpecInput['consul']>;

interface Harness {
  readonly provider: Provider;
  readonly registry: Registry;
  /** Number of onChange calls so far. */
  changes(): number;
  /** Resolves with the elapsed ms once onChange was called more than `seen` times. */
  changeAfter(seen: number, timeoutMs?: number): Promise<number>;
  snap(): Promise<Endpoint[]>;
  /** Resolves once the watches answered, the catalog summary was read and no sweep pass runs. */
  settled(): Promise<void>;
  /** Successful requests of one operation so far. */
  answered(operation: string): Promise<number>;
  /** Runs fn, then waits until the operation succeeded more often than before it. */
  thenAnswered(operation: string, fn: () => Promise<unknown>): Promise<void>;
}

const open: Provider[] = [];

function harness(consul: ConsulInput, secrets: Record<string, string> = {}, watch = true): Harness {
  const spec = source('it').consul(consul).build().spec;
  const registry = new Registry();
  // A factory (and so a connection pool) per harness: its metrics land in this registry.
  const factory = createConsulProviderFactory();
  const provider = factory.create({
    source: 'default/it',
    spec,
    secrets: new Map(Object.entries(secrets)),
    metrics: new ProviderMetrics(registry),
    log: silentLogger,
  });
  open.push(provider);
  let count = 0;
  const waiters: Array<() => void> = [];
  const answered = async (op: string): Promise<number> =>
    ((await registry.getSingleMetric('vmregistry_provider_requests_total')?.get())?.values ?? [])
      .filter((v) => v.labels['operation'] === op && v.labels['outcome'] === 'success')
      .reduce((a, v) => a + v.value, 0);
  if (watch) {
    provider.watch?.(() => {
      count += 1;
      for (const w of waiters.splice(0)) w();
    });
  }
  return {
    provider,
    registry,
    changes: () => count,
    async changeAfter(seen, timeoutMs = 3000) {
      const started = Date.now();
      while (count <= seen) {
        const remaining = timeoutMs - (Date.now() - started);
        if (remaining <= 0) throw new Error(`no change notification within ${timeoutMs} ms`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), sleep(remaining)]);
      }
      return Date.now() - started;
    },
    snap: async () => [...(await provider.snapshot(AbortSignal.timeout(15_000))).endpoints],
    answered,
    async thenAnswered(operation, fn) {
      const before = await answered(operation);
      await fn();
      for (let i = 0; i < 1500 && (await answered(operation)) <= before; i++) await sleep(20);
      assert.ok((await answered(operation)) > before, `no ${operation} answer after the change`);
    },
    async settled() {
      const ops = ['watch_catalog_services', 'watch_health_state', 'watch_catalog_nodes', 'ui_services'];
      for (let i = 0; i < 1500; i++) {
        const counts = await Promise.all(ops.map(answered));
        if (counts.every((n) => n > 0) && factory.hub.feedsSweeping === 0) return;
        await sleep(20);
      }
      throw new Error('the feed did not settle: watches, summary or first sweep still under way');
    },
  };
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (ok(last)) return last;
    } catch (e) {
      lastErr = e;
    }
    await sleep(100);
  }
  throw new Error(`condition not met within ${timeoutMs} ms; last value ${JSON.stringify(last)?.slice(0, 500)} ${String(lastErr ?? '')}`);
}

async function rejectsWith(p: Promise<unknown>, kind: ProviderErrorKind, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isProviderError(e), `expected a ProviderError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

async function requestCount(reg: Registry): Promise<number> {
  const m = await reg.getSingleMetric('vmregistry_provider_requests_total')?.get();
  return (m?.values ?? []).reduce((s, v) => s + v.value, 0);
}

const ttl = (id: string, status: 'passing' | 'critical' | 'warning' = 'passing') => ({ CheckID: id, Name: id, TTL: '10m', Status: status });

describe('Consul provider against a real agent', { timeout: 900_000 }, () => {
  let agent: ConsulAgent;

  before(async () => {
    agent = await ConsulAgent.start({ log: (l) => process.stderr.write(`${l}\n`) });
  });

  after(async () => {
    await Promise.allSettled(open.map((p) => p.close()));
    await agent?.stop();
  });

  test('register, update (tags, meta, port, address) and deregister reach watch() and snapshot()', async (t) => {
    const h = harness({ address: agent.address, services: ['web'] });
    assert.deepEqual(await h.snap(), []);
    let seen = h.changes();
    await agent.registerService({
      ID: 'web-1',
      Name: 'web',
      Tags: ['mesh', 'version|v1'],
      Address: '10.1.0.1',
      Port: 8080,
      Meta: { protocol: 'http' },
      Checks: [ttl('web-1-ttl')],
    });
    t.diagnostic(`register seen by watch after ${await h.changeAfter(seen)} ms`);
    // A notification says that something changed; a later one may still be under way (e.g.
    // the check's first status), so the snapshot is taken until it shows the change.
    let [ep] = await eventually(h.snap, (e) => e.length === 1);
    assert.ok(ep);
    assert.equal(ep.id, `${agent.node}/web-1`);
    assert.equal(ep.scope, 'web');
    assert.equal(ep.labels['__address__'], '10.1.0.1');
    assert.equal(ep.labels['__port__'], '8080');
    assert.equal(ep.labels['__meta_consul_tag_version'], 'v1');
    assert.equal(ep.labels['__meta_consul_tags'], ',mesh,version|v1,');
    assert.equal(ep.labels['__meta_consul_service_metadata_protocol'], 'http');
    assert.equal(ep.labels['__meta_consul_dc'], 'dc1');
    assert.equal(ep.labels['__meta_consul_node'], agent.node);
    assert.equal(ep.labels['__meta_consul_health'], 'passing');

    seen = h.changes();
    await agent.registerService({
      ID: 'web-1',
      Name: 'web',
      Tags: ['mesh', 'version|v2', 'canary'],
      Address: '10.1.0.2',
      Port: 9090,
      Meta: { protocol: 'grpc', owner: 'team-a' },
      Checks: [ttl('web-1-ttl')],
    });
    t.diagnostic(`update seen by watch after ${await h.changeAfter(seen)} ms`);
    [ep] = await eventually(h.snap, (e) => e[0]?.labels['__address__'] === '10.1.0.2');
    assert.ok(ep);
    assert.equal(ep.labels['__address__'], '10.1.0.2');
    assert.equal(ep.labels['__port__'], '9090');
    assert.equal(ep.labels['__meta_consul_tag_version'], 'v2');
    assert.equal(ep.labels['__meta_consul_tags'], ',mesh,version|v2,canary,');
    assert.equal(ep.labels['__meta_consul_service_metadata_protocol'], 'grpc');
    assert.equal(ep.labels['__meta_consul_service_metadata_owner'], 'team-a');

    seen = h.changes();
    await agent.deregisterService('web-1');
    await h.changeAfter(seen);
    assert.deepEqual(await eventually(h.snap, (e) => e.length === 0), []);
  });

  test('a TTL check flipping critical and back is seen within ~1 s, in both health modes', async (t) => {
    await agent.registerService({ ID: 'pay-1', Name: 'pay', Tags: ['mesh'], Address: '10.2.0.1', Port: 7000, Checks: [ttl('pay-1-ttl')] });
    await agent.registerService({ ID: 'pay-2', Name: 'pay', Tags: ['mesh'], Address: '10.2.0.2', Port: 7000, Checks: [ttl('pay-2-ttl')] });
    const exclude = harness({ address: agent.address, services: ['pay'] });
    const status = harness({ address: agent.address, services: ['pay'], health: { mode: 'status' } });
    await eventually(exclude.snap, (e) => e.length === 2);
    await eventually(status.snap, (e) => e.length === 2);
    // Both watches settle on their first answers before flipping.
    await Promise.all([exclude.settled(), status.settled()]);

    const seenE = exclude.changes();
    const seenS = status.changes();
    await agent.setTtl('pay-1-ttl', 'fail', 'down');
    // Speed is measured by make bench; here the bound only keeps a missing notification from hanging.
    const [msE, msS] = await Promise.all([exclude.changeAfter(seenE, 5000), status.changeAfter(seenS, 5000)]);
    t.diagnostic(`critical flip seen after ${msE} ms (exclude) and ${msS} ms (status)`);

    assert.deepEqual((await eventually(exclude.snap, (e) => e.length === 1)).map((e) => e.id), [`${agent.node}/pay-2`]);
    const byId = new Map((await eventually(status.snap, (e) => e.some((x) => x.healthy === false))).map((e) => [e.id, e]));
    assert.equal(byId.get(`${agent.node}/pay-1`)?.healthy, false);
    assert.equal(byId.get(`${agent.node}/pay-1`)?.labels['__meta_consul_health'], 'critical');
    assert.equal(byId.get(`${agent.node}/pay-2`)?.healthy, true);

    const warn = harness({ address: agent.address, services: ['pay'], health: { includeWarning: true } }, {}, false);
    await agent.setTtl('pay-1-ttl', 'warn', 'degraded');
    await eventually(warn.snap, (e) => e.length === 2);
    assert.equal((await exclude.snap()).length, 1, 'warning is not passing without includeWarning');

    const back = exclude.changes();
    await agent.setTtl('pay-1-ttl', 'pass');
    t.diagnostic(`passing flip seen after ${await exclude.changeAfter(back, 5000)} ms`);
    // The warning's own notification may be the one just seen: snapshot until the pass shows.
    await eventually(exclude.snap, (e) => e.length === 2);
    await eventually(status.snap, (e) => e.every((x) => x.healthy === true));
  });

  test('an instance without a check, added to one of many services, is found by the catalog index and re-read alone', async (t) => {
    for (let i = 0; i < 80; i++) {
      await agent.registerService({ ID: `many-${i}`, Name: `many-${i}`, Tags: ['many'], Address: `10.9.0.${i + 1}`, Port: 80 });
    }
    const h = harness({ address: agent.address, tags: ['many'] });
    await eventually(h.snap, (e) => e.length === 80, 15_000);
    await h.settled();
    const reads = async (op: string): Promise<number> =>
      ((await h.registry.getSingleMetric('vmregistry_provider_requests_total')?.get())?.values ?? [])
        .filter((v) => v.labels['operation'] === op)
        .reduce((a, v) => a + v.value, 0);
    const before = { full: await reads('health_service'), seen: h.changes() };
    const started = Date.now();
    await agent.registerService({ ID: 'many-42-b', Name: 'many-42', Tags: ['many'], Address: '10.9.1.42', Port: 80 });
    await h.changeAfter(before.seen, 10_000);
    t.diagnostic(`check-less add among 80 services seen after ${Date.now() - started} ms`);
    const snap = await h.provider.snapshot(AbortSignal.timeout(15_000));
    assert.ok(snap.endpoints.some((e) => e.id === `${agent.node}/many-42-b`));
    assert.equal((await reads('health_service')) - before.full, 1, 'only the touched service was read in full');
    for (let i = 0; i < 80; i++) await agent.deregisterService(`many-${i}`);
    await agent.deregisterService('many-42-b');
  });

  test('a new service carrying the selected tags appears without restarting the provider', async (t) => {
    const h = harness({ address: agent.address, tags: ['edge', 'prod'] });
    assert.deepEqual(await h.snap(), []);
    await h.settled();
    // The catalog answer that follows the registration is the one the snapshot is taken from.
    await h.thenAnswered('watch_catalog_services', () => agent.registerService({ ID: 'gw-1', Name: 'gw', Tags: ['edge'], Address: '10.3.0.1', Port: 443 }));
    assert.deepEqual(await h.snap(), [], 'one tag of two is not enough');
    const seen = h.changes();
    await agent.registerService({ ID: 'ingress-1', Name: 'ingress', Tags: ['edge', 'prod'], Address: '10.3.0.2', Port: 443 });
    t.diagnostic(`new service seen after ${await h.changeAfter(seen)} ms`);
    const eps = await eventually(h.snap, (e) => e.length === 1);
    assert.equal(eps[0]?.scope, 'ingress');
    // Instances of a selected service that lack a tag are not endpoints.
    // The summary names the service whose instance count moved; its re-read is what the snapshot shows.
    await h.thenAnswered('health_service', () => agent.registerService({ ID: 'ingress-2', Name: 'ingress', Tags: ['edge'], Address: '10.3.0.3', Port: 443 }));
    assert.deepEqual((await h.snap()).map((e) => e.id), [`${agent.node}/ingress-1`]);
  });

  test('node meta selects instances of external nodes; node meta becomes labels', async () => {
    await agent.registerExternal({
      Node: 'vm-eu-1',
      Address: '10.4.0.1',
      NodeMeta: { zone: 'eu-1', tier: 'gold' },
      Service: { ID: 'db-1', Service: 'db', Port: 5432, Tags: ['mesh'] },
    });
    await agent.registerExternal({ Node: 'vm-us-1', Address: '10.4.0.2', NodeMeta: { zone: 'us-1' }, Service: { ID: 'db-2', Service: 'db', Port: 5432 } });
    const h = harness({ address: agent.address, services: ['db'], nodeMeta: { zone: 'eu-1' } }, {}, false);
    const [ep, more] = await h.snap();
    assert.equal(more, undefined);
    assert.equal(ep?.id, 'vm-eu-1/db-1');
    assert.equal(ep?.labels['__address__'], '10.4.0.1', 'node address when the service has none');
    assert.equal(ep?.labels['__meta_consul_metadata_tier'], 'gold');
  });

  test('awkward names and meta (dots, unicode, long values) give labels the engine can sanitise', async () => {
    // Consul caps a meta value at 512 bytes: 250 two-byte characters.
    const long = 'é'.repeat(250);
    await agent.registerService({
      ID: 'odd.svc:1',
      Name: 'odd.svc.v2',
      Tags: ['ünï|cödé', 'key.with.dots|v.1', `long|${'x'.repeat(300)}`],
      Address: 'odd-1.example.internal',
      Port: 8443,
      Meta: { 'weird-key_1': long, protocol: 'HTTP2' },
    });
    const h = harness({ address: agent.address, services: ['odd.svc.v2'] }, {}, false);
    const [ep] = await h.snap();
    assert.ok(ep);
    assert.equal(ep.id, `${agent.node}/odd.svc:1`);
    assert.equal(ep.labels['__meta_consul_tag_ünï'], 'cödé');
    assert.equal(ep.labels['__meta_consul_tag_key.with.dots'], 'v.1');
    assert.equal(ep.labels['__meta_consul_service_metadata_weird-key_1'], long);
    const spec = source('odd').consul({ address: agent.address }).build().spec;
    const state = buildDesiredState({ sourceName: 'odd', spec, endpoints: [ep], providerRules: consulProviderFactory.defaultMapping(spec) });
    assert.deepEqual(state.skipped, []);
    const [we] = state.entries;
    assert.ok(we);
    assert.equal(we.spec.address, 'odd-1.example.internal');
    assert.deepEqual(we.spec.ports, { http2: 8443 });
    assert.equal(we.labels['app'], 'odd.svc.v2');
    assert.equal(we.labels['key.with.dots'], 'v.1');
    for (const v of Object.values(we.labels)) assert.ok(v.length <= 63);
  });

  test('configuration errors are typed: enterprise parameters, wrong datacenter, TLS to a plain port, nothing listening', async () => {
    await rejectsWith(harness({ address: agent.address, namespace: 'default' }, {}, false).snap(), 'BadConfig');
    await rejectsWith(harness({ address: agent.address, datacenter: 'nowhere' }, {}, false).snap(), 'BadConfig', /datacenter/);
    await rejectsWith(harness({ address: `https://127.0.0.1:${agent.ports.http}`, timeout: '3s' }, {}, false).snap(), 'Unreachable', /TLS/);
    await rejectsWith(harness({ address: `http://127.0.0.1:${await freePort()}` }, {}, false).snap(), 'Unreachable');
  });

  test('nothing keeps running after close()', async () => {
    const h = harness({ address: agent.address });
    await h.snap();
    await h.settled();
    await h.provider.close();
    const before = await requestCount(h.registry);
    const changes = h.changes();
    assert.ok(before > 0);
    await agent.registerService({ ID: 'late-1', Name: 'late', Port: 1 });
    await sleep(700);
    assert.equal(await requestCount(h.registry), before, 'no request after close');
    assert.equal(h.changes(), changes, 'no notification after close');
    await rejectsWith(h.snap(), 'BadConfig', /closed/);
  });
});

describe('Consul provider against an ACL-protected agent', { timeout: 900_000 }, () => {
  let agent: ConsulAgent;
  before(async () => {
    agent = await ConsulAgent.start({ acl: true });
    await agent.registerService({ ID: 'secure-1', Name: 'secure', Address: '10.5.0.1', Port: 443 });
  });
  after(async () => {
    await Promise.allSettled(open.map((p) => p.close()));
    await agent?.stop();
  });

  test('a read token sees the services; a bad token is Unauthorized', async () => {
    const token = await agent.createToken('service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }');
    const ref = { tokenSecretRef: { name: 'consul-acl', key: 'token' } };
    const good = harness({ address: agent.address, services: ['secure'], ...ref }, { 'consul-acl/token': `${token}\n` });
    const [ep] = await good.snap();
    assert.equal(ep?.labels['__address__'], '10.5.0.1');
    assert.deepEqual((await good.provider.snapshot(AbortSignal.timeout(5000))).warnings, []);
    // A token that may read only some services gets a filtered answer, flagged as a warning.
    const narrow = await agent.createToken('service "other" { policy = "read" }\nnode_prefix "" { policy = "read" }');
    const partial = harness({ address: agent.address, ...ref }, { 'consul-acl/token': narrow }, false);
    const snap = await partial.provider.snapshot(AbortSignal.timeout(5000));
    assert.deepEqual(snap.endpoints, []);
    assert.match(snap.warnings.join(' '), /hid some services/);
    const bad = harness({ address: agent.address, services: ['secure'], ...ref }, { 'consul-acl/token': '00000000-0000-4000-8000-000000000000' }, false);
    await rejectsWith(bad.snap(), 'Unauthorized');
  });

  test('a missing Secret value is a BadConfig at create time', () => {
    assert.throws(
      () => harness({ address: agent.address, tokenSecretRef: { name: 'absent' } }, {}, false),
      (e: unknown) => isProviderError(e) && e.kind === 'BadConfig' && !/0000/.test(e.message),
    );
  });
});

describe('Consul provider across an agent outage', { timeout: 900_000 }, () => {
  let agent: ConsulAgent;
  before(async () => {
    agent = await ConsulAgent.start();
  });
  after(async () => {
    await Promise.allSettled(open.map((p) => p.close()));
    await agent?.stop();
  });

  test('stopped agent: Unreachable, never partial data; restarted on the same ports: converges', async (t) => {
    const reg = async (): Promise<void> => {
      await agent.registerService({ ID: 'api-1', Name: 'api', Tags: ['mesh'], Address: '10.6.0.1', Port: 80 });
      await agent.registerService({ ID: 'api-2', Name: 'api', Tags: ['mesh'], Address: '10.6.0.2', Port: 80 });
    };
    await reg();
    const h = harness({ address: agent.address, tags: ['mesh'] });
    assert.equal((await eventually(h.snap, (e) => e.length === 2)).length, 2);
    await h.settled();

    const seen = h.changes();
    await agent.stopProcess();
    t.diagnostic(`outage seen by watch after ${await h.changeAfter(seen)} ms`);
    await rejectsWith(h.snap(), 'Unreachable');

    const started = Date.now();
    await agent.restart();
    await reg();
    const eps = await eventually(h.snap, (e) => e.length === 2, 15_000);
    t.diagnostic(`converged ${Date.now() - started} ms after the restart began`);
    assert.deepEqual(eps.map((e) => e.labels['__address__']), ['10.6.0.1', '10.6.0.2']);
    // The watch itself recovers too (its backoff is capped at 10 s, and a query the agent
    // takes while it has no leader yet waits up to its 7 s RPC hold), and reports further changes.
    await eventually(async () => h.changes(), (n) => n > seen + 1, 30_000);
    const before = h.changes();
    await agent.deregisterService('api-2');
    await h.changeAfter(before, 12_000);
    assert.equal((await h.snap()).length, 1);
  });
});
