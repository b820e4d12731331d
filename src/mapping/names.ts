/**
 * Deterministic WorkloadEntry names: `<source>-<service or endpoint>-<hash>`. The hash
 * covers only the source name and the endpoint id, so the name is unique per endpoint
 * and survives restarts; the readable part is for people and may be cut.
 */
import { createHash } from 'node:crypto';
import { MAX_LABEL_LENGTH, toDnsLabelFragment } from './sanitize.ts';

export const NAME_HASH_LENGTH = 10;
// Room left for the readable part: the hash and the "-" before it.
const READABLE_MAX = MAX_LABEL_LENGTH - NAME_HASH_LENGTH - 1;

/** 10 hex characters of SHA-256 over the source name and the endpoint id. */
export function endpointHash(sourceName: string, endpointId: string): string {
  // NUL cannot occur in a Kubernetes name, so ("a", "b\0c") and ("a\0b", "c") differ.
  return createHash('sha256').update(`${sourceName}\0${endpointId}`).digest('hex').slice(0, NAME_HASH_LENGTH);
}

/**
 * The WorkloadEntry name of an endpoint: a DNS-1123 label of at most 63 characters.
 * `service` is the endpoint's service name when it has one (else the endpoint id is
 * used for the readable part).
 */
export function workloadEntryName(sourceName: string, endpointId: string, service?: string): string {
  const hash = endpointHash(sourceName, endpointId);
  const what = service !== undefined && service !== '' ? service : endpointId;
  const readable = toDnsLabelFragment(`${sourceName}-${what}`).slice(0, READABLE_MAX).replace(/-+$/, '');
  return readable === '' ? hash : `${readable}-${hash}`;
}
