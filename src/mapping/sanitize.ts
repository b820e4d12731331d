/**
 * Kubernetes syntax rules the mapping engine needs: label keys and values, DNS-1123
 * names, and WorkloadEntry addresses. Sanitising never throws: a key that cannot be
 * made valid yields null so the caller can count it.
 */
import { isIP } from 'node:net';

/** Longest label name (the part after the optional prefix) and label value. */
export const MAX_LABEL_LENGTH = 63;
/** Longest DNS-1123 subdomain, which bounds a label key prefix. */
export const MAX_SUBDOMAIN_LENGTH = 253;

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// Labels of a DNS name: case-insensitive, because registries report host names as they were registered.
const HOST_LABEL = /^[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?$/;

// Characters outside the label alphabet, one code point at a time (so "é" becomes one "_").
const NOT_LABEL_CHAR = /[^A-Za-z0-9._-]/gu;
const NOT_DNS_CHAR = /[^a-z0-9.-]/gu;
const LEADING_NON_ALNUM = /^[^A-Za-z0-9]+/;
const TRAILING_NON_ALNUM = /[^A-Za-z0-9]+$/;

export function isDns1123Label(s: string): boolean {
  return s.length <= MAX_LABEL_LENGTH && DNS1123_LABEL.test(s);
}

export function isDns1123Subdomain(s: string): boolean {
  if (s.length === 0 || s.length > MAX_SUBDOMAIN_LENGTH) return false;
  for (const part of s.split('.')) if (!isDns1123Label(part)) return false;
  return true;
}

export function isValidLabelKey(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash < 0) return LABEL_NAME.test(key);
  return isDns1123Subdomain(key.slice(0, slash)) && LABEL_NAME.test(key.slice(slash + 1));
}

export function isValidLabelValue(value: string): boolean {
  return LABEL_VALUE.test(value);
}

function trimToAlnum(s: string): string {
  return s.replace(LEADING_NON_ALNUM, '').replace(TRAILING_NON_ALNUM, '');
}

/** Replaces invalid characters with "_", trims to alphanumeric ends, cuts to 63. Empty stays empty. */
export function sanitizeLabelValue(value: string): string {
  if (isValidLabelValue(value)) return value;
  const cleaned = trimToAlnum(value.replace(NOT_LABEL_CHAR, '_'));
  return cleaned.length <= MAX_LABEL_LENGTH ? cleaned : cleaned.slice(0, MAX_LABEL_LENGTH).replace(TRAILING_NON_ALNUM, '');
}

/**
 * A label key prefix made into a DNS subdomain: lower-cased, other characters become
 * "-", each dot-separated part trimmed to alphanumeric ends and 63 characters, empty
 * parts dropped. Returns "" when nothing valid is left.
 */
function sanitizePrefix(prefix: string): string {
  const parts: string[] = [];
  let length = -1;
  for (const raw of prefix.toLowerCase().replace(NOT_DNS_CHAR, '-').split('.')) {
    const part = trimToAlnum(raw).slice(0, MAX_LABEL_LENGTH).replace(TRAILING_NON_ALNUM, '');
    if (part === '') continue;
    if (length + 1 + part.length > MAX_SUBDOMAIN_LENGTH) break;
    parts.push(part);
    length += 1 + part.length;
  }
  return parts.join('.');
}

/**
 * A valid Kubernetes label key made from `key`, or null when none can be made (nothing
 * alphanumeric in the name, or a prefix with nothing alphanumeric). The prefix ends at
 * the first "/"; later slashes belong to the name and become "_".
 */
export function sanitizeLabelKey(key: string): string | null {
  if (isValidLabelKey(key)) return key;
  const slash = key.indexOf('/');
  const rawName = slash < 0 ? key : key.slice(slash + 1);
  const name = sanitizeLabelValue(rawName);
  if (name === '') return null;
  if (slash < 0) return name;
  const prefix = sanitizePrefix(key.slice(0, slash));
  return prefix === '' ? null : `${prefix}/${name}`;
}

/**
 * A DNS-1123 label fragment for readable names: lower-cased, runs of other characters
 * become one "-", no "-" at either end. May be empty; callers add what makes it unique.
 */
export function toDnsLabelFragment(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/gu, '-')
    .replace(/^-+|-+$/g, '');
}

export type AddressKind = 'ipv4' | 'ipv6' | 'dns';

export interface ParsedAddress {
  /** The address as the WorkloadEntry gets it (DNS names lower-cased, IPv6 lower-cased). */
  readonly address: string;
  readonly kind: AddressKind;
  /** Canonical form for duplicate detection: equal keys are the same host. */
  readonly key: string;
}

/**
 * Validates a WorkloadEntry address: IPv4, IPv6 (without zone or brackets) or a DNS name
 * (labels of letters, digits and "-", at most 253 characters, an optional trailing dot,
 * a last label that is not all digits so a malformed IPv4 is never taken for a name).
 */
export function parseAddress(raw: string): ParsedAddress | null {
  const family = isIP(raw);
  if (family === 4) return { address: raw, kind: 'ipv4', key: raw };
  if (family === 6) {
    if (raw.includes('%')) return null; // zone ids are local to one host
    const address = raw.toLowerCase();
    // The URL parser prints IPv6 in its compressed canonical form.
    return { address, kind: 'ipv6', key: new URL(`http://[${address}]/`).hostname };
  }
  const name = (raw.endsWith('.') ? raw.slice(0, -1) : raw).toLowerCase();
  if (name.length === 0 || name.length > MAX_SUBDOMAIN_LENGTH) return null;
  const labels = name.split('.');
  for (const label of labels) if (!HOST_LABEL.test(label)) return null;
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? '')) return null;
  return { address: name, kind: 'dns', key: name };
}
