/**
 * Where a provider would send what it authenticates with. The controller compares these
 * destinations with what a Secret consents to (its `vmregistry.io/allowed-endpoints`
 * annotation) and with what the admin allows for the operator's own identity, before a
 * provider is created: see src/controller/consent.ts and docs/security.md.
 *
 * A destination is written as a consent entry, in one normal form so that comparing
 * strings is comparing places:
 * - an origin `scheme://host[:port]` (http or https; host lower-cased, IDNs in punycode,
 *   IPv6 in brackets, numeric IPv4 forms canonical, the scheme's default port left out);
 * - `aws:<region>` for the AWS default endpoints of a region (EC2 and STS as the SDK
 *   resolves them, including AWS_ENDPOINT_URL_* set by the admin in the operator's environment).
 */
import type { ProviderName } from '../api/types.ts';
import { ProviderError } from './errors.ts';

export interface CredentialDestination {
  /** The consent entry in normal form. */
  readonly entry: string;
  /** The field that sends credentials there, for messages, e.g. "spec.ec2.endpoint". */
  readonly field: string;
  /** An endpoint the spec overrides, as opposed to the registry's built-in default. */
  readonly override: boolean;
}

export interface CredentialUse {
  /** Every place the credentials (from a Secret, or the operator's own) would reach. */
  readonly destinations: readonly CredentialDestination[];
  /** No credential Secret is named and the provider would authenticate as the operator itself. */
  readonly ambient: boolean;
}

/** The origin of an http(s) URL in normal form; the URL parser undoes spelling tricks (case, userinfo, IP forms). */
export function originOf(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  if (u.hostname === '') return undefined;
  return `${u.protocol}//${u.host}`;
}

/** originOf for a spec field: an unusable URL is a BadConfig of that field. */
export function originOfField(provider: ProviderName, field: string, url: string): string {
  const origin = originOf(url);
  if (origin === undefined) throw new ProviderError(provider, 'BadConfig', `${field} must be an http or https URL`);
  return origin;
}

export function awsRegionEntry(region: string): string {
  return `aws:${region.toLowerCase()}`;
}

/** Drops repeated entries, keeping the first field that named each. */
export function distinctDestinations(list: readonly CredentialDestination[]): CredentialDestination[] {
  const seen = new Map<string, CredentialDestination>();
  for (const d of list) if (!seen.has(d.entry)) seen.set(d.entry, d);
  return [...seen.values()];
}
