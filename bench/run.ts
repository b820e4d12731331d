/**
 * `make bench`: the operator, in a process of its own with its heap capped, against a real
 * local control plane and a real Consul agent. One run prints one table; nothing is
 * asserted. Phases (each a function; add more the same way):
 *   1. a minimal client's server-side apply of the same WorkloadEntries at the applier's
 *      concurrency (the apiserver's own limit, the yardstick of convergence): the same
 *      requests (one apply per entry, plus a status apply per entry in Consul's status
 *      mode), the same objects (owner reference included), 8 at a time, over one HTTP/2
 *      connection (bench/minimal-apply.ts), no client-side limit;
 *   2. one source of SERVICES × INSTANCES endpoints (plus a small source of at most 64
 *      services): initial convergence, memory, CPU;
 *   3. registry changes of each kind (flip, add without checks, remove, re-address) in
 *      the large and the small source, timed to the WorkloadEntry change;
 *   4. churn for BENCH_CHURN_SECONDS, then memory again;
 *   5. steady state, once the sweeps the churn left have ended: writes and CPU;
 *   6. restart with every entry present: writes and time to Ready;
 *   7. the same fleet split over 10 sources on the same agent, at the default client
 *      limit (what an install gets; phase 2 lifts it): convergence, memory, CPU.
 * Before phase 2, phase 1b runs istiod (pilot-discovery) and times a health flip to its
 * endpoint change through a generated ServiceEntry (BENCH_ISTIOD_FLIPS, 20).
 *
 * Environment: BENCH_SERVICES (4000), BENCH_INSTANCES (5), BENCH_SMALL_SERVICES (40),
 * BENCH_CHANGES per kind and size (20), BENCH_CHANGE_GAP_MS (200), BENCH_CHURN_SECONDS (60;
 * the memory goal is stated after 600), BENCH_CHURN_RATE per second (4), BENCH_STEADY_SECONDS (30),
 * BENCH_HEAP_MB (160, the operator's --max-old-space-size), BENCH_QPS/BENCH_BURST (the
 * lifted limit of phase 2, 1000/2000), BENCH_TEN_LIMIT=lifted to run phase 7 at the lifted
 * limit instead of the default one (50/100, what an install gets), BENCH_SKIP_TEN=1 to skip phase 7,
 * BENCH_SKIP_ISTIOD=1 to skip phase 1b, BENCH_CONSUL_HTTP=1 to point the sources at the agent's
 * plain HTTP port (HTTP/1.1: service watches only for small sources) instead of its HTTPS
 * port (HTTP/2: every service watched), BENCH_OPERATOR_NODE_OPTIONS (more Node options for the
 * operator's process, for profiling: e.g. --trace-gc or --cpu-prof, which NODE_OPTIONS refuses or
 * would also apply to the benchmark), BENCH_SKIP_BUILD=1 to run an existing dist/ instead of compiling it first.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { GROUP, PLURAL, VERSION, type VmRegistrySource } from '../src/api/types.ts';
import { BUILTIN_API } from '../src/providers/builtin.ts';
import { DEFAULT_KUBE_API_BURST, DEFAULT_KUBE_API_QPS } from '../src/runtime/kube-client.ts';
import { mapLimit } from '../src/runtime/concurrency.ts';
import { startLocalCluster, type LocalCluster } from '../src/dev/cluster.ts';
import { ConsulAgent } from '../src/dev/consul-agent.ts';
import { createLogger } from '../src/metrics/logger.ts';
import { ProviderMetrics } from '../src/metrics/provider-metrics.ts';
import { consulProviderFactory } from '../src/providers/consul/index.ts';
import { toAppliedObject } from '../src/apply/apply.ts';
import { buildDesiredState } from '../src/mapping/desired.ts';
import { FIELD_MANAGER } from '../src/api/ownership.ts';
import { type DesiredEntry } from '../src/mapping/types.ts';
import { WE_GROUP, WE_PLURAL, WE_VERSION } from '../src/api/istio.ts';
import { MinimalApplyClient, type ApplyRequest } from './minimal-apply.ts';
import { ChangeDriver, CHANGE_KINDS, type Timed } from './changes.ts';
import { MESH_TAG, planFleet, registerFleet, SHARDS, shardTag, waitForCatalog, type Fleet } from './consul-load.ts';
import { EntryWatch } from './entry-watch.ts';
import { istiodRows, measureIstiodFlips } from './istiod-latency.ts';
import { Istiod } from '../src/dev/istiod.ts';
import { OperatorProcess, type MemoryReading } from './operator-process.ts';
import { mib, percentile, round, table, type Row } from './report.ts';

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, not "${raw}"`);
  return n;
}

const SERVICES = envInt('BENCH_SERVICES', 4000);
const INSTANCES = envInt('BENCH_INSTANCES', 5);
const SMALL_SERVICES = Math.min(64, envInt('BENCH_SMALL_SERVICES', 40));
const CHANGES = envInt('BENCH_CHANGES', 20);
const CHANGE_GAP_MS = envInt('BENCH_CHANGE_GAP_MS', 200);
const CHURN_S = envInt('BENCH_CHURN_SECONDS', 60);
const CHURN_RATE = Math.max(1, envInt('BENCH_CHURN_RATE', 4));
const STEADY_S = envInt('BENCH_STEADY_SECONDS', 30);
const HEAP_MB = envInt('BENCH_HEAP_MB', 160);
const LIFTED = { qps: envInt('BENCH_QPS', 1000), burst: envInt('BENCH_BURST', 2000) };
const DEFAULT_LIMIT = { qps: DEFAULT_KUBE_API_QPS, burst: DEFAULT_KUBE_API_BURST };
// Phase 7 shows what a default install gets; phase 2 what the lifted limit gets.
const TEN_LIMIT = process.env['BENCH_TEN_LIMIT'] === 'lifted' ? LIFTED : DEFAULT_LIMIT;
const SKIP_TEN = process.env['BENCH_SKIP_TEN'] === '1';
const APPLY_CONCURRENCY = 8;
const TOTAL = SERVICES * INSTANCES;
const SMALL_TOTAL = SMALL_SERVICES * INSTANCES;
const CHANGE_TIMEOUT_MS = 120_000;

const NS = { raw: 'bench-raw-apply', one: 'bench-one', small: 'bench-small', ten: 'bench-ten', mesh: 'bench-istiod' } as const;
const ISTIOD_FLIPS = envInt('BENCH_ISTIOD_FLIPS', 20);
const SKIP_ISTIOD = process.env['BENCH_SKIP_ISTIOD'] === '1';
/** The sources read the agent over HTTPS (HTTP/2), as a production agent with TLS serves them, unless told otherwise. */
const CONSUL_HTTPS = process.env['BENCH_CONSUL_HTTP'] !== '1';
const CA_SECRET = { name: 'consul-ca', key: 'ca.crt' };
const OPERATOR_NODE_OPTIONS = (process.env['BENCH_OPERATOR_NODE_OPTIONS'] ?? '').split(' ').filter(Boolean);
const SMALL_TAG = 'small';

const say = (s = ''): void => void process.stdout.write(s + '\n');
const step = (s: string): void => say(`\n==> ${s}`);
const since = (t0: number): number => performance.now() - t0;
const rows: Row[] = [];
const row = (k: string, v: string | number, note?: string): void => void rows.push(note === undefined ? [k, v] : [k, v, note]);
const limitText = (l: { qps: number; burst: number }): string => `qps ${l.qps}, burst ${l.burst}`;

interface Env {
  readonly cluster: LocalCluster;
  readonly kc: KubeConfig;
  readonly agent: ConsulAgent;
  readonly big: Fleet;
  readonly small: Fleet;
  readonly main: string;
  readonly workDir: string;
}

async function createNamespace(kc: KubeConfig, name: string): Promise<void> {
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
}

/** The agent's address for sources, and over HTTPS the Secret with its CA (made in the namespace once). */
async function consulSpec(env: Env, namespace: string): Promise<{ address: string; tls?: { caSecretRef: typeof CA_SECRET } }> {
  if (!CONSUL_HTTPS) return { address: env.agent.address };
  try {
    await env.kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace, body: { metadata: { name: CA_SECRET.name }, stringData: { [CA_SECRET.key]: env.agent.caPem ?? '' } } });
  } catch (e) {
    if ((e as { code?: number }).code !== 409) throw e;
  }
  return { address: env.agent.httpsAddress, tls: { caSecretRef: CA_SECRET } };
}

async function createSource(env: Env, namespace: string, name: string, tags: readonly string[], extra: { suspend?: boolean } = {}): Promise<void> {
  const body = {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'VmRegistrySource',
    metadata: { name, namespace },
    spec: { consul: { ...(await consulSpec(env, namespace)), tags: [...tags] }, workloadEntry: { serviceAccount: 'legacy-vms' }, deletionGuard: { enabled: false }, ...extra },
  };
  await env.kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, body });
}

async function readySources(kc: KubeConfig, namespace: string): Promise<{ ready: number; managed: number }> {
  const list = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL })) as { items: VmRegistrySource[] };
  let ready = 0;
  let managed = 0;
  for (const s of list.items) {
    if (s.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True') ready++;
    managed += s.status?.managedEntries ?? 0;
  }
  return { ready, managed };
}

async function waitSourcesReady(kc: KubeConfig, namespace: string, sources: number, entries: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const r = await readySources(kc, namespace).catch(() => ({ ready: 0, managed: 0 }));
    if (r.ready >= sources && r.managed >= entries) return performance.now();
    if (performance.now() > deadline) throw new Error(`${namespace}: ${r.ready}/${sources} sources Ready, ${r.managed}/${entries} entries after ${timeoutMs} ms`);
    await sleep(100);
  }
}

function memoryText(m: MemoryReading, endpoints: number): string {
  const r = m.resident;
  const where = `node binary ${mib(r.nodeBinaryBytes)}, anonymous ${mib(r.anonymousBytes)} (V8 heap committed ${mib(m.heapTotalBytes)}), malloc main arena ${mib(r.brkBytes)}, other files ${mib(r.otherFilesBytes)}; external ${mib(m.externalBytes)} MiB`;
  return `RSS ${mib(m.rssBytes)} MiB (peak ${mib(m.peakRssBytes)}), heap after GC ${mib(m.heapUsedBytes)} MiB = ${round(mib(m.heapUsedBytes) / (endpoints / 1000), 2)} MiB per 1,000 endpoints\n    resident: ${where}`;
}

function latencyText(ts: readonly Timed[]): string {
  const ok = ts.flatMap((t) => (t.ms === undefined ? [] : [t.ms]));
  const lost = ts.length - ok.length;
  return `${round(percentile(ok, 50))} / ${round(percentile(ok, 99))} ms${lost > 0 ? ` (${lost} of ${ts.length} not seen in ${CHANGE_TIMEOUT_MS / 1000} s)` : ''}`;
}

async function startOperator(env: Env, namespaces: readonly string[], limit: { qps: number; burst: number }): Promise<OperatorProcess> {
  return OperatorProcess.start({
    main: env.main,
    kubeconfig: env.cluster.cp.kubeconfig,
    namespaces,
    maxOldSpaceMb: HEAP_MB,
    ...limit,
    workDir: env.workDir,
    nodeOptions: OPERATOR_NODE_OPTIONS,
    onStderr: (line) => {
      if (/"level":"(error|fatal)"|heap|FATAL/i.test(line)) say(`  operator: ${line.slice(0, 300)}`);
    },
  });
}

/** The status apply the applier sends for an entry with a health verdict (as in reconcile/apply.ts). */
function healthStatusBody(apiVersion: string, namespace: string, name: string, healthy: boolean): unknown {
  const at = new Date().toISOString();
  const condition = { type: 'Healthy', status: healthy ? 'True' : 'False', lastProbeTime: at, lastTransitionTime: at, reason: healthy ? 'HealthCheckPassing' : 'HealthCheckFailing' };
  return { apiVersion, kind: 'WorkloadEntry', metadata: { name, namespace }, status: { conditions: [condition] } };
}

/**
 * The requests the applier sends for these entries, byte for byte the same objects
 * (labels, annotations, owner reference to a real source), in a namespace of their own:
 * one apply per entry, and a status apply per entry that carries a health verdict.
 */
function rawRequests(desired: readonly DesiredEntry[], owner: VmRegistrySource): ApplyRequest[] {
  const ns = owner.metadata.namespace;
  const base = `/apis/${WE_GROUP}/${WE_VERSION}/namespaces/${ns}/${WE_PLURAL}`;
  return desired.flatMap((d) => {
    const object = toAppliedObject(d, owner);
    const requests: ApplyRequest[] = [{ path: `${base}/${d.name}`, body: object }];
    if (d.healthy !== undefined) requests.push({ path: `${base}/${d.name}/status`, body: healthStatusBody(object.apiVersion, ns, d.name, d.healthy) });
    return requests;
  });
}

/**
 * Phase 1: the yardstick. A minimal client (bench/minimal-apply.ts: one HTTP/2 connection,
 * no library) sends the applier's requests for the same entries at the applier's
 * concurrency, with no client-side rate limit. The owner is a suspended source, so the
 * garbage collector treats these entries as it treats the operator's, and the bench watches
 * them as it watches the operator's.
 */
async function rawApply(env: Env): Promise<number> {
  step(`1. A minimal client's server-side apply of the same ${TOTAL} WorkloadEntries, ${APPLY_CONCURRENCY} at a time`);
  const spec = BUILTIN_API.validateSpec({ consul: { address: env.agent.address, tags: [MESH_TAG] }, workloadEntry: { serviceAccount: 'legacy-vms' } });
  const provider = consulProviderFactory.create({ source: `${NS.one}/fleet`, spec, secrets: new Map(), metrics: new ProviderMetrics(new Registry()), log: createLogger('error') });
  const snapshot = await provider.snapshot(AbortSignal.timeout(300_000));
  await provider.close();
  const desired = buildDesiredState({ sourceName: 'fleet', spec, endpoints: snapshot.endpoints, providerRules: consulProviderFactory.defaultMapping(spec) });
  if (desired.entries.length !== TOTAL) throw new Error(`expected ${TOTAL} desired entries, got ${desired.entries.length}`);
  await createNamespace(env.kc, NS.raw);
  await createSource(env, NS.raw, 'fleet', [MESH_TAG], { suspend: true });
  const owner = (await env.kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS.raw, plural: PLURAL, name: 'fleet' })) as VmRegistrySource;
  const requests = rawRequests(desired.entries, owner);
  // The bench watches the operator's entries as they appear (phase 2): the same watch on
  // these, so the apiserver sends and this process decodes the same events in both runs.
  const rawWatch = new EntryWatch(env.kc, NS.raw);
  await rawWatch.start();
  const client = await MinimalApplyClient.connect(env.kc, FIELD_MANAGER);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const results = await mapLimit(requests, APPLY_CONCURRENCY, (r) => client.apply(r));
  const ms = since(t0);
  const cpu = process.cpuUsage(cpu0);
  client.close();
  await rawWatch.until(`${TOTAL} raw entries`, () => rawWatch.size >= TOTAL, 600_000);
  rawWatch.stop();
  const failed = results.filter((r) => r.status === 'rejected');
  if (failed.length > 0) throw new Error(`raw apply: ${failed.length} writes failed; first: ${String((failed[0] as PromiseRejectedResult).reason)}`);
  const cpuMsPerEntry = (cpu.user + cpu.system) / 1000 / TOTAL;
  say(`  ${round(ms / 1000, 1)} s (${round(TOTAL / (ms / 1000))} entries/s, ${requests.length} requests); client CPU (with the bench's watch) ${round(cpuMsPerEntry, 2)} ms per entry`);
  row(`raw SSA of the same objects, ${APPLY_CONCURRENCY} at a time`, `${round(ms / 1000, 1)} s`, `${round(TOTAL / (ms / 1000))} entries/s, ${requests.length} requests over one HTTP/2 connection; the client's CPU, with the bench's watch on them, ${round(cpuMsPerEntry, 2)} ms per entry`);
  return ms;
}

interface Running {
  op: OperatorProcess;
  readonly bigWatch: EntryWatch;
  readonly smallWatch: EntryWatch;
}

/** Phase 2: one large source and one small source, from nothing. */
async function oneSource(env: Env, rawMs: number): Promise<Running> {
  step(`2. One source of ${TOTAL} endpoints (and one of ${SMALL_TOTAL}), operator heap capped at ${HEAP_MB} MB, client ${limitText(LIFTED)}`);
  await createNamespace(env.kc, NS.one);
  await createNamespace(env.kc, NS.small);
  const bigWatch = new EntryWatch(env.kc, NS.one);
  const smallWatch = new EntryWatch(env.kc, NS.small);
  await bigWatch.start();
  await smallWatch.start();
  const op = await startOperator(env, [NS.one, NS.small], LIFTED);
  const idle = await op.memory();
  say(`  idle (no sources): ${memoryText(idle, 1000)}`);
  row('idle operator, no sources', `${mib(idle.rssBytes)} MiB RSS`, `heap after GC ${mib(idle.heapUsedBytes)} MiB`);
  const cpu0 = await op.cpuSeconds();
  const t0 = performance.now();
  await createSource(env, NS.small, 'small', [SMALL_TAG]);
  await createSource(env, NS.one, 'fleet', [MESH_TAG]);
  const progress = setInterval(() => say(`  ${bigWatch.size}/${TOTAL} entries after ${round(since(t0) / 1000)} s`), 15_000);
  await bigWatch.until(`${TOTAL} entries`, () => bigWatch.size >= TOTAL, 1_800_000);
  await smallWatch.until(`${SMALL_TOTAL} entries`, () => smallWatch.size >= SMALL_TOTAL, 600_000);
  clearInterval(progress);
  const readyAt = await waitSourcesReady(env.kc, NS.one, 1, TOTAL, 600_000);
  await waitSourcesReady(env.kc, NS.small, 1, SMALL_TOTAL, 600_000);
  const convergeMs = readyAt - t0;
  const cpu = (await op.cpuSeconds()) - cpu0;
  const mem = await op.memory();
  say(`  converged (all entries, source Ready) in ${round(convergeMs / 1000, 1)} s = ${round(convergeMs / rawMs, 2)}× raw SSA; CPU ${round(cpu, 1)} s; ${memoryText(mem, TOTAL + SMALL_TOTAL)}`);
  row('initial convergence, 1 source', `${round(convergeMs / 1000, 1)} s`, `${round(convergeMs / rawMs, 2)}× raw SSA (goal ≤ 1.15×); ${limitText(LIFTED)} (lifted; the default is in phase 7's row)`);
  row('CPU, initial sync', `${round((cpu * 1000) / (TOTAL + SMALL_TOTAL), 2)} s per 1,000 endpoints`, `${round(cpu, 1)} s in all`);
  row('memory after convergence', `${mib(mem.rssBytes)} MiB RSS`, `peak ${mib(mem.peakRssBytes)} MiB; goal ≤ 200 MiB`);
  row('heap used after full GC', `${round(mib(mem.heapUsedBytes) / ((TOTAL + SMALL_TOTAL) / 1000), 2)} MiB per 1,000 endpoints`, `${mib(mem.heapUsedBytes)} MiB in all, heap capped at ${HEAP_MB} MB`);
  row('heap per 1,000 endpoints above idle', `${round(mib(mem.heapUsedBytes - idle.heapUsedBytes) / ((TOTAL + SMALL_TOTAL) / 1000), 2)} MiB`, `the sizing rule's slope; idle heap ${mib(idle.heapUsedBytes)} MiB`);
  return { op, bigWatch, smallWatch };
}

/** Phase 3: every kind of change, at both sizes. */
async function changes(env: Env, r: Running): Promise<void> {
  step(`3. Registry changes → WorkloadEntry change: ${CHANGES} of each kind in each source, one every ${CHANGE_GAP_MS} ms`);
  const cpu0 = await r.op.cpuSeconds();
  let count = 0;
  for (const [label, fleet, watch, base] of [
    [`${SERVICES} services (≫ 64)`, env.big, r.bigWatch, 200],
    [`${SMALL_SERVICES} services (≤ 64)`, env.small, r.smallWatch, 230],
  ] as const) {
    const driver = new ChangeDriver({ agent: env.agent, watch, fleet, newAddressBase: base, timeoutMs: CHANGE_TIMEOUT_MS, gapMs: CHANGE_GAP_MS });
    for (const kind of CHANGE_KINDS) {
      const timed = await driver.run(kind, CHANGES);
      count += timed.length;
      say(`  ${label}, ${kind}: p50 / p99 ${latencyText(timed)}`);
      row(`${kind}, ${label}: p50 / p99`, latencyText(timed), 'goal ≤ 100 / 500 ms');
    }
  }
  const cpu = (await r.op.cpuSeconds()) - cpu0;
  row('CPU per 1,000 changes', `${round((cpu * 1000) / Math.max(1, count), 1)} s`, `${round(cpu, 1)} s for ${count} changes (includes the wait between them)`);
}

/** Phase 4: churn, then memory. */
async function churn(env: Env, r: Running): Promise<void> {
  step(`4. Churn: ${CHURN_RATE} changes per second for ${CHURN_S} s`);
  const driver = new ChangeDriver({ agent: env.agent, watch: r.bigWatch, fleet: env.big, newAddressBase: 180, timeoutMs: CHANGE_TIMEOUT_MS, gapMs: 0 }, 99);
  const errors = async (): Promise<[number, number]> => [
    await r.op.counter('controller_runtime_reconcile_total', { result: 'error' }),
    // One reading: two (all, then successes) race the requests answered in between.
    await r.op.counter('vmregistry_provider_requests_total', { outcome: '!success' }),
  ];
  const [failedBefore, consulErrorsBefore] = await errors();
  const done = await driver.churn(CHURN_S, CHURN_RATE);
  const mem = await r.op.memory();
  const [failed, consulErrors] = await errors();
  const unseen = Object.entries(done.unseen).map(([kind, n]) => `${n} ${kind}`).join(', ');
  say(`  ${done.sent} changes, ${done.seen} seen${unseen ? ` (not seen within ${CHANGE_TIMEOUT_MS / 1000} s: ${unseen})` : ''}; ${failed - failedBefore} failed reconciles, ${consulErrors - consulErrorsBefore} failed Consul requests; ${memoryText(mem, TOTAL + SMALL_TOTAL)}`);
  row(`memory after ${CHURN_S} s of churn`, `${mib(mem.rssBytes)} MiB RSS`, `peak ${mib(mem.peakRssBytes)} MiB; heap after GC ${mib(mem.heapUsedBytes)} MiB; ${done.sent} changes; goal ≤ 200 MiB (after 600 s)`);
}

/** Phase 5: nothing changes. */
async function steady(r: Running): Promise<void> {
  step(`5. Steady state: ${STEADY_S} s with nothing changing`);
  // The churn leaves work behind: the sweep pass its last catalog moves earned (at most one
  // per 0.4 × interval, 12 s here). The steady state starts once no probe went out for 15 s.
  const drainStart = performance.now();
  const probes = (): Promise<number> => r.op.counter('vmregistry_provider_requests_total', { operation: 'probe_health_service' });
  for (let last = await probes(), quietSince = performance.now(); performance.now() - quietSince < 15_000 && performance.now() - drainStart < 180_000; ) {
    await sleep(1000);
    const now = await probes();
    if (now !== last) quietSince = performance.now();
    last = now;
  }
  const drained = round((performance.now() - drainStart) / 1000, 1);
  // One scrape at each end, as Prometheus scraping every STEADY_S would: the last one is in the window.
  const reading = async (): Promise<{ writes: number; requests: number }> => {
    const m = await r.op.scrape();
    return { writes: m.sum('vmregistry_workload_entry_writes_total'), requests: m.sum('vmregistry_provider_requests_total') };
  };
  const before = await reading();
  const cpu0 = await r.op.cpuSeconds();
  await sleep(STEADY_S * 1000);
  const after = await reading();
  const cpuPct = (100 * ((await r.op.cpuSeconds()) - cpu0)) / Math.max(1, STEADY_S);
  const writes = after.writes - before.writes;
  const requests = after.requests - before.requests;
  say(`  the churn's sweeps done after ${drained} s; then ${writes} writes, ${requests} Consul requests (blocking answers included); CPU ${round(cpuPct, 2)}% of one core`);
  row('steady state writes', writes, `in ${STEADY_S} s (goal 0)`);
  row('steady state CPU', `${round(cpuPct, 2)}% of a core`, `goal < 1%; measured once the churn's last sweep ended (${drained} s after it)`);
  // After the CPU window, so its full collections do not count: what a quiet operator keeps.
  const mem = await r.op.memory();
  say(`  at the end of the steady state: ${memoryText(mem, TOTAL + SMALL_TOTAL)}`);
  row('memory at the end of the steady state', `${mib(mem.rssBytes)} MiB RSS`, `heap after GC ${mib(mem.heapUsedBytes)} MiB; ${round((drained + STEADY_S), 0)} s after the churn`);
}

/** Phase 6: a restart with every entry present. */
async function restart(env: Env, r: Running): Promise<void> {
  step('6. Restart with every entry present');
  await r.op.stop();
  const t0 = performance.now();
  r.op = await startOperator(env, [NS.one, NS.small], LIFTED);
  const cachesAt = performance.now();
  // Ready: both sources reconciled once after the start (every sync ends in requeue_after).
  for (;;) {
    const synced = await r.op.counter('controller_runtime_reconcile_total', { result: 'requeue_after' });
    if (synced >= 2) break;
    if (since(t0) > 300_000) throw new Error('no sync within 300 s of the restart');
    await sleep(50);
  }
  const readyMs = since(t0);
  const writes = await r.op.counter('vmregistry_workload_entry_writes_total');
  say(`  caches synced after ${round((cachesAt - t0) / 1000, 2)} s, both sources synced after ${round(readyMs / 1000, 2)} s, ${writes} writes`);
  row('restart: writes', writes, 'goal 0');
  row('restart: time to Ready', `${round(readyMs / 1000, 1)} s`, `caches synced after ${round((cachesAt - t0) / 1000, 1)} s; goal ≤ 10 s`);
}

/**
 * Phase 1b: registry change → istiod's endpoint, through a generated ServiceEntry. On an
 * otherwise empty mesh, so istiod's own cost of large meshes does not hide ours.
 */
async function istiodLatency(env: Env): Promise<void> {
  step(`1b. Registry health flip → istiod endpoint change, ${ISTIOD_FLIPS} flips each way`);
  const istiod = await Istiod.start(env.cluster);
  await createNamespace(env.kc, NS.mesh);
  const op = await startOperator(env, [NS.mesh], LIFTED);
  try {
    const check = (id: string) => ({ CheckID: id, Name: id, TTL: '10m', Status: 'passing' });
    for (const i of [1, 2]) {
      await env.agent.registerService({ ID: `flip-${i}`, Name: 'bench-flip', Tags: ['bench-istiod'], Address: `10.250.0.${i}`, Port: 8080, Meta: { protocol: 'http' }, Checks: [check(`flip-${i}-ttl`)] });
    }
    const body = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'VmRegistrySource',
      metadata: { name: 'flip', namespace: NS.mesh },
      spec: { consul: { address: env.agent.address, tags: ['bench-istiod'] }, serviceEntries: {} },
    };
    await env.kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS.mesh, plural: PLURAL, body });
    const result = await measureIstiodFlips({
      istiod,
      host: 'bench-flip.service.consul',
      namespace: NS.mesh,
      address: '10.250.0.1',
      flip: (down) => env.agent.setTtl('flip-1-ttl', down ? 'fail' : 'pass'),
      rounds: ISTIOD_FLIPS,
      timeoutMs: CHANGE_TIMEOUT_MS,
    });
    for (const [k, v] of istiodRows(result)) row(k, v, 'health flip, exclude mode; the WorkloadEntry side is in the rows of phase 3');
    say(`  istiod: ${istiodRows(result).map(([k, v]) => `${k} ${v}`).join('; ')}`);
  } finally {
    await op.stop();
    await istiod.stop();
  }
}

/** Phase 7: the same fleet over 10 sources. */
async function tenSources(env: Env, rawMs: number): Promise<void> {
  step(`7. The same ${TOTAL} endpoints split over ${SHARDS} sources, client ${limitText(TEN_LIMIT)}`);
  await createNamespace(env.kc, NS.ten);
  const watch = new EntryWatch(env.kc, NS.ten);
  await watch.start();
  const op = await startOperator(env, [NS.ten], TEN_LIMIT);
  try {
    const cpu0 = await op.cpuSeconds();
    const t0 = performance.now();
    for (let k = 0; k < SHARDS; k++) await createSource(env, NS.ten, `shard-${k}`, [MESH_TAG, shardTag(k)]);
    const progress = setInterval(() => say(`  ${watch.size}/${TOTAL} entries after ${round(since(t0) / 1000)} s`), 15_000);
    // Churn removed and added some instances of the fleet: count what the registry has now.
    await watch.until('entries', () => watch.size >= TOTAL * 0.98, 1_800_000);
    clearInterval(progress);
    const readyAt = await waitSourcesReady(env.kc, NS.ten, SHARDS, Math.floor(TOTAL * 0.98), 600_000);
    const ms = readyAt - t0;
    const cpu = (await op.cpuSeconds()) - cpu0;
    const mem = await op.memory();
    say(`  converged in ${round(ms / 1000, 1)} s with ${watch.size} entries; CPU ${round(cpu, 1)} s; ${memoryText(mem, watch.size)}`);
    const floorS = watch.size / TEN_LIMIT.qps;
    row(`initial convergence, ${SHARDS} sources`, `${round(ms / 1000, 1)} s`, `${round(ms / rawMs, 2)}× raw SSA; ${limitText(TEN_LIMIT)}${TEN_LIMIT === DEFAULT_LIMIT ? ' (the default)' : ''}: ≥ ${round(floorS)} s at one request per entry`);
    row(`CPU, initial sync, ${SHARDS} sources`, `${round((cpu * 1000) / watch.size, 2)} s per 1,000 endpoints`, `${round(cpu, 1)} s in all`);
    row(`memory, ${SHARDS} sources`, `${mib(mem.rssBytes)} MiB RSS`, `peak ${mib(mem.peakRssBytes)} MiB; heap after GC ${round(mib(mem.heapUsedBytes) / (watch.size / 1000), 2)} MiB per 1,000 endpoints; goal ≤ 200 MiB`);
  } finally {
    watch.stop();
    await op.stop();
  }
}

async function main(): Promise<number> {
  const started = performance.now();
  say(`vm-registry-operator benchmark: ${SERVICES} services × ${INSTANCES} instances = ${TOTAL} endpoints (+ ${SMALL_TOTAL} in a small source)`);
  say(`Consul read over ${CONSUL_HTTPS ? 'HTTPS (HTTP/2: every service watched)' : 'plain HTTP (HTTP/1.1: only small sources watched one by one)'}`);
  say(`changes: ${CHANGES} per kind and size; churn ${CHURN_S} s at ${CHURN_RATE}/s; steady ${STEADY_S} s; operator heap cap ${HEAP_MB} MB`);

  const repo = new URL('..', import.meta.url).pathname;
  if (process.env['BENCH_SKIP_BUILD'] !== '1') {
    step('Compiling the operator as the image runs it (dist/; BENCH_SKIP_BUILD=1 reuses it)');
    execFileSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', join(repo, 'tsconfig.build.json')], { stdio: 'inherit' });
  }

  step('Starting the local control plane and a Consul agent');
  const cluster = await startLocalCluster({ log: () => {} });
  let agent: ConsulAgent | undefined;
  let running: Running | undefined;
  try {
    agent = await ConsulAgent.start({ tls: CONSUL_HTTPS, log: () => {} });
    const env: Env = {
      cluster,
      kc: cluster.kc,
      agent,
      big: planFleet(SERVICES, INSTANCES, Math.min(100, SERVICES)),
      small: planFleet(SMALL_SERVICES, INSTANCES, SMALL_SERVICES, { prefix: 'small', base: 120, tag: SMALL_TAG }),
      main: join(repo, 'dist/cli/main.js'),
      workDir: await mkdtemp(join(tmpdir(), 'vmreg-bench-')),
    };
    step(`Registering ${TOTAL + SMALL_TOTAL} instances in Consul`);
    const registerMs = (await registerFleet(agent, env.big)) + (await registerFleet(agent, env.small));
    await waitForCatalog(agent, env.big, 600_000);
    await waitForCatalog(agent, env.small);
    say(`  registered in ${round(registerMs / 1000, 1)} s`);
    row('size', `${SERVICES} × ${INSTANCES} = ${TOTAL}`, `services × instances; + ${SMALL_SERVICES} × ${INSTANCES} in the small source`);

    if (!SKIP_ISTIOD) await istiodLatency(env);
    const rawMs = await rawApply(env);
    running = await oneSource(env, rawMs);
    await changes(env, running);
    await churn(env, running);
    await steady(running);
    await restart(env, running);
    running.bigWatch.stop();
    running.smallWatch.stop();
    await running.op.stop();
    running = undefined;
    if (!SKIP_TEN) await tenSources(env, rawMs);

    const totalS = round(since(started) / 1000);
    step(`Results (one run, ${totalS} s)`);
    say(table(rows));
    const file = join(env.workDir, 'bench.json');
    await writeFile(file, JSON.stringify({ rows, totalSeconds: totalS }, null, 2) + '\n');
    say(`\nJSON: ${file}`);
    return 0;
  } finally {
    running?.bigWatch.stop();
    running?.smallWatch.stop();
    await running?.op.stop();
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
