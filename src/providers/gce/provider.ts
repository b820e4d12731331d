/**
 * Reads instances from Compute Engine into a Snapshot: the whole project through the
 * aggregated list, or the listed zones one by one. A zone the API reports with a
 * warning (other than "no results on this page") or as unreachable is unknown, never
 * empty: its entries are kept as they are until the zone answers again.
 */
import type { ProviderMetrics } from '../../metrics/provider-metrics.ts';
import { ProviderError } from '../errors.ts';
import type { Endpoint, Provider, Snapshot } from '../provider.ts';
import type { GceClient, GceInstance, GceWarning } from './client.ts';
import { toProviderError } from './errors.ts';
import { instanceToEndpoint, shortName, type LabelOptions } from './labels.ts';

export const NO_RESULTS_ON_PAGE = 'NO_RESULTS_ON_PAGE';
/** Compute's largest page. */
export const MAX_PAGE_SIZE = 500;
/** A guard against a server that hands out page tokens forever. */
const MAX_PAGES = 10_000;

export interface GceProviderOptions {
  readonly project: string;
  /** Empty: every zone through the aggregated list. */
  readonly zones: readonly string[];
  readonly filter?: string | undefined;
  readonly labels: LabelOptions;
  readonly metrics: ProviderMetrics;
  readonly pageSize?: number;
  /** Listed zones read at the same time. */
  readonly zoneConcurrency?: number;
  /** Creates the client on first use (so a bad key or endpoint surfaces as a sync error). */
  readonly client: () => GceClient;
}

/**
 * Whether the user's filter decides about status. If not, only RUNNING instances are
 * reported: a stopped VM keeps its internal address, and a WorkloadEntry pointing at it
 * would receive traffic it cannot serve. The check is done here rather than by adding
 * "status = RUNNING" to the filter, because Compute refuses filters that mix the
 * regular-expression (eq/ne) and the comparison syntax.
 */
export function filterNamesStatus(filter: string | undefined): boolean {
  return filter !== undefined && /(^|[\s(])status\s*(!=|=|:|<|>|\beq\b|\bne\b)/i.test(filter);
}

function warningText(zone: string, w: GceWarning): string {
  return `zone ${zone} is unknown: ${w.code ?? 'WARNING'}${w.message ? `: ${w.message}` : ''}`;
}

export class GceProvider implements Provider {
  readonly name = 'gce' as const;
  private readonly opts: GceProviderOptions;
  private readonly runningOnly: boolean;
  private client: GceClient | undefined;

  constructor(opts: GceProviderOptions) {
    this.opts = opts;
    this.runningOnly = !filterNamesStatus(opts.filter);
  }

  async snapshot(signal: AbortSignal): Promise<Snapshot> {
    this.client ??= this.opts.client();
    try {
      return this.opts.zones.length === 0
        ? await this.aggregated(this.client, signal)
        : await this.listedZones(this.client, this.opts.zones, signal);
    } catch (e) {
      if (signal.aborted) throw new ProviderError('gce', 'Timeout', `listing instances of project ${this.opts.project} was cancelled`, { cause: e });
      throw e;
    }
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.close();
  }

  private toEndpoint(instance: GceInstance, zone: string): Endpoint | undefined {
    if (this.runningOnly && instance.status !== 'RUNNING') return undefined;
    // The zone of the list it came in is authoritative when the record lacks one.
    return instanceToEndpoint(instance.zone ? instance : { ...instance, zone }, this.opts.labels);
  }

  private get pageSize(): number {
    return this.opts.pageSize ?? MAX_PAGE_SIZE;
  }

  private async aggregated(client: GceClient, signal: AbortSignal): Promise<Snapshot> {
    const { project, filter, metrics } = this.opts;
    const endpoints = new Map<string, Endpoint>();
    const unknown = new Map<string, string>();
    const what = `aggregatedList of project ${project}`;
    let pageToken: string | undefined;
    const seenTokens = new Set<string>();
    for (let page = 0; ; page++) {
      if (page >= MAX_PAGES) throw new ProviderError('gce', 'BadResponse', `${what}: more than ${MAX_PAGES} pages`);
      const request = { project, filter, maxResults: this.pageSize, ...(pageToken ? { pageToken } : {}) };
      const result = await metrics.track('gce', 'aggregatedList', async () => {
        try {
          return await client.aggregatedListPage(request, signal);
        } catch (e) {
          throw toProviderError(e, what);
        }
      });
      for (const [scope, scoped] of Object.entries(result.items)) {
        if (!scope.startsWith('zones/')) continue;
        const zone = shortName(scope);
        const w = scoped.warning;
        if (w?.code && w.code !== NO_RESULTS_ON_PAGE) {
          unknown.set(zone, warningText(zone, w));
          continue;
        }
        for (const instance of scoped.instances ?? []) {
          const ep = this.toEndpoint(instance, zone);
          if (ep) endpoints.set(ep.id, ep);
        }
      }
      for (const u of result.unreachables) {
        const zone = shortName(u);
        if (!unknown.has(zone)) unknown.set(zone, `zone ${zone} is unknown: listed as unreachable by the Compute API`);
      }
      pageToken = result.nextPageToken;
      if (!pageToken) break;
      if (seenTokens.has(pageToken)) throw new ProviderError('gce', 'BadResponse', `${what}: the API repeated a page token`);
      seenTokens.add(pageToken);
    }
    return this.result(endpoints, unknown);
  }

  private async listedZones(client: GceClient, zones: readonly string[], signal: AbortSignal): Promise<Snapshot> {
    const endpoints = new Map<string, Endpoint>();
    const unknown = new Map<string, string>();
    const failures: ProviderError[] = [];
    const distinct = [...new Set(zones)];
    const queue = [...distinct];
    const worker = async (): Promise<void> => {
      for (let zone = queue.shift(); zone !== undefined; zone = queue.shift()) {
        try {
          const r = await this.listZone(client, zone, signal);
          if (r.warning) unknown.set(zone, r.warning);
          else for (const ep of r.endpoints) endpoints.set(ep.id, ep);
        } catch (e) {
          const err = toProviderError(e, `list of zone ${zone}`);
          failures.push(err);
          unknown.set(zone, `zone ${zone} is unknown: ${err.kind}: ${err.message}`);
        }
      }
    };
    const n = Math.max(1, Math.min(this.opts.zoneConcurrency ?? 4, queue.length));
    await Promise.all(Array.from({ length: n }, worker));
    // Every zone failed: that is no answer at all, not a set of unknown zones.
    const first = failures[0];
    if (first && failures.length === distinct.length) throw first;
    return this.result(endpoints, unknown);
  }

  private async listZone(client: GceClient, zone: string, signal: AbortSignal): Promise<{ endpoints: Endpoint[]; warning?: string }> {
    const { project, filter, metrics } = this.opts;
    const endpoints: Endpoint[] = [];
    const seenTokens = new Set<string>();
    let pageToken: string | undefined;
    for (let page = 0; ; page++) {
      if (page >= MAX_PAGES) throw new ProviderError('gce', 'BadResponse', `list of zone ${zone}: more than ${MAX_PAGES} pages`);
      const request = { project, zone, filter, maxResults: this.pageSize, ...(pageToken ? { pageToken } : {}) };
      const result = await metrics.track('gce', 'list', async () => {
        try {
          return await client.listPage(request, signal);
        } catch (e) {
          throw toProviderError(e, `list of zone ${zone}`);
        }
      });
      const w = result.warning;
      if (w?.code && w.code !== NO_RESULTS_ON_PAGE) return { endpoints: [], warning: warningText(zone, w) };
      for (const instance of result.items) {
        const ep = this.toEndpoint(instance, zone);
        if (ep) endpoints.push(ep);
      }
      pageToken = result.nextPageToken;
      if (!pageToken) return { endpoints };
      if (seenTokens.has(pageToken)) throw new ProviderError('gce', 'BadResponse', `list of zone ${zone}: the API repeated a page token`);
      seenTokens.add(pageToken);
    }
  }

  private result(endpoints: Map<string, Endpoint>, unknown: Map<string, string>): Snapshot {
    // Instances reported for an unknown zone are dropped: that zone is left as it is.
    const known = [...endpoints.values()].filter((ep) => !unknown.has(ep.scope));
    known.sort((a, b) => (a.scope === b.scope ? a.id.localeCompare(b.id) : a.scope.localeCompare(b.scope)));
    const zones = [...unknown.keys()].sort();
    return { endpoints: known, unknownScopes: zones, warnings: zones.map((z) => unknown.get(z) ?? '') };
  }
}
