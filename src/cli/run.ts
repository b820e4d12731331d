/** `vmreg run`: the operator. */
import { hostname } from 'node:os';
import type { Server } from 'node:http';
import { parseArgs } from 'node:util';
import { GROUP, PLURAL, SOURCES } from '../api/types.ts';
import { parseDuration } from '../api/duration.ts';
import { ambientPolicyOf } from '../controller/consent.ts';
import { checkTimings, type LeaderElectionTimings } from '../runtime/leader-election.ts';
import { Operator } from '../controller/operator.ts';
import { ControllerMetrics } from '../metrics/controller-metrics.ts';
import { createLogger, type LogLevel } from '../metrics/logger.ts';
import { parseBindAddress, startProbeServer } from '../metrics/server.ts';
import { DEFAULT_POOL_LIMITS, MIN_CONNECTIONS, type PoolLimits } from '../providers/consul/pool.ts';
import { builtinProviders } from '../providers/builtin.ts';
import { DEFAULT_KUBE_API_BURST, DEFAULT_KUBE_API_QPS, KubeApiError, type KubeClientOptions } from '../runtime/kube-client.ts';
import { UsageError } from './errors.ts';
import { loadKubeConfig } from './kubeconfig.ts';

export { RUN_HELP } from './help.ts';

/**
 * --kube-api-qps and --kube-api-burst, as kube-controller-manager spells them: the
 * operator's own token bucket in front of every apiserver request. The first sync of a
 * large registry takes at least entries / qps seconds; raise both for fleets of
 * thousands (the apiserver's priority and fairness still protects it).
 */
export function parseClientLimit(qpsText: string, burstText: string): KubeClientOptions {
  const qps = Number(qpsText);
  if (qpsText.trim() === '' || !Number.isFinite(qps) || qps <= 0) throw new UsageError(`--kube-api-qps must be a number above 0, got "${qpsText}"`);
  const burst = Number(burstText);
  if (!Number.isInteger(burst) || burst < 1) throw new UsageError(`--kube-api-burst must be a whole number of at least 1, got "${burstText}"`);
  return { qps, burst };
}

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** The Lease and its timings from the flags, checked before anything connects. */
function leaderElectionFrom(values: Record<string, string | boolean | undefined>): { namespace: string; name: string; identity: string } & Required<LeaderElectionTimings> {
  const flag = (name: string): string => String(values[name] ?? '');
  const ns = (values['leader-election-namespace'] as string | undefined) ?? process.env['POD_NAMESPACE'];
  if (!ns) throw new UsageError('--leader-elect needs --leader-election-namespace or $POD_NAMESPACE');
  const timings = {
    leaseDurationMs: durationFlag('--leader-election-lease-duration', flag('leader-election-lease-duration')),
    renewDeadlineMs: durationFlag('--leader-election-renew-deadline', flag('leader-election-renew-deadline')),
    retryPeriodMs: durationFlag('--leader-election-retry-period', flag('leader-election-retry-period')),
  };
  try {
    checkTimings(timings);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return { namespace: ns, name: flag('leader-election-id'), identity: process.env['POD_NAME'] ?? `${hostname()}-${process.pid}`, ...timings };
}

function durationFlag(flag: string, text: string): number {
  try {
    return parseDuration(text);
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
}

export async function runOperator(argv: string[]): Promise<number> {
  // Accept the Go-style --leader-elect=true|false that controller-runtime users write.
  const args = argv.flatMap((a) => (a === '--leader-elect=true' ? ['--leader-elect'] : a === '--leader-elect=false' ? [] : [a]));
  const { values } = parseArgs({
    args,
    options: {
      kubeconfig: { type: 'string' },
      namespaces: { type: 'string', default: '' },
      'metrics-bind-address': { type: 'string', default: ':8080' },
      'health-probe-bind-address': { type: 'string', default: ':8081' },
      'leader-elect': { type: 'boolean', default: false },
      'leader-election-namespace': { type: 'string' },
      'leader-election-id': { type: 'string', default: 'vm-registry-operator' },
      'leader-election-lease-duration': { type: 'string', default: '15s' },
      'leader-election-renew-deadline': { type: 'string', default: '10s' },
      'leader-election-retry-period': { type: 'string', default: '2s' },
      workers: { type: 'string', default: '4' },
      'kube-api-qps': { type: 'string', default: String(DEFAULT_KUBE_API_QPS) },
      'kube-api-burst': { type: 'string', default: String(DEFAULT_KUBE_API_BURST) },
      'log-level': { type: 'string', default: 'info' },
      'ambient-credentials-namespaces': { type: 'string', default: '' },
      'ambient-credentials-endpoints': { type: 'string', default: '' },
      'consul-max-connections-per-agent': { type: 'string', default: String(DEFAULT_POOL_LIMITS.maxConnections) },
      'consul-liveness-bound': { type: 'string', default: '15s' },
      'consul-http2-watches': { type: 'string', default: 'true' },
    },
    strict: true,
  });
  const level = values['log-level'] as LogLevel;
  if (!LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}`);
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new UsageError('--workers must be a whole number from 1 to 64');
  const leaderElection = values['leader-elect'] ? leaderElectionFrom(values) : undefined;
  let ambient;
  try {
    ambient = ambientPolicyOf(values['ambient-credentials-namespaces'], values['ambient-credentials-endpoints']);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const consul = consulOptions(values['consul-max-connections-per-agent'], values['consul-liveness-bound'], values['consul-http2-watches']);
  const client = parseClientLimit(values['kube-api-qps'], values['kube-api-burst']);
  const log = createLogger(level);
  const kc = loadKubeConfig(values.kubeconfig);
  const namespaces = values.namespaces.split(',').map((s) => s.trim()).filter(Boolean);

  const metrics = new ControllerMetrics();
  let lost = false;
  const operator = new Operator({
    kc,
    factories: builtinProviders({ consul }),
    metrics,
    log,
    namespaces,
    workers,
    ambient,
    client,
    ...(leaderElection ? { leaderElection } : {}),
    onLostLeadership: () => {
      lost = true;
      process.kill(process.pid, 'SIGTERM');
    },
  });
  // Exit with an install hint rather than watching a resource that does not exist.
  try {
    await operator.client.listPage(SOURCES, undefined, { limit: 1 });
  } catch (e) {
    const code = e instanceof KubeApiError ? e.code : undefined;
    if (code === 404) {
      log.error(`the ${PLURAL}.${GROUP} CRD is not installed; install it with: kubectl apply -k config/crd (or kubectl apply -f crds/)`);
      return 1;
    }
    if (code !== 403) throw e; // a namespace-scoped identity may not list cluster-wide; the informers will tell
  }
  const servers: Server[] = [];
  const metricsBind = parseBindAddress(values['metrics-bind-address']);
  const probeBind = parseBindAddress(values['health-probe-bind-address']);
  if (metricsBind) servers.push(await startProbeServer(metricsBind, { registry: metrics.registry }));
  if (probeBind) servers.push(await startProbeServer(probeBind, { healthy: () => true, ready: () => operator.synced }));

  const stopped = new Promise<void>((resolve) => {
    const onSignal = (sig: string): void => {
      log.info('shutting down', { signal: sig });
      resolve();
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  });
  log.info('starting', {
    namespaces: namespaces.length ? namespaces : 'all',
    leaderElection: Boolean(leaderElection),
    ambientCredentialsNamespaces: ambient.namespaces === '*' ? '*' : [...ambient.namespaces],
  });
  await operator.start();
  await stopped;
  // Resolves only after the last write has ended (also when a lost lease began the
  // stop): until then /metrics still shows every write.
  await operator.stop();
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  log.info('stopped');
  return lost ? 1 : 0;
}

/** The Consul connection cap, liveness bound and HTTP/2 watches from their flags. */
export function consulOptions(maxConnections: string, livenessBound: string, http2Watches = 'true'): PoolLimits {
  const max = Number(maxConnections);
  if (!Number.isInteger(max) || max < MIN_CONNECTIONS || max > 1000) {
    throw new UsageError(`--consul-max-connections-per-agent must be a whole number from ${MIN_CONNECTIONS} to 1000`);
  }
  let boundMs: number;
  try {
    boundMs = parseDuration(livenessBound);
  } catch (e) {
    throw new UsageError(`--consul-liveness-bound: ${(e as Error).message}`);
  }
  if (boundMs < 1000 || boundMs > 600_000) throw new UsageError('--consul-liveness-bound must be between 1s and 10m');
  if (http2Watches !== 'true' && http2Watches !== 'false') throw new UsageError('--consul-http2-watches must be true or false');
  return { maxConnections: max, livenessBoundMs: boundMs, http2Watches: http2Watches === 'true' };
}
