/**
 * The narrow view of the Compute Engine API the provider depends on: one page of an
 * aggregated list, one page of a zone's list. The real implementation wraps
 * the REST API (compute-client.ts); unit tests pass a fake.
 */

/** A warning as Compute Engine attaches it to a list or to one zone of an aggregated list. */
export interface GceWarning {
  readonly code?: string | null;
  readonly message?: string | null;
  readonly data?: ReadonlyArray<{ readonly key?: string | null; readonly value?: string | null }> | null;
}

export interface GceAccessConfig {
  readonly natIP?: string | null;
}

export interface GceNetworkInterface {
  readonly name?: string | null;
  readonly network?: string | null;
  readonly subnetwork?: string | null;
  readonly networkIP?: string | null;
  readonly accessConfigs?: readonly GceAccessConfig[] | null;
}

/** The fields of a Compute Engine instance the provider reads (ids as decimal strings). */
export interface GceInstance {
  readonly id?: string | null;
  readonly name?: string | null;
  readonly status?: string | null;
  readonly zone?: string | null;
  readonly machineType?: string | null;
  readonly networkInterfaces?: readonly GceNetworkInterface[] | null;
  readonly labels?: Readonly<Record<string, string>> | null;
  readonly metadata?: { readonly items?: ReadonlyArray<{ readonly key?: string | null; readonly value?: string | null }> | null } | null;
  readonly tags?: { readonly items?: readonly string[] | null } | null;
  readonly serviceAccounts?: ReadonlyArray<{ readonly email?: string | null }> | null;
}

export interface ScopedInstances {
  readonly instances?: readonly GceInstance[] | null;
  readonly warning?: GceWarning | null;
}

export interface AggregatedPage {
  /** Keyed by scope, e.g. "zones/europe-west1-b". */
  readonly items: Readonly<Record<string, ScopedInstances>>;
  /** Scopes the API could not reach (e.g. "zones/europe-west1-b"). */
  readonly unreachables: readonly string[];
  readonly nextPageToken?: string;
}

export interface ZonePage {
  readonly items: readonly GceInstance[];
  readonly warning?: GceWarning | null;
  readonly nextPageToken?: string;
}

export interface ListRequest {
  readonly project: string;
  readonly filter?: string;
  readonly maxResults?: number;
  readonly pageToken?: string;
}

export interface GceClient {
  aggregatedListPage(request: ListRequest, signal: AbortSignal): Promise<AggregatedPage>;
  listPage(request: ListRequest & { readonly zone: string }, signal: AbortSignal): Promise<ZonePage>;
  close(): Promise<void>;
}
