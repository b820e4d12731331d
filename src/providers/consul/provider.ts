/** The Consul provider: complete snapshots on demand, blocking-query watches for prompt changes. */
import type { ConsulSpec } from '../../api/types.ts';
import { parseDuration } from '../../api/duration.ts';
import type { Logger } from '../../metrics/logger.ts';
import { ProviderError } from '../errors.ts';
import { secretKey, type Endpoint, type Provider, type ProviderContext, type Snapshot } from '../provider.ts';
import { parseCatalogServices, parseHealthEntries } from './api-types.ts';
import { ConsulClient } from './client.ts';
import { catalogQuery, endpointsOf, healthQuery, selectServices } from './selection.ts';
import { ConsulWatcher, DEFAULT_TUNING, REFRESH_CONCURRENCY, type WatchTuning } from './watcher.ts';

/** Health requests in flight at once while building a snapshot without watch caches. */
const SNAPSHOT_CONCURRENCY = 16;

export const ACL_FILTERED_WARNING =
  'Consul hid some services or nodes from this ACL token (X-Consul-Results-Filtered-By-ACLs); grant service:read and node:read to see them all';

function secret(ctx: ProviderContext, ref: { name: string; key: string } | undefined, what: string): string | undefined {
  if (ref === undefined) return undefined;
  const value = ctx.secrets.get(secretKey(ref));
  if (value === undefined) {
    throw new ProviderError('consul', 'BadConfig', `${what}: key "${ref.key}" of Secret "${ref.name}" was not found`);
  }
  return value.trim();
}

export function consulSpecOf(ctx: ProviderContext): ConsulSpec {
  const spec = ctx.spec.consul;
  if (!spec) throw new ProviderError('consul', 'BadConfig', 'spec.consul is not set');
  return spec;
}

export class ConsulProvider implements Provider {
  readonly name = 'consul' as const;
  private readonly spec: ConsulSpec;
  private readonly client: ConsulClient;
  private readonly log: Logger;
  private readonly tuning: WatchTuning;
  private watcher: ConsulWatcher | undefined;
  private closed = false;

  constructor(ctx: ProviderContext, tuning: Partial<WatchTuning> = {}) {
    this.spec = consulSpecOf(ctx);
    this.log = ctx.log.with({ provider: 'consul' });
    this.tuning = { ...DEFAULT_TUNING, ...tuning };
    let timeoutMs: number;
    try {
      timeoutMs = parseDuration(this.spec.timeout);
    } catch (e) {
      throw new ProviderError('consul', 'BadConfig', `spec.consul.timeout: ${(e as Error).message}`, { cause: e });
    }
    const token = secret(ctx, this.spec.tokenSecretRef, 'spec.consul.tokenSecretRef');
    const ca = secret(ctx, this.spec.tls?.caSecretRef, 'spec.consul.tls.caSecretRef');
    this.client = new ConsulClient({
      address: this.spec.address,
      timeoutMs,
      metrics: ctx.metrics,
      // Service watches, the catalog and health-state watches, re-reads, and snapshots.
      maxSockets: this.tuning.maxConcurrent + REFRESH_CONCURRENCY + 8,
      insecureSkipVerify: this.spec.tls?.insecureSkipVerify ?? false,
      ...(token ? { token } : {}),
      ...(ca ? { ca } : {}),
      ...(this.spec.tls?.serverName ? { serverName: this.spec.tls.serverName } : {}),
      ...(this.spec.datacenter ? { datacenter: this.spec.datacenter } : {}),
      ...(this.spec.namespace ? { namespace: this.spec.namespace } : {}),
      ...(this.spec.partition ? { partition: this.spec.partition } : {}),
    });
  }

  async snapshot(signal: AbortSignal): Promise<Snapshot> {
    if (this.closed) throw new ProviderError('consul', 'BadConfig', 'provider is closed');
    const { endpoints, filteredByAcls, services } = this.watcher?.cached() ?? (await this.fetchAll(signal));
    // Consul drops what the token may not read and says so only in a header: pass it on.
    const warnings = filteredByAcls ? [ACL_FILTERED_WARNING] : [];
    return { endpoints: [...endpoints].sort(byId), unknownScopes: [], warnings, services };
  }

  watch(onChange: () => void): void {
    if (this.closed || this.watcher) return;
    this.watcher = new ConsulWatcher(this.client, this.spec, this.log, onChange, this.tuning);
    this.watcher.start();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.watcher?.close();
    this.watcher = undefined;
    this.client.close();
  }

  /** Reads everything afresh; any failed request fails the whole snapshot (never a partial list). */
  private async fetchAll(signal: AbortSignal): Promise<{ endpoints: Endpoint[]; filteredByAcls: boolean; services: string[] }> {
    const catalog = await this.client.get('/v1/catalog/services', catalogQuery(this.spec), { operation: 'catalog_services', signal });
    const names = selectServices(parseCatalogServices(catalog.body), this.spec);
    let filteredByAcls = catalog.filteredByAcls;
    const inner = new AbortController();
    const both = AbortSignal.any([signal, inner.signal]);
    const query = healthQuery(this.spec);
    const results: Endpoint[][] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < names.length) {
        const name = names[next++] as string;
        const res = await this.client.get(`/v1/health/service/${encodeURIComponent(name)}`, query, { operation: 'health_service', signal: both });
        filteredByAcls ||= res.filteredByAcls;
        results.push(endpointsOf(parseHealthEntries(res.body, name), this.spec));
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(SNAPSHOT_CONCURRENCY, names.length) }, worker));
    } catch (e) {
      inner.abort(e);
      throw e;
    }
    return { endpoints: results.flat(), filteredByAcls, services: names };
  }
}

function byId(a: Endpoint, b: Endpoint): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
