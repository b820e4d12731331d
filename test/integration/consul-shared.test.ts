/**
 * Consul connections shared across sources, liveness with a bound, and prompt adds,
 * against a real Consul dev agent and the real local control plane:
 * - ten sources of 200 services each on one agent: all Ready, every entry present, and
 *   the operator's open TCP connections to the agent (counted from outside, in
 *   /proc/net/tcp, throughout) never above the cap;
 * - an instance added without a check to one of 2,000 watched services becomes an entry;
 * - the agent frozen with SIGSTOP: ProviderReady=False, no entry lost, and after SIGCONT
 *   Ready again with no WorkloadEntry written.
 * The test's own calls to Consul come from 127.0.0.2, so only the operator's sockets
 * (from 127.0.0.1) are counted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { ConsulAgent } from '../../src/dev/consul-agent.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import { createConsulProviderFactory, type ConsulProviderFactory } from '../../src/providers/consul/index.ts';
import type { VmRegistrySource } from '../../src/api/types.ts';
import { applyYaml, condition, entriesByEndpoint, eventually, startLocalCluster, startOperator, type RunningOperator } from '../harness/operator-env.ts';

const CAP = 64;
const BOUND_MS = 15_000;
const GROUPS = 10;
const PER_GROUP = 200;
const TEST_SOURCE_IP = '127.0.0.2';

let cluster: LocalCluster;
let agent: ConsulAgent;
let op: RunningOperator;
let consul: ConsulProviderFactory;

/** A call to the agent's HTTP API from 127.0.0.2 (not counted as the operator's). */
function consulCall(method: 'PUT' | 'GET', path: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { host: '127.0.0.1', port: agent.ports.http, localAddress: TEST_SOURCE_IP, method, path, agent: false, timeout: 30_000, headers: payload ? { 'Content-Type': 'application/json' } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 0) >= 300) reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`));
          else resolve(text === '' ? undefined : (JSON.parse(text) as unknown));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

const serviceName = (g: number, i: number): string => `g${g}-s${String(i).padStart(3, '0')}`;
const nodeName = (g: number): string => `vm-g${g}`;
const endpointId = (g: number, i: number): string => `${nodeName(g)}/${serviceName(g, i)}-1`;

/** Registers a group's node and its services in transactions of 64 operations. */
async function registerGroup(g: number): Promise<void> {
  const ops: unknown[] = [{ Node: { Verb: 'set', Node: { Node: nodeName(g), Address: `10.${g}.255.1`, Meta: { group: String(g) } } } }];
  for (let i = 0; i < PER_GROUP; i++) {
    ops.push({
      Service: {
        Verb: 'set',
        Node: nodeName(g),
        Service: { ID: `${serviceName(g, i)}-1`, Service: serviceName(g, i), Tags: [`group-${g}`], Address: `10.${g}.${Math.floor(i / 250)}.${(i % 250) + 1}`, Port: 8080 },
      },
    });
  }
  for (let at = 0; at < ops.length; at += 64) await consulCall('PUT', '/v1/txn', ops.slice(at, at + 64));
}

/**
 * Open client sockets to the agent's HTTP port from 127.0.0.1, read from /proc/net/tcp.
 * TIME_WAIT, FIN_WAIT2 and CLOSE are closed on this side and not counted.
 */
function operatorSockets(port: number): number {
  const closedStates = new Set(['05', '06', '07']);
  const remote = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let n = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4) continue;
    const [, local, rem, state] = cols;
    if (rem === remote && local?.startsWith('0100007F:') && !closedStates.has(state ?? '')) n += 1;
  }
  return n;
}

/** Samples the socket count until stopped; keeps the maximum. */
function startSampler(port: number): { max: () => number; samples: () => number; stop: () => void } {
  let max = 0;
  let samples = 0;
  const timer = setInterval(() => {
    max = Math.max(max, operatorSockets(port));
    samples += 1;
  }, 25);
  return { max: () => max, samples: () => samples, stop: () => clearInterval(timer) };
}

async function allSources(): Promise<VmRegistrySource[]> {
  const out = JSON.parse(await cluster.kubectl(['get', 'vmrs', '-A', '-o', 'json'])) as { items: VmRegistrySource[] };
  return out.items.filter((s) => s.metadata.namespace.startsWith('shared-'));
}

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await op.metrics.registry.getSingleMetric(name)?.get();
  return (m?.values ?? []).filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)).reduce((a, v) => a + v.value, 0);
}

before(async () => {
  [cluster, agent] = await Promise.all([startLocalCluster(), ConsulAgent.start()]);
  for (let g = 0; g < GROUPS; g++) await registerGroup(g);
  consul = createConsulProviderFactory({ maxConnections: CAP, livenessBoundMs: BOUND_MS });
  op = await startOperator(cluster, [consul], { resyncPeriodMs: 60 * 60_000 });
});

after(async () => {
  try {
    if (agent?.running) agent.thaw();
  } catch {
    /* not frozen */
  }
  await op?.stop();
  await Promise.allSettled([cluster?.stop(), agent?.stop()]);
});

describe('Consul shared by many sources', { timeout: 1_200_000 }, () => {
  test(`ten sources of ${PER_GROUP} services on one agent: all Ready, every entry present, never more than ${CAP} connections`, async (t) => {
    const sampler = startSampler(agent.ports.http);
    try {
      const docs: string[] = [];
      for (let g = 0; g < GROUPS; g++) {
        docs.push(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `shared-${g}` } }));
        docs.push(
          JSON.stringify({
            apiVersion: 'vmregistry.io/v1alpha1',
            kind: 'VmRegistrySource',
            metadata: { name: 'fleet', namespace: `shared-${g}` },
            // Half select by tag (one shared feed), half by node meta (a feed each): six feeds in all.
            spec: { interval: '30s', consul: { address: agent.address, ...(g < GROUPS / 2 ? { tags: [`group-${g}`] } : { nodeMeta: { group: String(g) } }) } },
          }),
        );
      }
      const started = Date.now();
      await applyYaml(cluster, docs.join('\n---\n'));
      await eventually(
        'all ten sources Ready with 200 managed entries',
        async () => {
          const sources = await allSources();
          return sources.length === GROUPS && sources.every((s) => condition(s, 'Ready')?.status === 'True' && s.status?.managedEntries === PER_GROUP);
        },
        600_000,
      );
      t.diagnostic(`2,000 entries in 10 sources Ready after ${Date.now() - started} ms`);
      for (let g = 0; g < GROUPS; g++) {
        const got = await entriesByEndpoint(cluster, `shared-${g}`);
        const want = Array.from({ length: PER_GROUP }, (_, i) => endpointId(g, i)).sort();
        assert.deepEqual([...got.keys()].sort(), want, `every entry of group ${g}`);
      }
      assert.equal(consul.hub.feedCount, 1 + GROUPS / 2, 'sources with the same read scope share one feed');
      assert.equal(consul.hub.poolCount, 1, 'one pool for the agent');
      t.diagnostic(`open connections to the agent: at most ${sampler.max()} over ${sampler.samples()} samples (cap ${CAP})`);
      process.stdout.write(`# consul connections under load: max ${sampler.max()} of cap ${CAP} (${sampler.samples()} samples)\n`);
      assert.ok(sampler.samples() > 10, 'the sampler ran throughout');
      assert.ok(sampler.max() > 0, 'the sampler sees the operator');
      assert.ok(sampler.max() <= CAP, `at most ${CAP} open connections, saw ${sampler.max()}`);
    } finally {
      sampler.stop();
    }
  });

  test('an instance registered without a check in one of 2,000 watched services becomes an entry', async (t) => {
    const g = 3;
    const i = 150;
    const id = `${serviceName(g, i)}-2`;
    const started = Date.now();
    await consulCall('PUT', '/v1/catalog/register', {
      Node: nodeName(g),
      Address: `10.${g}.255.1`,
      SkipNodeUpdate: true,
      Service: { ID: id, Service: serviceName(g, i), Tags: [`group-${g}`], Address: '10.99.0.1', Port: 8080 },
    });
    const entry = await eventually(
      'the new instance as an entry',
      async () => (await entriesByEndpoint(cluster, `shared-${g}`)).get(`${nodeName(g)}/${id}`),
      60_000,
    );
    const ms = Date.now() - started;
    t.diagnostic(`check-less add among 2,000 services → entry after ${ms} ms (kubectl polling)`);
    process.stdout.write(`# consul add without a check, 2,000 services watched: entry after ${ms} ms (kubectl polling)\n`);
    assert.equal(entry.spec.address, '10.99.0.1');
  });

  test(`agent frozen with SIGSTOP: ProviderReady=False (bound ${BOUND_MS / 1000} s), no entry lost; after SIGCONT Ready with no WorkloadEntry written`, async (t) => {
    const sampler = startSampler(agent.ports.http);
    try {
      await eventually('all sources Ready', async () => (await allSources()).every((s) => condition(s, 'Ready')?.status === 'True'), 120_000);
      const before = new Map<number, string[]>();
      for (let g = 0; g < GROUPS; g++) before.set(g, [...(await entriesByEndpoint(cluster, `shared-${g}`)).keys()].sort());
      const writesBefore = await metric('vmregistry_workload_entry_writes_total');
      const frozenAt = Date.now();
      agent.freeze();
      const down = await eventually(
        'every source ProviderReady=False',
        async () => {
          const sources = await allSources();
          return sources.every((s) => condition(s, 'ProviderReady')?.status === 'False') ? sources : undefined;
        },
        BOUND_MS * 3,
      );
      const seenAfter = Date.now() - frozenAt;
      const transitions = down.map((s) => Date.parse(s.status?.conditions?.find((c) => c.type === 'ProviderReady')?.lastTransitionTime ?? '') - frozenAt);
      t.diagnostic(`ProviderReady=False seen ${seenAfter} ms after SIGSTOP; transition times ${Math.min(...transitions)}..${Math.max(...transitions)} ms`);
      process.stdout.write(`# consul liveness: ProviderReady=False ${Math.max(...transitions)} ms after SIGSTOP (bound ${BOUND_MS} ms; kubectl saw it after ${seenAfter} ms)\n`);
      for (const s of down) assert.match(condition(s, 'ProviderReady')?.reason ?? '', /^Consul(Timeout|Unreachable)$/);
      // Reported by the liveness watch (a read in flight at the freeze may have timed out first), not by a blocking query running out.
      await eventually('every source reporting the liveness bound', async () =>
        (await allSources()).every((s) => /liveness bound 15 s/.test(condition(s, 'ProviderReady')?.message ?? '')),
      );
      // Entries are kept while the registry is away: checked after every source was reconciled again.
      const reconciles = await metric('controller_runtime_reconcile_total');
      await eventually('more reconciles during the outage', async () => (await metric('controller_runtime_reconcile_total')) >= reconciles + GROUPS, 60_000);
      for (let g = 0; g < GROUPS; g++) assert.deepEqual([...(await entriesByEndpoint(cluster, `shared-${g}`)).keys()].sort(), before.get(g), `no entry of group ${g} lost`);

      const thawedAt = Date.now();
      agent.thaw();
      await eventually('every source Ready again', async () => (await allSources()).every((s) => condition(s, 'Ready')?.status === 'True'), 120_000);
      t.diagnostic(`Ready again ${Date.now() - thawedAt} ms after SIGCONT`);
      for (let g = 0; g < GROUPS; g++) assert.deepEqual([...(await entriesByEndpoint(cluster, `shared-${g}`)).keys()].sort(), before.get(g));
      assert.equal((await metric('vmregistry_workload_entry_writes_total')) - writesBefore, 0, 'no WorkloadEntry written through the outage and the recovery');
      assert.equal(await metric('rest_client_requests_total', { method: 'DELETE' }), 0, 'nothing deleted');
      t.diagnostic(`open connections during the outage: at most ${sampler.max()} (cap ${CAP})`);
      assert.ok(sampler.max() <= CAP);
    } finally {
      sampler.stop();
    }
  });
});
