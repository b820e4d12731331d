/**
 * `make bench`: the operator against a real local control plane and a real Consul agent,
 * everything measured in one run and printed as numbers and ratios (never asserted).
 *
 *   1. initial convergence of N services × M instances, against the raw apiserver limit
 *      (the same WorkloadEntries written by a minimal client at the applier's concurrency);
 *   2. health-flip propagation latency (Consul TTL check → entry gone / back);
 *   3. writes per minute in a steady state (must be 0);
 *   4. memory of this process and the mapping cost per endpoint.
 *
 * Sizes: BENCH_SERVICES (1000), BENCH_INSTANCES (5), BENCH_FLIPS (200), BENCH_STEADY_SECONDS (60),
 * BENCH_FLIP_GAP_MS (250, the pause between two flips sent), BENCH_CLIENT=default to keep the
 * operator's default client-side rate limit (50 qps, burst 100) instead of an unlimited one.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { GROUP, PLURAL, VERSION, type VmRegistrySource } from '../src/api/types.ts';
import { validateSpec } from '../src/api/validate.ts';
import { Operator } from '../src/controller/operator.ts';
import { mapLimit } from '../src/controller/rate-limit.ts';
import { startLocalCluster, type LocalCluster } from '../src/dev/cluster.ts';
import { ConsulAgent } from '../src/dev/consul-agent.ts';
import { ControllerMetrics } from '../src/metrics/controller-metrics.ts';
import { createLogger } from '../src/metrics/logger.ts';
import { ProviderMetrics } from '../src/metrics/provider-metrics.ts';
import { consulProviderFactory } from '../src/providers/consul/index.ts';
import { builtinProviders } from '../src/providers/index.ts';
import { toAppliedObject } from '../src/reconcile/apply.ts';
import { buildDesiredState } from '../src/reconcile/desired.ts';
import { FIELD_MANAGER, MANAGED_BY_LABEL, SOURCE_LABEL } from '../src/reconcile/ownership.ts';
import { WE_GROUP, WE_PLURAL, WE_VERSION, type DesiredEntry, type WorkloadEntry } from '../src/reconcile/types.ts';
import { MESH_TAG, planFleet, registerFleet, waitForCatalog, type Instance } from './consul-load.ts';
import { EntryWatch } from './entry-watch.ts';
import { median, mib, percentile, round, table, type Row } from './report.ts';

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, not "${raw}"`);
  return n;
}

const SERVICES = envInt('BENCH_SERVICES', 1000);
const INSTANCES = envInt('BENCH_INSTANCES', 5);
const FLIPS = envInt('BENCH_FLIPS', 200);
const STEADY_S = envInt('BENCH_STEADY_SECONDS', 60);
const FLIP_GAP_MS = envInt('BENCH_FLIP_GAP_MS', 250);
const DEFAULT_CLIENT = process.env['BENCH_CLIENT'] === 'default';
/** The applier's create/update concurrency (applyPlan's default). */
const APPLY_CONCURRENCY = 8;
const FLIP_POOL = 100;
const TOTAL = SERVICES * INSTANCES;

const NS_OPERATOR = 'bench-operator';
const NS_RAW_APPLY = 'bench-raw-apply';
const NS_RAW_GET_APPLY = 'bench-raw-get-apply';
const SOURCE_NAME = 'consul-fleet';

// A full collection before each memory reading, without asking for a command-line flag.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

const say = (s = ''): void => void process.stdout.write(s + '\n');
const step = (s: string): void => say(`\n==> ${s}`);
const since = (t0: number): number => performance.now() - t0;

function sourceSpec(consulAddress: string): Record<string, unknown> {
  return { consul: { address: consulAddress, tags: [MESH_TAG] }, workloadEntry: { serviceAccount: 'legacy-vms' } };
}

async function createNamespace(kc: KubeConfig, name: string): Promise<void> {
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
}

/** Requests the operator sent to the apiserver, by method. */
async function requestsByMethod(metrics: ControllerMetrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics.restRequests.get()).values) {
    const m = String(v.labels['method']);
    out[m] = (out[m] ?? 0) + v.value;
  }
  return out;
}

function diff(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) out[k] = (b[k] ?? 0) - (a[k] ?? 0);
  return out;
}

/** Consul requests the operator made, by operation. */
async function consulRequests(registry: Registry): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const metric = registry.getSingleMetric('vmregistry_provider_requests_total');
  for (const v of metric ? (await metric.get()).values : []) {
    const k = String(v.labels['operation']);
    out[k] = (out[k] ?? 0) + v.value;
  }
  return out;
}

async function counterSum(metrics: ControllerMetrics, name: 'reconcileTotal' | 'entryWrites'): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics[name].get()).values) {
    const labels = v.labels as Record<string, string | number | undefined>;
    const k = String(labels['result'] ?? labels['operation']);
    out[k] = (out[k] ?? 0) + v.value;
  }
  return out;
}

/** The same objects the applier would write, made plain: other namespace, no owner, not managed. */
function rawObjects(desired: readonly DesiredEntry[], namespace: string): WorkloadEntry[] {
  const fake = { metadata: { name: SOURCE_NAME, namespace, uid: '00000000-0000-0000-0000-000000000000' } } as VmRegistrySource;
  return desired.map((d) => {
    const o = toAppliedObject(d, fake);
    const labels = { ...o.metadata.labels };
    delete labels[MANAGED_BY_LABEL];
    delete labels[SOURCE_LABEL];
    const { ownerReferences: _owners, ...metadata } = o.metadata;
    return { ...o, metadata: { ...metadata, labels } };
  });
}

const SSA = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

/** Writes the objects with server-side apply at the applier's concurrency; optionally a GET before each (as the applier does for creates). */
async function rawApply(kc: KubeConfig, objects: readonly WorkloadEntry[], getFirst: boolean): Promise<number> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const t0 = performance.now();
  const results = await mapLimit(objects, APPLY_CONCURRENCY, async (o) => {
    const { namespace, name } = o.metadata;
    const ref = { group: WE_GROUP, version: WE_VERSION, namespace, plural: WE_PLURAL, name };
    if (getFirst) {
      try {
        await api.getNamespacedCustomObject(ref);
      } catch (e) {
        if ((e as { code?: number }).code !== 404) throw e;
      }
    }
    await api.patchNamespacedCustomObject({ ...ref, body: o, fieldManager: FIELD_MANAGER, force: true }, SSA);
  });
  const failed = results.filter((r) => r.status === 'rejected');
  if (failed.length > 0) throw new Error(`raw apply: ${failed.length} writes failed; first: ${String((failed[0] as PromiseRejectedResult).reason)}`);
  return performance.now() - t0;
}

async function sourceReady(kc: KubeConfig): Promise<{ ready: boolean; desired: number; managed: number }> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const s = (await api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS_OPERATOR, plural: PLURAL, name: SOURCE_NAME })) as VmRegistrySource;
  const ready = s.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  return { ready, desired: s.status?.desiredEntries ?? 0, managed: s.status?.managedEntries ?? 0 };
}

interface FlipResult {
  readonly to: 'critical' | 'passing';
  readonly ms: number | undefined;
}

/**
 * Flips the TTL checks of the pool: a round sends `critical` to each target (one every
 * FLIP_GAP_MS) and waits until every entry is gone, then `passing` and waits until every
 * entry is back. Each flip is timed on its own, from just before the Consul call to the
 * watch event that shows the change.
 */
async function runFlips(agent: ConsulAgent, watch: EntryWatch, pool: readonly Instance[], total: number): Promise<FlipResult[]> {
  const results: FlipResult[] = [];
  while (results.length < total) {
    const batch = pool.slice(0, Math.max(1, Math.min(pool.length, Math.floor((total - results.length) / 2))));
    for (const to of ['critical', 'passing'] as const) {
      const waits: Promise<FlipResult>[] = [];
      for (const inst of batch) {
        const t0 = performance.now();
        await agent.setTtl(inst.ttlCheck as string, to === 'critical' ? 'fail' : 'pass', `bench flip to ${to}`);
        const check = to === 'critical' ? () => !watch.has(inst.address) : () => watch.has(inst.address);
        waits.push(
          watch.until(`${inst.id} ${to}`, check, 300_000).then(
            (at) => ({ to, ms: at - t0 }),
            () => ({ to, ms: undefined }),
          ),
        );
        if (FLIP_GAP_MS > 0) await sleep(FLIP_GAP_MS);
      }
      results.push(...(await Promise.all(waits)));
      say(`  ${results.length} flips done`);
    }
  }
  return results;
}

async function main(): Promise<number> {
  const rssStart = process.memoryUsage().rss;
  const started = performance.now();
  say(`vm-registry-operator benchmark: ${SERVICES} services × ${INSTANCES} instances = ${TOTAL} endpoints; ${FLIPS} flips; ${STEADY_S} s steady state`);
  say(`client-side limit of the operator: ${DEFAULT_CLIENT ? 'default (50 qps, burst 100)' : 'lifted (qps and burst 1e6)'}`);

  step('Starting the local control plane and a Consul agent');
  let t = performance.now();
  const cluster: LocalCluster = await startLocalCluster({ log: () => {} });
  let agent: ConsulAgent | undefined;
  let operator: Operator | undefined;
  let watch: EntryWatch | undefined;
  try {
    agent = await ConsulAgent.start({ log: () => {} });
    say(`  ready in ${round(since(t) / 1000)} s (etcd, kube-apiserver, kube-controller-manager and consul run in their own processes)`);
    const kc = cluster.kc;

    step(`Registering ${TOTAL} instances in Consul`);
    const fleet = planFleet(SERVICES, INSTANCES, Math.min(FLIP_POOL, SERVICES));
    const registerMs = await registerFleet(agent, fleet);
    t = performance.now();
    await waitForCatalog(agent, fleet);
    say(`  registered in ${round(registerMs / 1000, 2)} s (catalog transactions + ${fleet.flipPool.length} agent services with TTL checks); visible after ${round(since(t) / 1000, 2)} s more`);

    step('Mapping cost: buildDesiredState over a full snapshot');
    const spec = validateSpec(sourceSpec(agent.address));
    const provider = consulProviderFactory.create({
      source: `${NS_OPERATOR}/${SOURCE_NAME}`,
      spec,
      secrets: new Map(),
      metrics: new ProviderMetrics(new Registry()),
      log: createLogger('error'),
    });
    t = performance.now();
    const snapshot = await provider.snapshot(AbortSignal.timeout(120_000));
    const snapshotMs = since(t);
    await provider.close();
    const rules = consulProviderFactory.defaultMapping(spec);
    const build = () => buildDesiredState({ sourceName: SOURCE_NAME, spec, endpoints: snapshot.endpoints, providerRules: rules });
    const desired = build();
    // Warm the JIT first: a reconcile of a long-running operator runs warm code.
    for (let i = 0; i < 3; i++) build();
    const mapTimes: number[] = [];
    for (let i = 0; i < 9; i++) {
      t = performance.now();
      build();
      mapTimes.push(since(t));
    }
    const mapMs = median(mapTimes);
    say(`  snapshot of ${snapshot.endpoints.length} endpoints read in ${round(snapshotMs)} ms; mapping ${round(mapMs)} ms (median of 9, warm) = ${round((mapMs * 1000) / Math.max(1, snapshot.endpoints.length), 2)} µs per endpoint; ${desired.entries.length} entries, ${desired.skipped.length} skipped`);
    if (desired.entries.length !== TOTAL) throw new Error(`expected ${TOTAL} desired entries, got ${desired.entries.length}`);

    step(`Raw apiserver limit: ${TOTAL} WorkloadEntries by a minimal client, ${APPLY_CONCURRENCY} at a time`);
    await createNamespace(kc, NS_RAW_APPLY);
    await createNamespace(kc, NS_RAW_GET_APPLY);
    const rawApplyMs = await rawApply(kc, rawObjects(desired.entries, NS_RAW_APPLY), false);
    say(`  server-side apply:            ${round(rawApplyMs / 1000, 2)} s (${round(TOTAL / (rawApplyMs / 1000))} entries/s)`);
    const rawGetApplyMs = await rawApply(kc, rawObjects(desired.entries, NS_RAW_GET_APPLY), true);
    say(`  GET, then server-side apply:  ${round(rawGetApplyMs / 1000, 2)} s (${round(TOTAL / (rawGetApplyMs / 1000))} entries/s)`);

    step('Initial convergence of the operator');
    await createNamespace(kc, NS_OPERATOR);
    watch = new EntryWatch(kc, NS_OPERATOR);
    await watch.start();
    collect();
    const rssBefore = process.memoryUsage().rss;
    const heapBefore = process.memoryUsage().heapUsed;
    const registry = new Registry();
    const metrics = new ControllerMetrics(registry, { defaultMetrics: false });
    operator = new Operator({
      kc,
      factories: builtinProviders(),
      metrics,
      log: createLogger('error'),
      ...(DEFAULT_CLIENT ? {} : { client: { qps: 1e6, burst: 1e6 } }),
    });
    await operator.start();
    const reqBefore = await requestsByMethod(metrics);
    const source = { apiVersion: `${GROUP}/${VERSION}`, kind: 'VmRegistrySource', metadata: { name: SOURCE_NAME, namespace: NS_OPERATOR }, spec: sourceSpec(agent.address) };
    const t0 = performance.now();
    await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS_OPERATOR, plural: PLURAL, body: source });
    const w = watch;
    const progress = setInterval(() => say(`  ${w.size}/${TOTAL} entries after ${round(since(t0) / 1000)} s`), 10_000);
    const allSeenAt = await watch.until(`${TOTAL} entries`, () => w.size >= TOTAL, 900_000);
    clearInterval(progress);
    let readyAt = 0;
    for (;;) {
      const r = await sourceReady(kc).catch(() => ({ ready: false, desired: 0, managed: 0 }));
      if (r.ready && r.desired === TOTAL && r.managed === TOTAL) {
        readyAt = performance.now();
        break;
      }
      if (since(t0) > 900_000) throw new Error('the source did not become Ready');
      await sleep(50);
    }
    const convergeMs = Math.max(allSeenAt, readyAt) - t0;
    const entriesMs = allSeenAt - t0;
    const convergeRequests = diff(reqBefore, await requestsByMethod(metrics));
    const convergeReconciles = await counterSum(metrics, 'reconcileTotal');
    const ratio = convergeMs / rawApplyMs;
    say(`  all ${TOTAL} entries after ${round(entriesMs / 1000, 2)} s; source Ready after ${round(convergeMs / 1000, 2)} s; operator/raw = ${round(ratio, 2)}`);
    say(`  requests by method: ${JSON.stringify(convergeRequests)}; reconciles: ${JSON.stringify(convergeReconciles)}`);

    step(`Health flips: ${FLIPS} TTL check changes over ${fleet.flipPool.length} instances in ${fleet.flipPool.length} services, one sent every ${FLIP_GAP_MS} ms`);
    const flipStart = performance.now();
    const flips = await runFlips(agent, watch, fleet.flipPool, FLIPS);
    const flipWallMs = since(flipStart);
    const ok = flips.flatMap((f) => (f.ms === undefined ? [] : [f.ms]));
    const down = flips.flatMap((f) => (f.to === 'critical' && f.ms !== undefined ? [f.ms] : []));
    const up = flips.flatMap((f) => (f.to === 'passing' && f.ms !== undefined ? [f.ms] : []));
    const lost = flips.length - ok.length;
    say(`  p50 ${round(percentile(ok, 50))} ms, p99 ${round(percentile(ok, 99))} ms, max ${round(percentile(ok, 100))} ms; ${lost} not seen within 300 s`);

    step(`Steady state: ${STEADY_S} s with nothing changing`);
    await watch.until(`${TOTAL} entries back`, () => w.size >= TOTAL, 120_000);
    await sleep(3000);
    const steadyReqBefore = await requestsByMethod(metrics);
    const consulBefore = await consulRequests(registry);
    const writesBefore = await metrics.writeCount();
    const cpuBefore = process.cpuUsage();
    await sleep(STEADY_S * 1000);
    const cpu = process.cpuUsage(cpuBefore);
    const steadyWrites = (await metrics.writeCount()) - writesBefore;
    const steadyConsul = diff(consulBefore, await consulRequests(registry));
    const steadyCpuPct = STEADY_S > 0 ? (100 * (cpu.user + cpu.system)) / 1000 / (STEADY_S * 1000) : Number.NaN;
    const consulPerSecond = STEADY_S > 0 ? Object.values(steadyConsul).reduce((a, b) => a + b, 0) / STEADY_S : Number.NaN;
    const steadyRequests = diff(steadyReqBefore, await requestsByMethod(metrics));
    const writesPerMinute = STEADY_S > 0 ? (steadyWrites * 60) / STEADY_S : Number.NaN;
    say(`  ${steadyWrites} writes in ${STEADY_S} s = ${round(writesPerMinute, 2)} per minute; all apiserver requests: ${JSON.stringify(steadyRequests)}`);
    say(`  Consul requests: ${JSON.stringify(steadyConsul)} (${round(consulPerSecond)}/s); CPU of this process ${round(steadyCpuPct)}% of one core`);

    collect();
    const rssAfter = process.memoryUsage().rss;
    const heapAfter = process.memoryUsage().heapUsed;
    const entryWrites = await counterSum(metrics, 'entryWrites');

    await operator.stop();
    operator = undefined;

    const perEntry = (n: number | undefined): string => String(round((n ?? 0) / TOTAL, 2));
    const rows: Row[] = [
      ['size', `${SERVICES} × ${INSTANCES} = ${TOTAL}`, 'services × instances = endpoints'],
      ['operator client limit', DEFAULT_CLIENT ? '50 qps / 100' : 'lifted'],
      ['1. raw SSA, 8 at a time (s)', round(rawApplyMs / 1000, 2), `${round(TOTAL / (rawApplyMs / 1000))} entries/s`],
      ['1. raw GET+SSA, 8 at a time (s)', round(rawGetApplyMs / 1000, 2), `${round(TOTAL / (rawGetApplyMs / 1000))} entries/s`],
      ['1. operator: all entries (s)', round(entriesMs / 1000, 2)],
      ['1. operator: entries + Ready (s)', round(convergeMs / 1000, 2), `${round(TOTAL / (convergeMs / 1000))} entries/s`],
      ['1. ratio operator / raw SSA', round(ratio, 2)],
      ['1. ratio operator / raw GET+SSA', round(convergeMs / rawGetApplyMs, 2)],
      ['1. operator requests per entry', `GET ${perEntry(convergeRequests['GET'])} PATCH ${perEntry(convergeRequests['PATCH'])}`, JSON.stringify(convergeRequests)],
      ['2. flip latency p50 (ms)', round(percentile(ok, 50))],
      ['2. flip latency p99 (ms)', round(percentile(ok, 99))],
      ['2. flip latency max (ms)', round(percentile(ok, 100))],
      ['2. to critical p50 / p99 (ms)', `${round(percentile(down, 50))} / ${round(percentile(down, 99))}`],
      ['2. to passing p50 / p99 (ms)', `${round(percentile(up, 50))} / ${round(percentile(up, 99))}`],
      ['2. flips timed / not seen', `${ok.length} / ${lost}`, `wall ${round(flipWallMs / 1000)} s`],
      ['3. steady writes per minute', round(writesPerMinute, 2), `${steadyWrites} writes in ${STEADY_S} s`],
      ['3. steady Consul requests per s', round(consulPerSecond), JSON.stringify(steadyConsul)],
      ['3. steady CPU, this process (%)', round(steadyCpuPct), 'of one core'],
      ['4. RSS before operator (MiB)', mib(rssBefore), `process start ${mib(rssStart)} MiB`],
      ['4. RSS after steady state (MiB)', mib(rssAfter), `heap used ${mib(heapBefore)} → ${mib(heapAfter)} MiB`],
      ['4. mapping, whole snapshot (ms)', round(mapMs, 1), `median of 9 (warm) over ${snapshot.endpoints.length} endpoints`],
      ['4. mapping per endpoint (µs)', round((mapMs * 1000) / Math.max(1, snapshot.endpoints.length), 2)],
    ];
    const result = {
      size: { services: SERVICES, instances: INSTANCES, endpoints: TOTAL },
      operatorClient: DEFAULT_CLIENT ? { qps: 50, burst: 100 } : { qps: 1e6, burst: 1e6 },
      setup: { consulRegisterMs: round(registerMs), snapshotReadMs: round(snapshotMs) },
      convergence: {
        rawApplyMs: round(rawApplyMs),
        rawGetApplyMs: round(rawGetApplyMs),
        operatorEntriesMs: round(entriesMs),
        operatorReadyMs: round(convergeMs),
        ratioOperatorToRawApply: round(ratio, 3),
        ratioOperatorToRawGetApply: round(convergeMs / rawGetApplyMs, 3),
        operatorRequests: convergeRequests,
        reconciles: convergeReconciles,
      },
      flips: {
        count: flips.length,
        timed: ok.length,
        notSeen: lost,
        gapMs: FLIP_GAP_MS,
        p50Ms: round(percentile(ok, 50)),
        p99Ms: round(percentile(ok, 99)),
        maxMs: round(percentile(ok, 100)),
        toCritical: { p50Ms: round(percentile(down, 50)), p99Ms: round(percentile(down, 99)) },
        toPassing: { p50Ms: round(percentile(up, 50)), p99Ms: round(percentile(up, 99)) },
        wallMs: round(flipWallMs),
      },
      steadyState: { seconds: STEADY_S, writes: steadyWrites, writesPerMinute, requests: steadyRequests, consulRequests: steadyConsul, consulPerSecond: round(consulPerSecond), cpuPercentOfOneCore: round(steadyCpuPct) },
      memory: {
        note: 'RSS of the benchmark process, which hosts the operator, the benchmark watch and the raw client; etcd, kube-apiserver, kube-controller-manager and consul run in other processes',
        rssStartMiB: mib(rssStart),
        rssBeforeOperatorMiB: mib(rssBefore),
        rssAfterMiB: mib(rssAfter),
        heapUsedBeforeOperatorMiB: mib(heapBefore),
        heapUsedAfterMiB: mib(heapAfter),
      },
      mapping: { endpoints: snapshot.endpoints.length, medianMs: round(mapMs, 2), perEndpointUs: round((mapMs * 1000) / Math.max(1, snapshot.endpoints.length), 3) },
      entryWrites,
      totalSeconds: 0,
    };
    result.totalSeconds = round(since(started) / 1000);
    const dir = await mkdtemp(join(tmpdir(), 'vmreg-bench-'));
    const file = join(dir, 'bench.json');
    await writeFile(file, JSON.stringify(result, null, 2) + '\n');

    step(`Results (total ${result.totalSeconds} s)`);
    say(table(rows));
    say(`\nJSON: ${file}`);
    return 0;
  } finally {
    watch?.stop();
    await operator?.stop();
    await agent?.stop();
    await cluster.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
