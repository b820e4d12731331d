/**
 * Finds the services whose instances were added or removed from one request:
 * /v1/internal/ui/services (the summary Consul's UI reads) lists per service its node
 * names, instance count, tags and check counts, for the whole catalog. Comparing two
 * answers says which services to read again, instead of probing every cached service.
 * An in-place change of an instance on the same node (address, port, meta) does not
 * change the summary: the sweep (sweep.ts) is left for those.
 */
import { createHash } from 'node:crypto';
import { ProviderError } from '../errors.ts';
import { forEachElement, stringAt } from './json-bytes.ts';

export const UI_SERVICES_PATH = '/v1/internal/ui/services';

/** Service name → a digest of its summary (equal digests: no instance was added or removed). */
export type ServiceSummaries = ReadonlyMap<string, string>;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function missing(i: number, field: string): ProviderError {
  return new ProviderError('consul', 'BadResponse', `GET ${UI_SERVICES_PATH}: entry ${i} has no ${field}`);
}

function names(v: unknown): string {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').sort().join(',') : '';
}

const COUNTS = ['InstanceCount', 'ChecksPassing', 'ChecksWarning', 'ChecksCritical'] as const;

/** Parses the summary; throws when a field it relies on is missing (an older or restricted Consul). */
export function parseServiceSummaries(body: unknown): ServiceSummaries {
  if (!Array.isArray(body)) throw new ProviderError('consul', 'BadResponse', `GET ${UI_SERVICES_PATH}: answer is not a list`);
  const out = new Map<string, string>();
  body.forEach((raw: unknown, i) => {
    if (!isRecord(raw) || typeof raw['Name'] !== 'string') throw missing(i, 'Name');
    const counts = COUNTS.map((field) => {
      const n = raw[field];
      if (typeof n !== 'number') throw missing(i, field);
      return n;
    });
    const nodes = raw['Nodes'];
    if (nodes !== null && !Array.isArray(nodes)) throw missing(i, 'Nodes');
    const name = raw['Name'];
    const digest = `${counts.join('/')}|${names(nodes)}|${names(raw['Tags'])}`;
    // Several entries per name (namespaces or partitions listed together) count as one.
    const before = out.get(name);
    out.set(name, before === undefined ? digest : `${before};${digest}`);
  });
  return out;
}

const SUMMARY_FIELDS = ['Name', 'Nodes', ...COUNTS];
const SUMMARY_KEYS = SUMMARY_FIELDS.map((k) => Buffer.from(k));

/**
 * parseServiceSummaries over the raw answer (MBs at fleet size, read on every catalog
 * move): one pass over its bytes (json-bytes.ts), with a digest of each entry's bytes in
 * place of the parsed fields. Consul lists nodes and tags sorted, so an unchanged
 * service's entry keeps its bytes; any change to it (also one the parsed digest would
 * ignore) only reads the service once more.
 */
export function scanServiceSummaries(buf: Buffer): ServiceSummaries {
  const out = new Map<string, string>();
  let i = 0;
  forEachElement(buf, SUMMARY_KEYS, `GET ${UI_SERVICES_PATH}`, (values, entry) => {
    const name = stringAt(buf, values[0]);
    if (name === undefined) throw missing(i, 'Name');
    values.forEach((v, k) => {
      if (v === undefined) throw missing(i, SUMMARY_FIELDS[k] as string);
    });
    const digest = createHash('sha1').update(buf.subarray(entry.start, entry.end)).digest('base64');
    const before = out.get(name);
    out.set(name, before === undefined ? digest : `${before};${digest}`);
    i += 1;
  });
  return out;
}

/** The wanted services whose summary differs between two answers (also those new or gone). */
export function changedSummaries(before: ServiceSummaries, after: ServiceSummaries, wanted: Iterable<string>): string[] {
  const out: string[] = [];
  for (const name of wanted) if (before.get(name) !== after.get(name)) out.push(name);
  return out;
}
