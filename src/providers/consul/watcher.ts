/**
 * Blocking-query watches on /v1/catalog/services and on /v1/health/service/<name> for
 * each selected service. Keeps the latest complete answer per service and calls
 * onChange (debounced) when the selected endpoints actually changed, or when the
 * watch lost or regained Consul, so the source is reconciled at once.
 *
 * With more selected services than watch slots (Consul limits connections per client),
 * the service watches take turns, and a change would wait for its service's turn. Then
 * one more blocking query on every check of the datacenter (/v1/health/state/any)
 * spots which services' health changed, and those are re-read at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsulSpec } from '../../api/types.ts';
import type { Logger } from '../../metrics/logger.ts';
import type { Endpoint } from '../provider.ts';
import { parseCatalogServices, parseCheckStates, parseHealthEntries, type CheckState } from './api-types.ts';
import type { ConsulClient } from './client.ts';
import { backoffDelay, blockingWait, isSpuriousReturn, nextIndex } from './index-rules.ts';
import { catalogQuery, endpointsOf, healthQuery, selectServices } from './selection.ts';
import { Semaphore } from './semaphore.ts';

export interface WatchTuning {
  /** Wait of one blocking query (Consul's default is 5 min; shorter finds dead connections sooner). */
  readonly waitMs: number;
  /** Blocking health queries open at once. */
  readonly maxConcurrent: number;
  readonly debounceMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

export const DEFAULT_TUNING: WatchTuning = { waitMs: 60_000, maxConcurrent: 64, debounceMs: 75, backoffBaseMs: 250, backoffMaxMs: 10_000 };

/** Services re-read at once after their checks changed, at most this many at a time. */
export const REFRESH_CONCURRENCY = 16;

/** A query that returns faster than this without a new index did not block. */
const MIN_BLOCK_MS = 100;

interface ServiceWatch {
  readonly abort: AbortController;
  /** Endpoints from the latest successful answer; undefined until the first one or after an error. */
  endpoints: Endpoint[] | undefined;
  fingerprint: string | undefined;
  filteredByAcls: boolean;
  done: Promise<void>;
}

export class ConsulWatcher {
  private readonly client: ConsulClient;
  private readonly spec: ConsulSpec;
  private readonly log: Logger;
  private readonly tuning: WatchTuning;
  private readonly onChange: () => void;
  private readonly root = new AbortController();
  private readonly slots: Semaphore;
  /** Immediate re-reads of services whose checks changed. */
  private readonly refreshSlots = new Semaphore(REFRESH_CONCURRENCY);
  private checksDone: Promise<void> | undefined;
  private readonly services = new Map<string, ServiceWatch>();
  private catalogFresh = false;
  private catalogFiltered = false;
  private catalogDone: Promise<void> | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private lastSelection = '';

  constructor(client: ConsulClient, spec: ConsulSpec, log: Logger, onChange: () => void, tuning: WatchTuning = DEFAULT_TUNING) {
    this.client = client;
    this.spec = spec;
    this.log = log;
    this.onChange = onChange;
    this.tuning = tuning;
    this.slots = new Semaphore(tuning.maxConcurrent);
  }

  start(): void {
    if (this.catalogDone) return;
    this.catalogDone = this.catalogLoop();
    this.checksDone = this.checksLoop();
  }

  /** Endpoints of every selected service when all watches hold a current answer; otherwise undefined. */
  cached(): { endpoints: Endpoint[]; filteredByAcls: boolean; services: string[] } | undefined {
    if (!this.catalogFresh || this.root.signal.aborted) return undefined;
    const endpoints: Endpoint[] = [];
    let filteredByAcls = this.catalogFiltered;
    for (const w of this.services.values()) {
      if (w.endpoints === undefined) return undefined;
      endpoints.push(...w.endpoints);
      filteredByAcls ||= w.filteredByAcls;
    }
    return { endpoints, filteredByAcls, services: [...this.services.keys()].sort() };
  }

  async close(): Promise<void> {
    this.root.abort(new Error('watch closed'));
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = undefined;
    await Promise.allSettled([this.catalogDone, this.checksDone, ...[...this.services.values()].map((w) => w.done)]);
    this.services.clear();
  }

  private notify(): void {
    if (this.root.signal.aborted) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      if (!this.root.signal.aborted) this.onChange();
    }, this.tuning.debounceMs);
  }

  /** Sleeps unless closed; returns false when closed. */
  private async pause(ms: number, signal: AbortSignal): Promise<boolean> {
    try {
      await sleep(ms, undefined, { signal });
      return true;
    } catch {
      return false;
    }
  }

  private async catalogLoop(): Promise<void> {
    const signal = this.root.signal;
    let index = 0;
    let failures = 0;
    while (!signal.aborted) {
      const sent = index;
      const started = Date.now();
      try {
        const res = await this.client.get('/v1/catalog/services', catalogQuery(this.spec), {
          operation: 'watch_catalog_services',
          signal,
          blocking: { index: sent, waitMs: this.tuning.waitMs },
        });
        const names = selectServices(parseCatalogServices(res.body), this.spec);
        index = nextIndex(sent, res.index);
        if (failures > 0) this.log.info('Consul catalog watch recovered', { after: failures });
        const recovered = failures > 0 || !this.catalogFresh;
        failures = 0;
        this.catalogFresh = true;
        this.catalogFiltered = res.filteredByAcls;
        const changed = this.applySelection(names);
        if (changed || recovered) this.notify();
        if (isSpuriousReturn(sent, res.index, Date.now() - started, MIN_BLOCK_MS)) {
          if (!(await this.pause(backoffDelay(2, this.tuning.backoffBaseMs, this.tuning.backoffMaxMs), signal))) return;
        }
      } catch (e) {
        if (signal.aborted) return;
        if (failures === 0) {
          this.log.warn('Consul catalog watch failed; retrying with backoff', { err: e });
          this.catalogFresh = false;
          this.notify();
        }
        failures += 1;
        // After an error start over: the server may have restarted with lower indexes.
        index = 0;
        if (!(await this.pause(backoffDelay(failures, this.tuning.backoffBaseMs, this.tuning.backoffMaxMs), signal))) return;
      }
    }
  }

  /** Runs only while the service watches take turns (more services than slots). */
  private async checksLoop(): Promise<void> {
    const signal = this.root.signal;
    let index = 0;
    let failures = 0;
    let previous: Map<string, string> | undefined;
    while (!signal.aborted) {
      if (this.services.size <= this.tuning.maxConcurrent) {
        index = 0;
        previous = undefined;
        if (!(await this.pause(1000, signal))) return;
        continue;
      }
      const sent = index;
      const started = Date.now();
      try {
        const res = await this.client.get('/v1/health/state/any', catalogQuery(this.spec), {
          operation: 'watch_health_state',
          signal,
          blocking: { index: sent, waitMs: this.tuning.waitMs },
        });
        index = nextIndex(sent, res.index);
        const current = serviceCheckFingerprints(parseCheckStates(res.body));
        if (previous) {
          for (const [name, w] of this.services) {
            if (current.get(name) !== previous.get(name)) void this.refresh(name, w, signal);
          }
        }
        previous = current;
        failures = 0;
        if (isSpuriousReturn(sent, res.index, Date.now() - started, MIN_BLOCK_MS)) {
          if (!(await this.pause(backoffDelay(2, this.tuning.backoffBaseMs, this.tuning.backoffMaxMs), signal))) return;
        }
      } catch (e) {
        if (signal.aborted) return;
        if (failures === 0) this.log.warn('Consul health-state watch failed; retrying with backoff', { err: e });
        failures += 1;
        index = 0;
        previous = undefined;
        if (!(await this.pause(backoffDelay(failures, this.tuning.backoffBaseMs, this.tuning.backoffMaxMs), signal))) return;
      }
    }
  }

  /** Re-reads one service now (outside its turn); its own watch catches up later. */
  private async refresh(name: string, w: ServiceWatch, signal: AbortSignal): Promise<void> {
    try {
      await this.refreshSlots.acquire(signal);
    } catch {
      return;
    }
    try {
      const res = await this.client.get(`/v1/health/service/${encodeURIComponent(name)}`, healthQuery(this.spec), { operation: 'refresh_health_service', signal });
      const endpoints = endpointsOf(parseHealthEntries(res.body, name), this.spec);
      const fingerprint = JSON.stringify(endpoints);
      if (fingerprint !== w.fingerprint && this.services.get(name) === w) {
        w.endpoints = endpoints;
        w.fingerprint = fingerprint;
        w.filteredByAcls = res.filteredByAcls;
        this.notify();
      }
    } catch (e) {
      if (!signal.aborted) this.log.debug('re-reading a Consul service failed; its watch will retry', { service: name, err: e });
    } finally {
      this.refreshSlots.release();
    }
  }

  /** Starts watches for newly selected services and stops those no longer selected. True when the set changed. */
  private applySelection(names: readonly string[]): boolean {
    const key = names.join('\u0000');
    if (key === this.lastSelection) return false;
    this.lastSelection = key;
    const keep = new Set(names);
    for (const [name, w] of this.services) {
      if (!keep.has(name)) {
        w.abort.abort(new Error('service no longer selected'));
        this.services.delete(name);
      }
    }
    for (const name of names) {
      if (this.services.has(name)) continue;
      const abort = new AbortController();
      const w: ServiceWatch = { abort, endpoints: undefined, fingerprint: undefined, filteredByAcls: false, done: Promise.resolve() };
      this.services.set(name, w);
      w.done = this.serviceLoop(name, w, AbortSignal.any([this.root.signal, abort.signal]));
    }
    return true;
  }

  private async serviceLoop(name: string, w: ServiceWatch, signal: AbortSignal): Promise<void> {
    const path = `/v1/health/service/${encodeURIComponent(name)}`;
    const query = healthQuery(this.spec);
    let index = 0;
    let failures = 0;
    while (!signal.aborted) {
      const sent = index;
      try {
        await this.slots.acquire(signal);
      } catch {
        return;
      }
      const started = Date.now();
      try {
        const waitMs = blockingWait(this.tuning.waitMs, this.services.size, this.tuning.maxConcurrent);
        const res = await this.client.get(path, query, { operation: 'watch_health_service', signal, blocking: { index: sent, waitMs } });
        this.slots.release();
        const endpoints = endpointsOf(parseHealthEntries(res.body, name), this.spec);
        index = nextIndex(sent, res.index);
        const fingerprint = JSON.stringify(endpoints);
        const changed = fingerprint !== w.fingerprint || failures > 0;
        w.endpoints = endpoints;
        w.fingerprint = fingerprint;
        w.filteredByAcls = res.filteredByAcls;
        failures = 0;
        if (changed && !signal.aborted) this.notify();
        if (isSpuriousReturn(sent, res.index, Date.now() - started, MIN_BLOCK_MS)) {
          if (!(await this.pause(backoffDelay(2, this.tuning.backoffBaseMs, this.tuning.backoffMaxMs), signal))) return;
        }
      } catch (e) {
        this.slots.release();
        if (signal.aborted) return;
        if (failures === 0) {
          this.log.warn('Consul health watch failed; retrying with backoff', { service: name, err: e });
          w.endpoints = undefined;
          this.notify();
        }
        failures += 1;
        index = 0;
        if (!(await this.pause(backoffDelay(failures, this.tuning.backoffBaseMs, this.tuning.backoffMaxMs), signal))) return;
      }
    }
  }
}

/**
 * A fingerprint of the checks of each service: its own checks and the node-level checks
 * (serfHealth, maintenance) of every node it runs on, which count for its health too.
 */
export function serviceCheckFingerprints(checks: readonly CheckState[]): Map<string, string> {
  const nodeChecks = new Map<string, string[]>();
  for (const c of checks) {
    if (c.ServiceName === '') nodeChecks.set(c.Node, [...(nodeChecks.get(c.Node) ?? []), `${c.CheckID}=${c.Status}`]);
  }
  const parts = new Map<string, string[]>();
  for (const c of checks) {
    if (c.ServiceName === '') continue;
    const list = parts.get(c.ServiceName) ?? [];
    list.push(`${c.Node}/${c.CheckID}=${c.Status}`, `${c.Node}#${(nodeChecks.get(c.Node) ?? []).sort().join(',')}`);
    parts.set(c.ServiceName, list);
  }
  return new Map([...parts].map(([name, list]) => [name, [...new Set(list)].sort().join('|')]));
}
