/**
 * Wiring of the controller: informers on VmRegistrySources and on managed
 * WorkloadEntries feed a keyed work queue; workers reconcile keys; only the leader
 * (when leader election is on) starts them. Stopping finishes in-flight reconciles
 * before returning, then releases the lease.
 */
import type { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { SERVICE_ENTRIES, WORKLOAD_ENTRIES, type ServiceEntry, type WorkloadEntry } from '../api/istio.ts';
import { SOURCES, type VmRegistrySource } from '../api/types.ts';
import type { ControllerMetrics } from '../metrics/controller-metrics.ts';
import type { Logger } from '../metrics/logger.ts';
import type { ProviderFactories } from '../providers/registry.ts';
import { FIELD_MANAGER, MANAGED_SELECTOR, SOURCE_LABEL } from '../api/ownership.ts';
import { slimObject, slimSource, slimWorkloadEntry } from '../apply/slim.ts';
import { ResilientInformer, type InformerEvent } from '../runtime/informer.ts';
import { KubeClient, type KubeClientOptions } from '../runtime/kube-client.ts';
import { LeaderElector, type LeaderElectionTimings } from '../runtime/leader-election.ts';
import { WorkQueue } from '../runtime/work-queue.ts';
import { WriteFence } from '../runtime/write-fence.ts';
import type { AmbientPolicy } from './consent.ts';
import { EventRecorder } from './events.ts';
import { Reconciler, TerminalError } from './reconciler.ts';

const CONTROLLER = 'vmregistrysource';

export interface OperatorOptions {
  readonly kc: KubeConfig;
  readonly factories: ProviderFactories;
  readonly metrics: ControllerMetrics;
  readonly log: Logger;
  /** Namespaces to watch; empty: all. */
  readonly namespaces?: readonly string[];
  readonly workers?: number;
  readonly leaderElection?: { readonly namespace: string; readonly name: string; readonly identity: string } & LeaderElectionTimings;
  readonly client?: KubeClientOptions;
  readonly resyncPeriodMs?: number;
  /** Where the operator's own cloud identity may be used (`--ambient-credentials-*`); default nowhere. */
  readonly ambient?: AmbientPolicy;
  /** Called when leadership is lost; the process should exit (as controller-runtime does). */
  readonly onLostLeadership?: () => void;
}

export class Operator {
  private readonly o: OperatorOptions;
  readonly client: KubeClient;
  readonly queue: WorkQueue;
  private readonly reconciler: Reconciler;
  private readonly sourceInformers: ResilientInformer<VmRegistrySource>[] = [];
  private readonly entryInformers: ResilientInformer<WorkloadEntry>[] = [];
  private readonly serviceEntryInformers: ResilientInformer<ServiceEntry>[] = [];
  private readonly elector: LeaderElector | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private workersStarted = false;
  private stopping: Promise<void> | undefined;
  private stopLongestRunning: (() => void) | undefined;
  /** Labels and annotations of each source as last seen, to tell a status-only update. */
  private readonly sourceMetadata = new Map<string, string>();

  constructor(options: OperatorOptions) {
    this.o = options;
    // With leader election nothing is written until this replica leads.
    const fence = new WriteFence(!options.leaderElection, () => options.metrics.fencedWrites.inc());
    this.client = new KubeClient(options.kc, FIELD_MANAGER, options.metrics, options.client, fence);
    this.queue = new WorkQueue(CONTROLLER, options.metrics);
    const events = new EventRecorder(this.client, options.log);
    this.reconciler = new Reconciler({
      client: this.client,
      getSource: (ns, name) => this.sourceInformers.map((i) => i.get(name, ns)).find((s) => s !== undefined),
      listManaged: (ns) => this.entryInformers.flatMap((i) => i.list(ns)),
      getManaged: (ns, name) => this.entryInformers.map((i) => i.get(name, ns)).find((e) => e !== undefined),
      listServiceEntries: (ns) => this.serviceEntryInformers.flatMap((i) => i.list(ns)),
      factories: options.factories,
      metrics: options.metrics,
      log: options.log,
      events,
      enqueue: (key) => this.queue.add(key),
      ...(options.resyncPeriodMs !== undefined ? { resyncPeriodMs: options.resyncPeriodMs } : {}),
      ...(options.ambient !== undefined ? { ambient: options.ambient } : {}),
    });
    for (const namespace of this.watchedNamespaces()) {
      this.sourceInformers.push(
        new ResilientInformer<VmRegistrySource>({
          client: this.client,
          type: SOURCES,
          ...(namespace !== undefined ? { namespace } : {}),
          log: options.log.with({ informer: 'vmregistrysources' }),
          slim: slimSource,
          onEvent: (event, s) => {
            const key = `${s.metadata.namespace}/${s.metadata.name}`;
            // A new or changed spec asks the registry again. An update of the status alone
            // (the echo of the reconciler's own status write) asks nothing; any other change
            // (labels, annotations: `kubectl annotate` to sync now) is reconciled.
            const specChanged = event === 'add' || s.metadata.generation !== s.status?.observedGeneration;
            if (specChanged) this.reconciler.markStale(key);
            const metadataChanged = this.seeMetadata(event, key, s);
            const statusOnly = event === 'update' && !specChanged && !metadataChanged && s.metadata.deletionTimestamp === undefined;
            if (!statusOnly) this.queue.add(key);
          },
        }),
      );
    }
    for (const namespace of this.watchedNamespaces()) {
      this.entryInformers.push(
        new ResilientInformer<WorkloadEntry>({
          client: this.client,
          type: WORKLOAD_ENTRIES,
          ...(namespace !== undefined ? { namespace } : {}),
          labelSelector: MANAGED_SELECTOR,
          log: options.log.with({ informer: 'workloadentries' }),
          slim: slimWorkloadEntry,
          onEvent: (event, e) => {
            const source = e.metadata.labels?.[SOURCE_LABEL];
            if (!source) return;
            const key = `${e.metadata.namespace}/${source}`;
            this.reconciler.noteEntry(key, e.metadata.name);
            if (!this.reconciler.isSettled(key, event, e)) this.queue.add(key);
          },
        }),
      );
    }
    // ServiceEntries: every one of the namespace is planned against (ours) or checked for
    // clashing names and hosts (the others); an edit or deletion of ours is put back at once.
    for (const namespace of this.watchedNamespaces()) {
      this.serviceEntryInformers.push(
        new ResilientInformer<ServiceEntry>({
          client: this.client,
          type: SERVICE_ENTRIES,
          ...(namespace !== undefined ? { namespace } : {}),
          slim: slimObject,
          log: options.log.with({ informer: 'serviceentries' }),
          onEvent: (_event, se) => {
            const source = se.metadata.labels?.[SOURCE_LABEL];
            if (source) this.queue.add(`${se.metadata.namespace}/${source}`);
          },
        }),
      );
    }
    if (options.leaderElection) {
      this.elector = new LeaderElector({
        client: this.client,
        fence,
        ...options.leaderElection,
        log: options.log.with({ component: 'leader-election' }),
        onStartedLeading: () => this.startWorkers(),
        onStoppedLeading: () => {
          void this.stop();
          options.onLostLeadership?.();
        },
        onLeaderStatus: (leading) => options.metrics.leaderStatus.set({ name: options.leaderElection?.name ?? '' }, leading ? 1 : 0),
      });
      // A standby reports 0 from the start (as controller-runtime does), so "no replica leads" is visible.
      options.metrics.leaderStatus.set({ name: options.leaderElection.name }, 0);
    }
  }

  /** Remembers a source's labels and annotations; true when they differ from the last seen. */
  private seeMetadata(event: InformerEvent, key: string, s: VmRegistrySource): boolean {
    if (event === 'delete') return this.sourceMetadata.delete(key);
    const seen = JSON.stringify([s.metadata.labels ?? {}, s.metadata.annotations ?? {}]);
    const changed = this.sourceMetadata.get(key) !== seen;
    this.sourceMetadata.set(key, seen);
    return changed;
  }

  /** The namespaces informers list and watch: each one named, or (undefined) the whole cluster. */
  private watchedNamespaces(): readonly (string | undefined)[] {
    const namespaces = this.o.namespaces ?? [];
    return namespaces.length === 0 ? [undefined] : namespaces;
  }

  /** True once the caches are filled (readiness). */
  get synced(): boolean {
    return [...this.sourceInformers, ...this.entryInformers, ...this.serviceEntryInformers].every((i) => i.synced);
  }

  get isLeader(): boolean {
    return this.elector ? this.elector.isLeader : this.workersStarted;
  }

  async start(): Promise<void> {
    // Caches fill on every replica, so a standby takes over with warm caches.
    await Promise.all([...this.entryInformers, ...this.serviceEntryInformers, ...this.sourceInformers].map((i) => i.start()));
    this.stopLongestRunning = this.o.metrics.observeLongestRunning(CONTROLLER, () => this.queue.longestRunningSeconds());
    if (this.elector) this.elector.start();
    else this.startWorkers();
  }

  private startWorkers(): void {
    if (this.workersStarted || this.stopping !== undefined) return;
    this.workersStarted = true;
    for (const informer of this.sourceInformers) {
      for (const s of informer.list()) this.queue.add(`${s.metadata.namespace}/${s.metadata.name}`);
    }
    for (let i = 0; i < (this.o.workers ?? 4); i++) void this.worker();
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const run = this.process(key);
      this.inflight.add(run);
      await run;
      this.inflight.delete(run);
    }
  }

  private async process(key: string): Promise<void> {
    const m = this.o.metrics;
    m.activeWorkers.inc({ controller: CONTROLLER });
    const end = m.reconcileTime.startTimer({ controller: CONTROLLER });
    const log = this.o.log.with({ source: key });
    try {
      const outcome = await this.reconciler.reconcile(key, this.abort.signal);
      this.queue.forget(key);
      if (outcome.requeueAfterMs !== undefined) {
        m.reconcileTotal.inc({ controller: CONTROLLER, result: 'requeue_after' });
        // The snapshot is then old enough to be read again; reconciles in between reuse it.
        this.queue.addAfter(key, outcome.requeueAfterMs);
      } else {
        m.reconcileTotal.inc({ controller: CONTROLLER, result: 'success' });
      }
    } catch (e) {
      m.reconcileTotal.inc({ controller: CONTROLLER, result: 'error' });
      m.reconcileErrors.inc({ controller: CONTROLLER });
      if (e instanceof TerminalError) {
        log.warn('reconcile failed; waiting for a spec change', { error: e });
        this.queue.forget(key);
      } else {
        const delay = this.queue.addRateLimited(key, this.reconciler.intervalOf(key));
        this.reconciler.markStale(key);
        log.warn('reconcile failed; retrying', { error: e, retryInMs: delay });
      }
    } finally {
      end();
      m.activeWorkers.dec({ controller: CONTROLLER });
      this.queue.done(key);
    }
  }

  /**
   * Graceful stop: no new work and no new campaign, in-flight reconciles finish, the last
   * write ends, then the lease is released. Every caller waits for the same stop.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutDown();
    return this.stopping;
  }

  private async shutDown(): Promise<void> {
    this.elector?.stopCampaigning();
    this.queue.shutDown();
    this.stopLongestRunning?.();
    await Promise.all([...this.inflight]);
    await Promise.all([...this.sourceInformers, ...this.entryInformers, ...this.serviceEntryInformers].map((i) => i.stop()));
    await this.reconciler.close();
    this.abort.abort();
    const settled = (): Promise<void> => this.client.writesSettled();
    if (this.elector) {
      await this.elector.stop(settled);
    } else {
      await settled();
      this.client.fence.close('shutting down');
      await settled();
    }
    await this.client.close();
  }
}
