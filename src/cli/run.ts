/** `vmreg run`: the operator. */
import { hostname } from 'node:os';
import type { Server } from 'node:http';
import { parseArgs } from 'node:util';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../api/types.ts';
import { Operator } from '../controller/operator.ts';
import { ControllerMetrics } from '../metrics/controller-metrics.ts';
import { createLogger, type LogLevel } from '../metrics/logger.ts';
import { parseBindAddress, startProbeServer } from '../metrics/server.ts';
import { parseDuration } from '../api/duration.ts';
import { createConsulProviderFactory } from '../providers/consul/index.ts';
import { DEFAULT_POOL_LIMITS, MIN_CONNECTIONS, type PoolLimits } from '../providers/consul/pool.ts';
import { builtinProviders } from '../providers/index.ts';
import { UsageError } from './errors.ts';
import { loadKubeConfig } from './kubeconfig.ts';

export const RUN_HELP = `vmreg run — run the operator

Options:
  --kubeconfig PATH                  kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster)
  --namespaces a,b                   watch only these namespaces (default: all)
  --metrics-bind-address ADDR        serve /metrics here (default :8080; 0 disables)
  --health-probe-bind-address ADDR   serve /healthz and /readyz here (default :8081; 0 disables)
  --leader-elect                     use a Lease so only one replica writes (default false)
  --leader-election-namespace NS     namespace of the Lease (default $POD_NAMESPACE)
  --leader-election-id NAME          name of the Lease (default vm-registry-operator)
  --workers N                        sources reconciled in parallel (default 4)
  --log-level debug|info|warn|error  (default info)
  --consul-max-connections-per-agent N
                                     sockets open at once to one Consul endpoint, shared by
                                     every source (default 64; Consul refuses more than 200
                                     per client address by default)
  --consul-liveness-bound DURATION   a Consul endpoint that has not answered for this long
                                     makes its sources ProviderReady=False (default 15s)
`;

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

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
      workers: { type: 'string', default: '4' },
      'log-level': { type: 'string', default: 'info' },
      'consul-max-connections-per-agent': { type: 'string', default: String(DEFAULT_POOL_LIMITS.maxConnections) },
      'consul-liveness-bound': { type: 'string', default: '15s' },
    },
    strict: true,
  });
  const level = values['log-level'] as LogLevel;
  if (!LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}`);
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new UsageError('--workers must be a whole number from 1 to 64');
  const consul = consulOptions(values['consul-max-connections-per-agent'], values['consul-liveness-bound']);
  const log = createLogger(level);
  const kc = loadKubeConfig(values.kubeconfig);
  const namespaces = values.namespaces.split(',').map((s) => s.trim()).filter(Boolean);

  // Exit with an install hint rather than watching a resource that does not exist.
  try {
    await kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, limit: 1 });
  } catch (e) {
    const code = (e as { code?: number }).code;
    if (code === 404) {
      log.error(`the ${PLURAL}.${GROUP} CRD is not installed; install it with: kubectl apply -k config/crd (or kubectl apply -f crds/)`);
      return 1;
    }
    if (code !== 403) throw e; // a namespace-scoped identity may not list cluster-wide; the informers will tell
  }

  let leaderElection;
  if (values['leader-elect']) {
    const ns = values['leader-election-namespace'] ?? process.env['POD_NAMESPACE'];
    if (!ns) throw new UsageError('--leader-elect needs --leader-election-namespace or $POD_NAMESPACE');
    leaderElection = { namespace: ns, name: values['leader-election-id'], identity: process.env['POD_NAME'] ?? `${hostname()}-${process.pid}` };
  }
  const metrics = new ControllerMetrics();
  let lost = false;
  const operator = new Operator({
    kc,
    factories: new Map(builtinProviders()).set('consul', createConsulProviderFactory(consul)),
    metrics,
    log,
    namespaces,
    workers,
    ...(leaderElection ? { leaderElection } : {}),
    onLostLeadership: () => {
      lost = true;
      process.kill(process.pid, 'SIGTERM');
    },
  });
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
  log.info('starting', { namespaces: namespaces.length ? namespaces : 'all', leaderElection: Boolean(leaderElection) });
  await operator.start();
  await stopped;
  await operator.stop();
  for (const s of servers) s.close();
  log.info('stopped');
  return lost ? 1 : 0;
}

/** The Consul connection cap and liveness bound from their flags. */
export function consulOptions(maxConnections: string, livenessBound: string): PoolLimits {
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
  return { maxConnections: max, livenessBoundMs: boundMs };
}
