/**
 * The Consul provider of one source: a subscriber of the shared feed of its endpoint
 * and read scope. Snapshots come from the feed's cache while its blocking queries keep
 * confirming it within the interval (each waits at most 0.4 × the interval, and the
 * sweep for in-place edits runs at most that far apart), so the interval really bounds
 * staleness; else from a full read of this source's services. A frozen endpoint fails
 * snapshots at once. Changes are passed on at once: the work queue coalesces them.
 */
import { parseDuration } from '../../api/duration.ts';
import type { ConsulSpec } from './spec-schema.ts';
import type { Logger } from '../../metrics/logger.ts';
import { ProviderError } from '../errors.ts';
import { secretKey, type Endpoint, type EndpointGroup, type Provider, type ProviderContext, type Snapshot } from '../provider.ts';
import type { CatalogServices, HealthEntry } from './api-types.ts';
import type { FeedLease, ConsulHub } from './hub.ts';
import type { FeedSubscriber, ServiceAnswer } from './feed.ts';
import { endpointsOf, selectServices } from './selection.ts';

export const ACL_FILTERED_WARNING =
  'Consul hid some services or nodes from this ACL token (X-Consul-Results-Filtered-By-ACLs); grant service:read and node:read to see them all';

/** The cache serves snapshots while the feed's watches confirmed it within this share of the interval. */
const CACHE_SHARE_OF_INTERVAL = 0.8;

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

function durationOf(value: string, field: string): number {
  try {
    return parseDuration(value);
  } catch (e) {
    throw new ProviderError('consul', 'BadConfig', `${field}: ${(e as Error).message}`, { cause: e });
  }
}

export class ConsulProvider implements Provider, FeedSubscriber {
  readonly name = 'consul' as const;
  readonly timeoutMs: number;
  private readonly spec: ConsulSpec;
  readonly intervalMs: number;
  private readonly log: Logger;
  private readonly lease: FeedLease;
  private unsubscribe: () => void;
  private onChange: (() => void) | undefined;
  /** A change notification is queued for the next turn of the event loop. */
  private notifyQueued = false;
  private closed = false;
  private lastSelected: ReadonlySet<string> = new Set();
  /** Keyed by the answer's entries, which the feed keeps while a service's answer does not change. */
  private readonly groupMemo = new WeakMap<readonly HealthEntry[], EndpointGroup>();

  constructor(ctx: ProviderContext, hub: ConsulHub) {
    this.spec = consulSpecOf(ctx);
    this.log = ctx.log.with({ provider: 'consul' });
    this.timeoutMs = durationOf(this.spec.timeout, 'spec.consul.timeout');
    this.intervalMs = durationOf(ctx.spec.interval, 'spec.interval');
    const token = secret(ctx, this.spec.tokenSecretRef, 'spec.consul.tokenSecretRef');
    const ca = secret(ctx, this.spec.tls?.caSecretRef, 'spec.consul.tls.caSecretRef');
    this.lease = hub.acquire(
      {
        address: this.spec.address,
        insecureSkipVerify: this.spec.tls?.insecureSkipVerify ?? false,
        ...(ca ? { ca } : {}),
        ...(this.spec.tls?.serverName ? { serverName: this.spec.tls.serverName } : {}),
      },
      {
        nodeMeta: this.spec.nodeMeta ?? {},
        ...(token ? { token } : {}),
        ...(this.spec.datacenter ? { datacenter: this.spec.datacenter } : {}),
        ...(this.spec.namespace ? { namespace: this.spec.namespace } : {}),
        ...(this.spec.partition ? { partition: this.spec.partition } : {}),
      },
      { metrics: ctx.metrics, log: this.log },
    );
    this.unsubscribe = this.lease.feed.subscribe(this);
  }

  get watching(): boolean {
    return this.onChange !== undefined && !this.closed;
  }

  select(catalog: CatalogServices): readonly string[] {
    return selectServices(catalog, this.spec);
  }

  changed(services: ReadonlySet<string> | undefined, ownRead: boolean): void {
    if (this.closed) return;
    let relevant = services === undefined;
    if (services !== undefined) {
      const selected = this.lease.feed.viewSelection(this);
      for (const name of services) {
        if (!selected.has(name) && !this.lastSelected.has(name)) continue;
        relevant = true;
        break;
      }
    }
    if (relevant && !ownRead && this.onChange) this.notifySoon();
  }

  async snapshot(signal: AbortSignal): Promise<Snapshot> {
    if (this.closed) throw new ProviderError('consul', 'BadConfig', 'provider is closed');
    const { pool, feed } = this.lease;
    if (!pool.alive) throw pool.downError();
    // The cache serves while the blocking queries run and confirmed it within the interval.
    if (!this.watching || !feed.isCurrent(this, this.intervalMs * CACHE_SHARE_OF_INTERVAL)) await feed.fullRead(signal, this);
    let view = feed.viewFor(this);
    if (!view) {
      // This source joined while a read was under way, or the catalog selected new services since.
      await feed.readMissing(this, signal);
      view = feed.viewFor(this);
    }
    if (!view) throw new ProviderError('consul', 'BadResponse', 'the catalog changed while it was read; retrying');
    const groups: EndpointGroup[] = [];
    for (const answer of view.answers.values()) groups.push(this.groupOf(answer));
    this.lastSelected = new Set(view.answers.keys());
    // Consul drops what the token may not read and says so only in a header: pass it on.
    const warnings = view.filteredByAcls ? [ACL_FILTERED_WARNING] : [];
    // Every selected service, also one none of whose instances passed: its ServiceEntry is kept.
    const services = [...view.answers.keys()].sort();
    // In the order of the answers: the mapping orders what it needs to.
    return {
      // Built on each use and not kept: the operator maps the groups (preview reads this).
      get endpoints() {
        return groups.flatMap((g) => g.endpoints());
      },
      groups,
      unknownScopes: [],
      warnings,
      services,
    };
  }

  watch(onChange: () => void): void {
    if (this.closed || this.onChange) return;
    this.onChange = onChange;
    // Re-subscribing tells the feed that this source now watches.
    this.unsubscribe();
    this.unsubscribe = this.lease.feed.subscribe(this);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onChange = undefined;
    this.unsubscribe();
    await this.lease.release();
  }

  private groupOf(answer: ServiceAnswer): EndpointGroup {
    let group = this.groupMemo.get(answer.entries);
    if (!group) {
      const { entries } = answer;
      const spec = this.spec;
      // Built once for the count and handed to the first caller (the mapping), then not kept.
      let built: Endpoint[] | undefined = endpointsOf(entries, spec);
      group = {
        size: built.length,
        endpoints: () => {
          const endpoints = built ?? endpointsOf(entries, spec);
          built = undefined;
          return endpoints;
        },
      };
      this.groupMemo.set(entries, group);
    }
    return group;
  }

  /** Once per turn of the event loop: the changes the feed tells in one go make one call. */
  private notifySoon(): void {
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    setImmediate(() => {
      this.notifyQueued = false;
      if (!this.closed) this.onChange?.();
    });
  }
}
