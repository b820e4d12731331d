/**
 * The one interface every registry implements. A provider only reads its registry and
 * describes endpoints; mapping, planning and writing live in src/mapping, src/plan and src/apply.
 */
import type { ProviderName, RelabelRule, VmRegistrySourceSpec } from '../api/types.ts';
import type { ProviderMetrics } from '../metrics/provider-metrics.ts';
import type { Logger } from '../metrics/logger.ts';
import type { CredentialUse } from './credential-use.ts';
import type { ProviderDescriptor } from './descriptor.ts';

/**
 * One endpoint (VM instance, service instance) as the registry reports it, described
 * with labels in Prometheus service-discovery vocabulary:
 * - `__address__`: the address chosen by the provider's address setting (IP or DNS name; may be empty);
 * - `__port__`: the port the registry reports, if any;
 * - `__meta_<provider>_*`: everything else the registry knows (service, tags, zone, ...).
 * Provider defaults (mapping.ts) and the user's relabel rules turn these into a WorkloadEntry.
 */
export interface Endpoint {
  /** Identity that is stable while the endpoint exists: Consul node+service id, EC2 instance id, GCE instance id. */
  readonly id: string;
  /** A scope the endpoint belongs to (Consul service, GCE zone). See Snapshot.unknownScopes. */
  readonly scope: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The registry's health verdict, when it has one (Consul health checks). */
  readonly healthy?: boolean;
  /**
   * Registry data the provider could not read as it is (e.g. a bad ports tag). The
   * engine skips such an endpoint with these reasons instead of using part of it.
   */
  readonly problems?: readonly string[];
}

/**
 * A complete answer from the registry. Providers never return partial data as if it
 * were complete: when a part could not be read, its scope is listed in unknownScopes,
 * and entries in those scopes are neither updated nor deleted by this sync.
 */
export interface Snapshot {
  readonly endpoints: readonly Endpoint[];
  /**
   * The same endpoints in groups that keep their identity while unchanged (Consul: one
   * per service answer), so a sync maps and plans only the groups that changed
   * (mapping/grouped.ts). Omitted by providers that read everything afresh.
   */
  readonly groups?: readonly EndpointGroup[];
  readonly unknownScopes: readonly string[];
  /** Why scopes are unknown (e.g. a GCE zone warning), for the status message. */
  readonly warnings: readonly string[];
  /**
   * Service names the registry lists, including services none of whose instances was
   * selected (Consul: all unhealthy in exclude mode). Their ServiceEntries are kept.
   * Omitted by providers without a service catalog (a service then ends with its last instance).
   */
  readonly services?: readonly string[];
  /**
   * When the registry was read (ms since the epoch). Providers that serve from a cache
   * set the time of the read behind it; otherwise the controller stamps the time it got
   * the snapshot. The reconciler compares the age with the source's interval.
   */
  readonly readAt?: number;
}

/**
 * Endpoints that change together (a Consul service's instances). The group object stays
 * the same while its endpoints do; they are built when asked for and not kept, so a
 * source's labels are not held in memory beside the registry's answer they come from.
 */
export interface EndpointGroup {
  /** How many endpoints endpoints() returns. */
  readonly size: number;
  endpoints(): readonly Endpoint[];
}

/** How many endpoints a snapshot holds, without building grouped ones. */
export function endpointCount(snapshot: Snapshot): number {
  return snapshot.groups === undefined ? snapshot.endpoints.length : snapshot.groups.reduce((n, g) => n + g.size, 0);
}

export interface Provider {
  readonly name: ProviderName;
  /** Reads the registry. Throws ProviderError when no complete answer could be had. */
  snapshot(signal: AbortSignal): Promise<Snapshot>;
  /**
   * Watching providers (Consul) call onChange when the registry changed, so the source
   * is reconciled at once instead of at the next interval. Polling providers omit it.
   */
  watch?(onChange: () => void): void;
  /** Stops watches and frees clients. */
  close(): Promise<void>;
}

/** A Secret key a provider needs, resolved by the controller before create(). */
export interface SecretKeyReference {
  readonly name: string;
  readonly key: string;
  /**
   * `credential` (the default): sent to the registry in some form, so the Secret must
   * consent to the destination. `trust`: only read to verify the registry (a CA bundle),
   * never sent anywhere; needs no consent.
   */
  readonly use?: 'credential' | 'trust';
}

export interface ProviderContext {
  /** "namespace/name" of the VmRegistrySource, for logs and errors. */
  readonly source: string;
  readonly spec: VmRegistrySourceSpec;
  /** Resolved Secret values, keyed by secretKey(ref). */
  readonly secrets: ReadonlyMap<string, string>;
  readonly metrics: ProviderMetrics;
  readonly log: Logger;
}

export function secretKey(ref: SecretKeyReference): string {
  return `${ref.name}/${ref.key}`;
}

export interface ProviderFactory {
  /** The provider this factory serves: its name, schema and status reasons. */
  readonly descriptor: ProviderDescriptor;
  /** Secret keys the spec refers to; the controller reads them and passes the values in. */
  secretRefs(spec: VmRegistrySourceSpec): SecretKeyReference[];
  create(ctx: ProviderContext): Provider;
  /**
   * Where this spec would send credentials, checked by the controller before create().
   * `secrets` holds the resolved credential values (a GCE key names its token endpoint).
   * Throws ProviderError(BadConfig) when a destination field is not a usable URL.
   */
  credentialUse(spec: VmRegistrySourceSpec, secrets: ReadonlyMap<string, string>): CredentialUse;
  /** Default relabel rules that map this provider's __meta_* labels to WorkloadEntry fields. */
  defaultMapping(spec: VmRegistrySourceSpec): RelabelRule[];
  /** Annotations every WorkloadEntry of this spec carries (Consul's health-checks switch); none when omitted. */
  entryAnnotations?(spec: VmRegistrySourceSpec): Record<string, string>;
}
