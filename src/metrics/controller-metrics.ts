/**
 * Controller metrics with controller-runtime's names (so existing dashboards work), plus
 * the operator's own. Label values are bounded: controller, result, method, code, and the
 * source as namespace/name (bounded by the number of VmRegistrySources).
 */
import { Counter, Gauge, Histogram, collectDefaultMetrics, Registry } from 'prom-client';
import { ProviderMetrics } from './provider-metrics.ts';

export class ControllerMetrics {
  readonly registry: Registry;
  readonly provider: ProviderMetrics;
  readonly reconcileTotal: Counter<'controller' | 'result'>;
  readonly reconcileErrors: Counter<'controller'>;
  readonly reconcileTime: Histogram<'controller'>;
  readonly activeWorkers: Gauge<'controller'>;
  readonly queueDepth: Gauge<'name'>;
  readonly queueAdds: Counter<'name'>;
  readonly queueRetries: Counter<'name'>;
  readonly queueDuration: Histogram<'name'>;
  readonly workDuration: Histogram<'name'>;
  readonly longestRunning: Gauge<'name'>;
  readonly restRequests: Counter<'code' | 'method' | 'host'>;
  readonly leaderStatus: Gauge<'name'>;
  readonly entries: Gauge<'source' | 'state'>;
  readonly driftCorrections: Counter<'source' | 'kind'>;
  readonly entryWrites: Counter<'operation'>;
  readonly lastSync: Gauge<'source'>;
  readonly heldBackDeletes: Gauge<'source' | 'reason'>;
  readonly fencedWrites: Counter;
  /** What the longest-running gauge reads per queue when scraped. */
  private readonly longestRunningReaders = new Map<string, () => number>();

  constructor(registry = new Registry(), options: { defaultMetrics?: boolean } = {}) {
    this.registry = registry;
    const registers = [registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
    this.provider = new ProviderMetrics(registry);
    const secondsBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    this.reconcileTotal = new Counter({ name: 'controller_runtime_reconcile_total', help: 'Total number of reconciliations per controller', labelNames: ['controller', 'result'], registers });
    this.reconcileErrors = new Counter({ name: 'controller_runtime_reconcile_errors_total', help: 'Total number of reconciliation errors per controller', labelNames: ['controller'], registers });
    this.reconcileTime = new Histogram({ name: 'controller_runtime_reconcile_time_seconds', help: 'Length of time per reconciliation per controller', labelNames: ['controller'], buckets: secondsBuckets, registers });
    this.activeWorkers = new Gauge({ name: 'controller_runtime_active_workers', help: 'Number of currently used workers per controller', labelNames: ['controller'], registers });
    this.queueDepth = new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames: ['name'], registers });
    this.queueAdds = new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames: ['name'], registers });
    this.queueRetries = new Counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames: ['name'], registers });
    this.queueDuration = new Histogram({ name: 'workqueue_queue_duration_seconds', help: 'How long in seconds an item stays in workqueue before being requested', labelNames: ['name'], buckets: secondsBuckets, registers });
    this.workDuration = new Histogram({ name: 'workqueue_work_duration_seconds', help: 'How long in seconds processing an item from workqueue takes', labelNames: ['name'], buckets: secondsBuckets, registers });
    const readers = this.longestRunningReaders;
    this.longestRunning = new Gauge({
      name: 'workqueue_longest_running_processor_seconds',
      help: 'How many seconds has the longest running processor for workqueue been running',
      labelNames: ['name'],
      registers,
      collect() {
        for (const [name, read] of readers) this.set({ name }, read());
      },
    });
    this.restRequests = new Counter({ name: 'rest_client_requests_total', help: 'Number of HTTP requests, partitioned by status code, method, and host', labelNames: ['code', 'method', 'host'], registers });
    this.leaderStatus = new Gauge({ name: 'leader_election_master_status', help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master', labelNames: ['name'], registers });
    this.entries = new Gauge({ name: 'vmregistry_workload_entries', help: 'WorkloadEntries per source: desired, managed, conflicts, skipped', labelNames: ['source', 'state'], registers });
    this.driftCorrections = new Counter({ name: 'vmregistry_drift_corrections_total', help: 'Managed WorkloadEntries put back after a change or deletion by someone else', labelNames: ['source', 'kind'], registers });
    this.entryWrites = new Counter({ name: 'vmregistry_workload_entry_writes_total', help: 'Writes of WorkloadEntries by operation (create, update, delete, status)', labelNames: ['operation'], registers });
    this.lastSync = new Gauge({ name: 'vmregistry_last_sync_timestamp_seconds', help: 'Unix time of the last successful sync per source', labelNames: ['source'], registers });
    this.heldBackDeletes = new Gauge({ name: 'vmregistry_held_back_deletes', help: 'Deletions of the last sync not made, by reason (DeletionGuard, Policy, UnknownScope)', labelNames: ['source', 'reason'], registers });
    this.fencedWrites = new Counter({ name: 'vmregistry_fenced_writes_total', help: 'Writes refused or aborted in flight because this replica was not, or no longer, the confirmed leader', registers });
    for (const result of ['success', 'error', 'requeue', 'requeue_after'] as const) this.reconcileTotal.inc({ controller: 'vmregistrysource', result }, 0);
    this.reconcileErrors.inc({ controller: 'vmregistrysource' }, 0);
    for (const operation of ['create', 'update', 'delete', 'status']) this.entryWrites.inc({ operation }, 0);
  }

  /** The longest-running gauge of queue `name` reads `read` when scraped (not on a timer that wakes the process every second); returns the undo. */
  observeLongestRunning(name: string, read: () => number): () => void {
    this.longestRunningReaders.set(name, read);
    return () => this.longestRunningReaders.delete(name);
  }

  restRequest(method: string, code: string, host: string): void {
    this.restRequests.inc({ method, code, host });
  }

  /** Count of write requests (POST, PUT, PATCH, DELETE) made so far. */
  async writeCount(): Promise<number> {
    const m = await this.restRequests.get();
    return m.values.filter((v) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(String(v.labels['method']))).reduce((a, v) => a + v.value, 0);
  }
}
