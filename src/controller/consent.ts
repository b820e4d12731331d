/**
 * Credentials only with consent. A Secret's values are sent to a registry only if the
 * Secret itself lists that registry in its `vmregistry.io/allowed-endpoints` annotation,
 * so a user who may write VmRegistrySources but not Secrets cannot make the operator send
 * a credential anywhere new. The operator's own identity (AWS default chain, Google ADC)
 * is used only in the namespaces, and for the endpoint overrides, the admin allows.
 * The format and the reasons are in docs/security.md.
 */
import { originOf, type CredentialDestination, type CredentialUse } from '../providers/credential-use.ts';

export const ALLOWED_ENDPOINTS_ANNOTATION = 'vmregistry.io/allowed-endpoints';

/** A refusal: the reconciler reports `reason` on ProviderReady and as a Warning Event. */
export class ConsentError extends Error {
  override readonly name = 'ConsentError';
  readonly reason: 'SecretNotPermitted' | 'AmbientCredentialsNotPermitted';
  constructor(reason: ConsentError['reason'], message: string) {
    super(message);
    this.reason = reason;
  }
}

export interface ParsedEntries {
  /** Entries in normal form. */
  readonly allowed: ReadonlySet<string>;
  /** Entries that are neither an http(s) origin nor aws:<region>, as written. */
  readonly invalid: readonly string[];
}

const AWS_REGION_ENTRY = /^aws:[a-z0-9]+(-[a-z0-9]+)*$/;

/**
 * One consent entry in normal form, or undefined when it is not one. An origin must be
 * exactly scheme://host[:port] (a trailing "/" is tolerated): a path, query, fragment,
 * user info or wildcard makes the entry invalid rather than silently wider or narrower.
 */
export function normaliseEntry(raw: string): string | undefined {
  const text = raw.trim();
  const lower = text.toLowerCase();
  if (lower.startsWith('aws:')) return AWS_REGION_ENTRY.test(lower) ? lower : undefined;
  if (!/^https?:\/\/[^/\\?#@*\s]+\/?$/i.test(text)) return undefined;
  return originOf(text);
}

/** Parses a comma- or whitespace-separated list of entries (the annotation, or a flag). */
export function parseEntries(value: string | undefined): ParsedEntries {
  const allowed = new Set<string>();
  const invalid: string[] = [];
  for (const raw of (value ?? '').split(/[,\s]+/)) {
    if (raw === '') continue;
    const entry = normaliseEntry(raw);
    if (entry === undefined) invalid.push(raw);
    else allowed.add(entry);
  }
  return { allowed, invalid };
}

/** A Secret a source names for credentials, as read at this reconcile. */
export interface CredentialSecret {
  readonly namespace: string;
  readonly name: string;
  /** The annotation's value; undefined when the Secret has none. */
  readonly allowedEndpoints: string | undefined;
}

/**
 * Throws SecretNotPermitted unless the Secret consents to every destination. The message
 * names the annotation and the exact value that would allow this use.
 */
export function checkSecretConsent(secret: CredentialSecret, destinations: readonly CredentialDestination[]): void {
  const { allowed, invalid } = parseEntries(secret.allowedEndpoints);
  const missing = destinations.filter((d) => !allowed.has(d.entry));
  if (missing.length === 0) return;
  const wanted = [...allowed, ...missing.map((d) => d.entry)];
  const where = missing.map((d) => `${d.entry} (${d.field})`).join(', ');
  const current = secret.allowedEndpoints === undefined ? 'has no annotation ' + ALLOWED_ENDPOINTS_ANNOTATION : `allows only "${[...allowed].join(',')}"`;
  const bad = invalid.length > 0 ? `; ignored invalid entries ${invalid.map((i) => JSON.stringify(i)).join(', ')}` : '';
  throw new ConsentError(
    'SecretNotPermitted',
    `Secret ${secret.namespace}/${secret.name} does not permit sending its values to ${where}: it ${current}${bad}. ` +
      `If the Secret's owner agrees, annotate it: kubectl annotate secret ${secret.name} -n ${secret.namespace} --overwrite ${ALLOWED_ENDPOINTS_ANNOTATION}=${wanted.join(',')}`,
  );
}

/** Where the operator's own identity may be used (flags of `vmreg run`). Default: nowhere. */
export interface AmbientPolicy {
  /** Namespaces whose sources may use it; '*' for all. */
  readonly namespaces: ReadonlySet<string> | '*';
  /** Endpoint overrides (normal form) it may be sent to; default endpoints need no entry. */
  readonly endpoints: ReadonlySet<string>;
}

export const NO_AMBIENT: AmbientPolicy = { namespaces: new Set(), endpoints: new Set() };

export class AmbientPolicyError extends Error {
  override readonly name = 'AmbientPolicyError';
}

/** Builds the policy from the flag values; invalid endpoint entries are an error at start-up. */
export function ambientPolicyOf(namespaces: string, endpoints: string): AmbientPolicy {
  const nsList = namespaces.split(',').map((s) => s.trim()).filter(Boolean);
  const parsed = parseEntries(endpoints);
  if (parsed.invalid.length > 0) {
    throw new AmbientPolicyError(`--ambient-credentials-endpoints: not an http(s) origin (scheme://host[:port]) or aws:<region>: ${parsed.invalid.join(', ')}`);
  }
  return { namespaces: nsList.includes('*') ? '*' : new Set(nsList), endpoints: parsed.allowed };
}

/** Throws AmbientCredentialsNotPermitted unless the admin allows this use of the operator's identity. */
export function checkAmbient(policy: AmbientPolicy, namespace: string, use: CredentialUse): void {
  if (!use.ambient) return;
  const nsAllowed = policy.namespaces === '*' || policy.namespaces.has(namespace);
  if (!nsAllowed) {
    throw new ConsentError(
      'AmbientCredentialsNotPermitted',
      `this source names no credentials Secret, and the operator's own identity is not allowed for sources in namespace ${namespace}. ` +
        `Name a Secret (annotated ${ALLOWED_ENDPOINTS_ANNOTATION}), or ask the cluster admin to add ${namespace} to the operator's --ambient-credentials-namespaces`,
    );
  }
  const refused = use.destinations.filter((d) => d.override && !policy.endpoints.has(d.entry));
  if (refused.length > 0) {
    throw new ConsentError(
      'AmbientCredentialsNotPermitted',
      `the operator's own identity is not sent to the overridden endpoint ${refused.map((d) => `${d.entry} (${d.field})`).join(', ')}. ` +
        `Name a Secret (annotated ${ALLOWED_ENDPOINTS_ANNOTATION}), or ask the cluster admin to add it to the operator's --ambient-credentials-endpoints`,
    );
  }
}
