/**
 * A short look at one initial sync, for profiling: SERVICES × INSTANCES endpoints in one
 * source, the operator started from dist/ (or src/ with PROFILE_SRC=1), optionally with
 * PROFILE_CPU_DIR (node --cpu-prof into it) and PROFILE_HEAP_DIR (a heap snapshot after
 * convergence, written by the operator on SIGUSR2 through memory-probe.mjs). Prints the
 * convergence time, the yardstick's time (PROFILE_RAW=1), CPU per endpoint and memory.
 *
 * Environment: PROFILE_SERVICES (200), PROFILE_INSTANCES (5), PROFILE_QPS/PROFILE_BURST
 * (1000/2000), PROFILE_HEAP_MB (160), PROFILE_IDLE_SECONDS (0: CPU of a steady state after).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../src/api/types.ts';
import { startLocalCluster } from '../src/dev/cluster.ts';
import { ConsulAgent } from '../src/dev/consul-agent.ts';
import { MESH_TAG, planFleet, registerFleet, waitForCatalog } from './consul-load.ts';
import { EntryWatch } from './entry-watch.ts';
import { OperatorProcess } from './operator-process.ts';
import { mib, round } from './report.ts';

const num = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const SERVICES = num('PROFILE_SERVICES', 200);
const INSTANCES = num('PROFILE_INSTANCES', 5);
const TOTAL = SERVICES * INSTANCES;
const say = (s: string): void => void process.stdout.write(s + '\n');

async function main(): Promise<void> {
  const repo = new URL('..', import.meta.url).pathname;
  const cluster = await startLocalCluster({ log: () => {} });
  const agent = await ConsulAgent.start({ log: () => {} });
  try {
    const fleet = planFleet(SERVICES, INSTANCES, Math.min(20, SERVICES));
    await registerFleet(agent, fleet);
    await waitForCatalog(agent, fleet, 600_000);
    const kc = cluster.kc;
    const ns = 'profile';
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
    const watch = new EntryWatch(kc, ns);
    await watch.start();
    const cpuDir = process.env['PROFILE_CPU_DIR'];
    const options = {
      main: process.env['PROFILE_SRC'] === '1' ? join(repo, 'src/cli/main.ts') : join(repo, 'dist/cli/main.js'),
      kubeconfig: cluster.cp.kubeconfig,
      namespaces: [ns],
      maxOldSpaceMb: num('PROFILE_HEAP_MB', 160),
      qps: num('PROFILE_QPS', 1000),
      burst: num('PROFILE_BURST', 2000),
      workDir: await mkdtemp(join(tmpdir(), 'vmreg-profile-')),
      nodeOptions: [...(process.env['PROFILE_NODE_OPTIONS']?.split(' ').filter(Boolean) ?? []), ...(cpuDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuDir}`, '--cpu-prof-interval=500'] : [])],
      onStderr: (line: string) => say(`  operator: ${line.slice(0, 300)}`),
    };
    const op = await OperatorProcess.start(options);
    const idle = await op.memory();
    say(`idle: RSS ${mib(idle.rssBytes)} MiB, heap ${mib(idle.heapUsedBytes)} MiB, heap committed ${mib(idle.heapTotalBytes)} MiB, external ${mib(idle.externalBytes)} MiB`);
    const cpu0 = await op.cpuSeconds();
    const t0 = performance.now();
    const body = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'VmRegistrySource',
      metadata: { name: 'fleet', namespace: ns },
      spec: { consul: { address: agent.address, tags: [MESH_TAG] }, workloadEntry: { serviceAccount: 'legacy-vms' }, deletionGuard: { enabled: false } },
    };
    await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, body });
    await watch.until(`${TOTAL} entries`, () => watch.size >= TOTAL, 1_800_000);
    const entriesMs = performance.now() - t0;
    // Let the reconciles caused by our own writes settle.
    let reconciles = -1;
    for (;;) {
      await sleep(2000);
      const n = await op.counter('controller_runtime_reconcile_total');
      if (n === reconciles) break;
      reconciles = n;
    }
    const cpu = (await op.cpuSeconds()) - cpu0;
    const mem = await op.memory();
    const writes = await op.counter('vmregistry_workload_entry_writes_total');
    const requests = await op.counter('rest_client_requests_total');
    say(`entries in ${round(entriesMs / 1000, 1)} s; ${reconciles} reconciles; ${writes} writes; ${requests} requests`);
    say(`CPU ${round(cpu, 2)} s = ${round((cpu * 1000) / TOTAL, 2)} ms per endpoint`);
    say(`after: RSS ${mib(mem.rssBytes)} MiB (peak ${mib(mem.peakRssBytes)}), heap ${mib(mem.heapUsedBytes)} MiB = ${round(mib(mem.heapUsedBytes - idle.heapUsedBytes) / (TOTAL / 1000), 2)} MiB per 1,000 above idle; heap committed ${mib(mem.heapTotalBytes)} MiB, external ${mib(mem.externalBytes)} MiB`);
    const idleS = num('PROFILE_IDLE_SECONDS', 0);
    if (idleS > 0) {
      const c0 = await op.cpuSeconds();
      await sleep(idleS * 1000);
      say(`steady: ${round((100 * ((await op.cpuSeconds()) - c0)) / idleS, 2)}% of a core`);
    }
    await op.stop();
    if (process.env['PROFILE_RESTART'] === '1') {
      // A restart with every entry present: time to caches synced and to the first sync, and its writes.
      const t1 = performance.now();
      const again = await OperatorProcess.start({ ...options, nodeOptions: [...(options.nodeOptions ?? []), ...(cpuDir ? [] : [])] });
      const cachesMs = performance.now() - t1;
      while ((await again.counter('controller_runtime_reconcile_total', { result: 'requeue_after' })) < 1) await sleep(50);
      const readyMs = performance.now() - t1;
      say(`restart: caches synced after ${round(cachesMs / 1000, 2)} s, synced after ${round(readyMs / 1000, 2)} s, ${await again.counter('vmregistry_workload_entry_writes_total')} writes`);
      await again.stop();
    }
    watch.stop();
  } finally {
    await agent.stop();
    await cluster.stop();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`profile failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
