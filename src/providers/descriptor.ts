/**
 * What a provider says about itself: everything the operator needs before the provider's
 * module is loaded. The CRD (spec.<name>, the exactly-one-provider rule, the enum of
 * status.provider), validation and the status reasons are derived from the registered
 * descriptors; the heavy module (client library included) is imported by load() only
 * when a source names the provider.
 *
 * A descriptor module must stay light: it may import src/api and its own spec schema,
 * never its provider's implementation or a client library (use a dynamic import in load).
 */
import type { RegisteredProviderSchema } from '../api/source-api.ts';
import type { JsonSchema } from '../api/schema-types.ts';
import type { ProviderName, ProviderSpecInput, ProviderSpecSchemas } from '../api/types.ts';
import type { HubOptions } from './consul/hub.ts';
import type { ProviderFactory } from './provider.ts';

/** Operator-wide settings for providers, from `vmreg run` flags; a provider reads only its own. */
export interface ProviderOptions {
  /** Connection cap and liveness bound shared by every Consul source. */
  readonly consul?: Partial<HubOptions>;
}

export interface ProviderDescriptor<N extends ProviderName = ProviderName> extends RegisteredProviderSchema {
  /** The spec field (spec.<name>), the value of status.provider and the metrics label. */
  readonly name: N;
  /** The schema of spec.<name>; also declared in ProviderSpecSchemas for the types. */
  readonly specSchema: ProviderSpecSchemas[N] & JsonSchema;
  /** Prefix of the status reasons of this provider's failures, e.g. "Consul" for ConsulUnauthorized. */
  readonly reasonPrefix: string;
  /** A small valid spec.<name>, for docs and tests. */
  readonly sample: ProviderSpecInput<N>;
  /** Imports the provider's module and returns its factory (called once, on first use). */
  load(options: ProviderOptions): Promise<ProviderFactory>;
}
