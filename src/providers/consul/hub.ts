/**
 * Shares Consul connections across sources: one AgentPool per endpoint (address and TLS
 * settings) and one CatalogFeed per endpoint and read scope, reference-counted, closed
 * when the last source using them goes away.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../metrics/logger.ts';
import type { ProviderMetrics } from '../../metrics/provider-metrics.ts';
import type { BlockingTuning } from './blocking-loop.ts';
import { parseAddress, type ConsulEndpoint } from './client.ts';
import { CatalogFeed, scopeKey, type FeedScope } from './feed.ts';
import { AgentPool, DEFAULT_POOL_LIMITS, type PoolLimits } from './pool.ts';

export const DEFAULT_BLOCKING_TUNING: BlockingTuning = { waitMs: 60_000, backoffBaseMs: 250, backoffMaxMs: 10_000 };

export interface HubOptions extends PoolLimits {
  readonly tuning: BlockingTuning;
}

export const DEFAULT_HUB_OPTIONS: HubOptions = { ...DEFAULT_POOL_LIMITS, tuning: DEFAULT_BLOCKING_TUNING };

export interface FeedLease {
  readonly pool: AgentPool;
  readonly feed: CatalogFeed;
  release(): Promise<void>;
}

interface Counted<T> {
  readonly value: T;
  refs: number;
}

/** Equal for endpoints that can share sockets; the CA is hashed, never kept as a key. */
export function endpointKey(endpoint: ConsulEndpoint): string {
  const url = parseAddress(endpoint.address);
  const ca = endpoint.ca === undefined ? '' : createHash('sha256').update(endpoint.ca).digest('hex');
  return JSON.stringify([url.protocol, url.host, url.pathname.replace(/\/$/, ''), ca, endpoint.serverName ?? '', endpoint.insecureSkipVerify === true]);
}

export class ConsulHub {
  readonly options: HubOptions;
  private readonly pools = new Map<string, Counted<AgentPool>>();
  private readonly feeds = new Map<string, Counted<CatalogFeed>>();

  constructor(options: Partial<HubOptions> = {}) {
    this.options = { ...DEFAULT_HUB_OPTIONS, ...options };
  }

  acquire(endpoint: ConsulEndpoint, scope: FeedScope, deps: { metrics?: ProviderMetrics; log: Logger }): FeedLease {
    const ek = endpointKey(endpoint);
    let pool = this.pools.get(ek);
    if (!pool) {
      pool = { value: new AgentPool(endpoint, this.options, deps.metrics), refs: 0 };
      this.pools.set(ek, pool);
    }
    const fk = `${ek}\u0000${scopeKey(scope)}`;
    let feed = this.feeds.get(fk);
    if (!feed) {
      feed = { value: new CatalogFeed(pool.value, scope, deps.log, this.options.tuning), refs: 0 };
      this.feeds.set(fk, feed);
    }
    pool.refs += 1;
    feed.refs += 1;
    let released = false;
    const thePool = pool;
    const theFeed = feed;
    return {
      pool: pool.value,
      feed: feed.value,
      release: async () => {
        if (released) return;
        released = true;
        if (--theFeed.refs === 0) {
          this.feeds.delete(fk);
          await theFeed.value.close();
        }
        if (--thePool.refs === 0) {
          thePool.value.close();
          this.pools.delete(ek);
        }
      },
    };
  }

  /** Endpoints with an open pool (for tests and metrics). */
  get poolCount(): number {
    return this.pools.size;
  }

  get feedCount(): number {
    return this.feeds.size;
  }

  /** Summary and node-list reads the feeds left out because service watches explained the moves (for tests and diagnostics). */
  get readsSpared(): number {
    return [...this.feeds.values()].reduce((n, f) => n + f.value.readsSpared, 0);
  }

  /** Services watched one by one, over all feeds (for tests and diagnostics). */
  get servicesWatched(): number {
    return [...this.feeds.values()].reduce((n, f) => n + f.value.watchedServices.size, 0);
  }

  /** Endpoints whose service watches travel as HTTP/2 streams (for tests and diagnostics). */
  get multiplexedEndpoints(): number {
    return [...this.pools.values()].filter((p) => p.value.multiplexed).length;
  }

  /** Feeds with a sweep pass under way (for tests and diagnostics). */
  get feedsSweeping(): number {
    return [...this.feeds.values()].filter((f) => f.value.sweepPassRunning).length;
  }
}
