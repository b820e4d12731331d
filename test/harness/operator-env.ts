/**
 * An operator running in-process against the real local control plane, with chosen
 * provider factories: the engine's integration tests start here.
 */
import { Registry } from 'prom-client';
import { KubeConfig } from '@kubernetes/client-node';
import { startLocalCluster, type LocalCluster, type LocalClusterOptions } from '../../src/dev/cluster.ts';
import { TEST_CRD_YAML } from '../fixtures/memory-provider.ts';
import { ControllerMetrics } from '../../src/metrics/controller-metrics.ts';
import { createLogger, silentLogger, type Logger } from '../../src/metrics/logger.ts';
import { Operator, type OperatorOptions } from '../../src/controller/operator.ts';
import type { ProviderFactory } from '../../src/providers/provider.ts';
import { factoriesOf, type ProviderFactories } from '../../src/providers/registry.ts';
import type { WorkloadEntry } from '../../src/api/istio.ts';
import type { VmRegistrySource } from '../../src/api/types.ts';
import { ENDPOINT_ANNOTATION } from '../../src/api/ownership.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export const testLog: Logger = process.env['VMREG_TEST_LOG'] ? createLogger('debug') : silentLogger;

export interface RunningOperator {
  readonly operator: Operator;
  readonly metrics: ControllerMetrics;
  stop(): Promise<void>;
}

export async function startOperator(
  cluster: LocalCluster,
  factories: readonly ProviderFactory[] | ProviderFactories,
  options: Partial<Omit<OperatorOptions, 'kc' | 'factories' | 'metrics' | 'log'>> & { kubeconfig?: string } = {},
): Promise<RunningOperator> {
  const kc = new KubeConfig();
  kc.loadFromFile(options.kubeconfig ?? cluster.cp.kubeconfig);
  const metrics = new ControllerMetrics(new Registry(), { defaultMetrics: false });
  const operator = new Operator({ kc, factories: Array.isArray(factories) ? factoriesOf(factories) : (factories as ProviderFactories), metrics, log: testLog, ...options });
  await operator.start();
  return { operator, metrics, stop: () => operator.stop() };
}

export { startLocalCluster };

/** A local cluster whose CRD knows the test provider (spec.memory) besides the shipped ones. */
export function startTestCluster(options: Omit<LocalClusterOptions, 'vmRegistrySourceCrd'> = {}): Promise<LocalCluster> {
  return startLocalCluster({ ...options, vmRegistrySourceCrd: TEST_CRD_YAML });
}

/** Polls fn until it returns a value that is not undefined/false, or fails with the last value. */
/**
 * Resolves once the operator has finished `n` more reconciles (any source, any result):
 * what a negative check ("entries are kept") waits for, instead of a fixed time.
 */
export async function afterReconciles(op: RunningOperator, n: number, timeoutMs = 60_000): Promise<void> {
  const total = async (): Promise<number> => (await op.metrics.reconcileTotal.get()).values.reduce((sum, v) => sum + v.value, 0);
  const start = await total();
  await eventually(`${n} more reconciles`, async () => (await total()) >= start + n, timeoutMs);
}

export async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}

export async function getEntries(cluster: LocalCluster, namespace: string, selector?: string): Promise<WorkloadEntry[]> {
  const out = await cluster.kubectl(['get', 'workloadentries.networking.istio.io', '-n', namespace, '-o', 'json', ...(selector ? ['-l', selector] : [])]);
  return (JSON.parse(out) as { items: WorkloadEntry[] }).items;
}

export async function getSource(cluster: LocalCluster, namespace: string, name: string): Promise<VmRegistrySource> {
  return JSON.parse(await cluster.kubectl(['get', 'vmrs', name, '-n', namespace, '-o', 'json'])) as VmRegistrySource;
}

export function condition(source: VmRegistrySource, type: string): { status: string; reason: string; message: string } | undefined {
  return source.status?.conditions?.find((c) => c.type === type);
}

export async function applyYaml(cluster: LocalCluster, yaml: string): Promise<string> {
  return cluster.kubectl(['apply', '-f', '-'], { input: yaml });
}

/**
 * A namespace and a VmRegistrySource reading Consul, applied as JSON (which kubectl reads
 * as YAML). A long interval: every change must arrive through Consul's blocking queries.
 */
export async function applyConsulSource(cluster: LocalCluster, ns: string, name: string, consul: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<void> {
  const namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } };
  const source = { apiVersion: 'vmregistry.io/v1alpha1', kind: 'VmRegistrySource', metadata: { name, namespace: ns }, spec: { interval: '1h', consul, ...extra } };
  await applyYaml(cluster, `${JSON.stringify(namespace)}\n---\n${JSON.stringify(source)}\n`);
}

/** Entries of a namespace keyed by the registry endpoint they stand for (foreign ones by name). */
export async function entriesByEndpoint(cluster: LocalCluster, namespace: string, selector?: string): Promise<Map<string, WorkloadEntry>> {
  const items = await getEntries(cluster, namespace, selector);
  return new Map(items.map((e) => [e.metadata.annotations?.[ENDPOINT_ANNOTATION] ?? `foreign:${e.metadata.name}`, e]));
}

/** Waits until the entries of a namespace stand for exactly these endpoint ids. */
export async function waitForEndpoints(cluster: LocalCluster, namespace: string, ids: readonly string[], timeoutMs = 30_000): Promise<Map<string, WorkloadEntry>> {
  const want = [...ids].sort().join(',');
  return eventually(`entries in ${namespace} for ${ids.length} endpoints`, async () => {
    const got = await entriesByEndpoint(cluster, namespace);
    return [...got.keys()].sort().join(',') === want ? got : undefined;
  }, timeoutMs);
}

export async function waitForSource(cluster: LocalCluster, namespace: string, name: string, what: string, ok: (s: VmRegistrySource) => boolean, timeoutMs = 30_000): Promise<VmRegistrySource> {
  return eventually(what, async () => {
    const s = await getSource(cluster, namespace, name);
    return ok(s) ? s : undefined;
  }, timeoutMs);
}

export async function eventReasons(cluster: LocalCluster, namespace: string): Promise<string[]> {
  const out = JSON.parse(await cluster.kubectl(['get', 'events', '-n', namespace, '-o', 'json'])) as { items: { reason: string }[] };
  return out.items.map((e) => e.reason);
}
