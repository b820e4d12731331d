/**
 * The parts of Consul's HTTP API answers the provider reads, checked at the boundary
 * (a wrong shape is a BadResponse, never a silently empty list).
 */
import { ValuePool } from '../../runtime/value-pool.ts';
import { ProviderError } from '../errors.ts';

export interface HealthNode {
  readonly Node: string;
  readonly Address: string;
  readonly Datacenter: string;
  readonly Meta: Readonly<Record<string, string>>;
  readonly TaggedAddresses: Readonly<Record<string, string>>;
}

export interface HealthService {
  readonly ID: string;
  readonly Service: string;
  readonly Tags: readonly string[];
  readonly Address: string;
  readonly Port: number;
  readonly Meta: Readonly<Record<string, string>>;
  readonly Namespace?: string;
  readonly Partition?: string;
}

export interface HealthCheck {
  readonly CheckID: string;
  readonly Status: string;
  readonly ServiceID: string;
}

/** One element of GET /v1/health/service/<name>. */
export interface HealthEntry {
  readonly Node: HealthNode;
  readonly Service: HealthService;
  readonly Checks: readonly HealthCheck[];
}

/** GET /v1/catalog/services: service name → union of its instances' tags. */
export type CatalogServices = ReadonlyMap<string, readonly string[]>;

function bad(what: string): ProviderError {
  return new ProviderError('consul', 'BadResponse', `unexpected answer from Consul: ${what}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/**
 * Answers are kept (the feed's cache), one per instance: the values that instances
 * repeat (datacenter, tags, meta, check ids and statuses, service names) are kept once,
 * a tagged address equal to the node's address is that same string, and an empty map
 * is one shared object. Unique values (ids, addresses) are not pooled.
 */
const pool = new ValuePool();
const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

function pooled(v: unknown): string {
  return pool.string(str(v));
}

function strMap(v: unknown, sameAs?: string): Readonly<Record<string, string>> {
  if (!isRecord(v)) return EMPTY;
  let out: Record<string, string> | undefined;
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') continue;
    out ??= {};
    out[k] = val === sameAs ? sameAs : pool.string(val);
  }
  return out ?? EMPTY;
}

function strList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').map((x) => pool.string(x)) : [];
}

export function parseCatalogServices(body: unknown): CatalogServices {
  if (!isRecord(body)) throw bad('catalog services is not an object');
  const out = new Map<string, readonly string[]>();
  for (const [name, tags] of Object.entries(body)) out.set(name, strList(tags));
  return out;
}

export function parseHealthEntries(body: unknown, service: string): HealthEntry[] {
  if (!Array.isArray(body)) throw bad(`health of service "${service}" is not a list`);
  return body.map((raw: unknown, i): HealthEntry => {
    if (!isRecord(raw) || !isRecord(raw['Node']) || !isRecord(raw['Service'])) throw bad(`health entry ${i} of "${service}" lacks Node or Service`);
    const n = raw['Node'];
    const s = raw['Service'];
    const port = s['Port'];
    const nodeAddress = str(n['Address']);
    const serviceAddress = str(s['Address']);
    const entry: HealthEntry = {
      Node: {
        Node: str(n['Node']),
        Address: nodeAddress,
        Datacenter: pooled(n['Datacenter']),
        Meta: strMap(n['Meta']),
        TaggedAddresses: strMap(n['TaggedAddresses'], nodeAddress),
      },
      Service: {
        ID: str(s['ID']),
        Service: pooled(s['Service']),
        Tags: strList(s['Tags']),
        Address: serviceAddress === nodeAddress ? nodeAddress : serviceAddress,
        Port: typeof port === 'number' && Number.isInteger(port) ? port : 0,
        Meta: strMap(s['Meta']),
        ...(typeof s['Namespace'] === 'string' && s['Namespace'] !== '' ? { Namespace: s['Namespace'] } : {}),
        ...(typeof s['Partition'] === 'string' && s['Partition'] !== '' ? { Partition: s['Partition'] } : {}),
      },
      Checks: (Array.isArray(raw['Checks']) ? raw['Checks'] : []).filter(isRecord).map((c) => ({
        // Node-level checks (no service id) have the same id on every node.
        CheckID: str(c['ServiceID']) === '' ? pooled(c['CheckID']) : str(c['CheckID']),
        Status: pooled(c['Status']),
        ServiceID: str(c['ServiceID']),
      })),
    };
    if (entry.Node.Node === '' || entry.Service.ID === '') throw bad(`health entry ${i} of "${service}" has no node name or service id`);
    return entry;
  });
}

/** One health check as /v1/health/state/any lists it (only what change detection needs). */
export interface CheckState {
  readonly Node: string;
  readonly CheckID: string;
  readonly Status: string;
  readonly ServiceName: string;
}

export function parseCheckStates(body: unknown): CheckState[] {
  if (!Array.isArray(body)) throw bad('health state is not a list');
  return body.filter(isRecord).map((c) => ({ Node: str(c['Node']), CheckID: str(c['CheckID']), Status: str(c['Status']), ServiceName: str(c['ServiceName']) }));
}
