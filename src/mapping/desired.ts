/**
 * The pure mapping engine: endpoints (label sets) → desired WorkloadEntries, as
 * docs/mapping.md describes. No I/O, no clock; the same input always gives the same
 * output, whatever the order of the endpoints. Bad endpoint data skips the endpoint
 * with a reason; only an invalid rule set throws (RelabelError: a bad spec).
 */
import type { RelabelRuleInput, VmRegistrySourceSpec } from '../api/types.ts';
import type { Endpoint } from '../providers/provider.ts';
import { workloadEntryName } from './names.ts';
import { ENDPOINT_ANNOTATION, MANAGED_BY_LABEL, SCOPE_ANNOTATION, SOURCE_LABEL } from '../api/ownership.ts';
import { compileRuleSet, RelabelInputTooLongError, type CompiledRuleSet } from './relabel.ts';
import {
  isDns1123Label,
  isDns1123Subdomain,
  isValidLabelKey,
  isValidLabelValue,
  parseAddress,
  sanitizeLabelKey,
  sanitizeLabelValue,
} from './sanitize.ts';
import type { DesiredEntry, DesiredState, SkippedEndpoint } from './types.ts';
import type { WorkloadEntrySpec } from '../api/istio.ts';
import { ValuePool } from '../runtime/value-pool.ts';

/** The output labels of the pipeline (docs/mapping.md, "Output"). */
export const OutputLabel = {
  address: '__address__',
  port: '__port__',
  portName: '__port_name__',
  service: '__service__',
  network: '__network__',
  locality: '__locality__',
  weight: '__weight__',
  serviceAccount: '__service_account__',
} as const;

/** `__port_<name>__`: the port called <name>. */
export function portLabel(name: string): string {
  return `__port_${name}__`;
}

const PORT_LABEL = /^__port_(.+)__$/s;
/** Label sets repeat across a service's instances: each distinct set is kept once. */
const labelPool = new ValuePool();
const DEFAULT_PORT_NAME = 'tcp';
const MAX_WEIGHT = 1_000_000;
// Ownership labels are set by the engine alone; a mapped label must not pose as one.
const RESERVED_LABELS: ReadonlySet<string> = new Set([MANAGED_BY_LABEL, SOURCE_LABEL]);

export const PROVIDER_RULES_FIELD = 'provider default mapping';
export const USER_RULES_FIELD = 'spec.workloadEntry.relabelings';

export interface BuildInput {
  readonly sourceName: string;
  readonly spec: VmRegistrySourceSpec;
  readonly endpoints: readonly Endpoint[];
  readonly providerRules: readonly RelabelRuleInput[];
  /** Annotations the provider's mapping puts on every entry (ProviderFactory.entryAnnotations). */
  readonly providerAnnotations?: Readonly<Record<string, string>>;
  /**
   * Results of earlier calls with the same source name, spec and rules. Providers hand
   * back the same Endpoint object while an endpoint is unchanged (Consul's watches keep
   * each service's list until it changes), so a change maps only what it touched.
   */
  readonly memo?: MappingMemo;
}

/**
 * Mapping results by Endpoint object. Valid for one source name, spec and rule set:
 * make a new one when any of them changes. Held weakly, so endpoints a provider
 * dropped are collected with their results.
 */
export class MappingMemo {
  private readonly results = new WeakMap<Endpoint, Mapped | null | { readonly skip: string }>();
  /** Endpoints mapped afresh / taken from the memo, over the memo's life. */
  mapped = 0;
  reused = 0;

  lookup(endpoint: Endpoint): Mapped | null | { readonly skip: string } | undefined {
    const r = this.results.get(endpoint);
    if (r !== undefined) this.reused++;
    return r;
  }

  remember(endpoint: Endpoint, result: Mapped | null | { readonly skip: string }): void {
    this.mapped++;
    this.results.set(endpoint, result);
  }
}

/** A value quoted for a reason message, cut so a huge label cannot flood status. */
function quote(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 61)}...` : value);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function canonicalLabels(e: Endpoint): string {
  return JSON.stringify(Object.entries(e.labels).sort(([a], [b]) => compare(a, b)));
}

/** Total order on endpoints: by id, ties (duplicate ids) broken by content, so input order never matters. */
function compareEndpoints(a: Endpoint, b: Endpoint): number {
  return (
    compare(a.id, b.id) ||
    compare(a.scope, b.scope) ||
    compare(String(a.healthy), String(b.healthy)) ||
    compare(canonicalLabels(a), canonicalLabels(b))
  );
}

/** The items in order: a copy, sorted only when they are not in order already. */
function sortedBy<T>(items: readonly T[], order: (a: T, b: T) => number): T[] {
  for (let i = 1; i < items.length; i++) {
    if (order(items[i - 1] as T, items[i] as T) > 0) return [...items].sort(order);
  }
  return [...items];
}

class Skip extends Error {}

/** A strict decimal integer in [min, max], or a Skip naming the label. */
function parseIntIn(raw: string, label: string, min: number, max: number): number {
  const n = /^[0-9]{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) throw new Skip(`invalid ${label} ${quote(raw)}: must be an integer from ${min} to ${max}`);
  return n;
}

function parsePort(raw: string, label: string): number {
  return parseIntIn(raw, `port in ${label}`, 1, 65535);
}

function checkPortName(name: string, label: string): void {
  if (!isDns1123Label(name)) throw new Skip(`invalid port name ${quote(name)} in ${label}: must be a DNS-1123 label`);
}

/** The non-empty value of a label, or undefined. */
function get(labels: Map<string, string>, name: string): string | undefined {
  const v = labels.get(name);
  return v === undefined || v === '' ? undefined : v;
}

interface Settings {
  readonly serviceLabel: string;
  readonly ports: readonly { readonly name: string; readonly number?: number }[];
  /** Labels the spec overwrites before the user's rules run (step 3). */
  readonly overrides: readonly (readonly [string, string])[];
  /** Annotations from the provider's mapping, on every entry. */
  readonly annotations: Readonly<Record<string, string>>;
}

function settingsOf(spec: VmRegistrySourceSpec, annotations: Readonly<Record<string, string>> = {}): Settings {
  const we = spec.workloadEntry;
  const overrides: [string, string][] = [];
  if (we.network !== undefined && we.network !== '') overrides.push([OutputLabel.network, we.network]);
  if (we.locality !== undefined && we.locality !== '') overrides.push([OutputLabel.locality, we.locality]);
  if (we.weight !== undefined) overrides.push([OutputLabel.weight, String(we.weight)]);
  if (we.serviceAccount !== undefined && we.serviceAccount !== '') {
    overrides.push([OutputLabel.serviceAccount, we.serviceAccount]);
  }
  for (const [k, v] of Object.entries(we.labels ?? {})) overrides.push([k, v]);
  // The schema validates serviceLabel; the fallback only guards specs that bypassed it.
  return { serviceLabel: sanitizeLabelKey(we.serviceLabel) ?? 'app', ports: we.ports ?? [], overrides, annotations };
}

function portsOf(labels: Map<string, string>, specPorts: Settings['ports']): Record<string, number> | undefined {
  const ports = new Map<string, number>();
  const generic = get(labels, OutputLabel.port);
  for (const p of specPorts) {
    const own = get(labels, portLabel(p.name));
    if (p.number !== undefined) ports.set(p.name, p.number);
    else if (own !== undefined) ports.set(p.name, parsePort(own, portLabel(p.name)));
    else if (generic !== undefined) ports.set(p.name, parsePort(generic, OutputLabel.port));
    else {
      throw new Skip(
        `port ${quote(p.name)} has no number: set workloadEntry.ports[].number, or map the registry's port to ${portLabel(p.name)} or ${OutputLabel.port}`,
      );
    }
  }
  // Every other __port_<name>__ label adds a port (__port_name__ is the name of __port__, not a port).
  for (const [label, value] of labels) {
    if (!label.startsWith('__port_')) continue;
    const m = PORT_LABEL.exec(label);
    if (m === null || label === OutputLabel.portName || value === '') continue;
    const name = m[1] as string;
    if (ports.has(name)) continue;
    checkPortName(name, label);
    ports.set(name, parsePort(value, label));
  }
  if (specPorts.length === 0 && generic !== undefined) {
    const name = get(labels, OutputLabel.portName) ?? DEFAULT_PORT_NAME;
    checkPortName(name, OutputLabel.portName);
    if (!ports.has(name)) ports.set(name, parsePort(generic, OutputLabel.port));
  }
  if (ports.size === 0) return undefined;
  return Object.fromEntries([...ports].sort(([a], [b]) => compare(a, b)));
}

interface MappedLabels {
  readonly labels: Record<string, string>;
  /** Label keys that could not be made valid, or lost to a key that already was. */
  readonly dropped: readonly string[];
}

/**
 * The WorkloadEntry labels: every label not starting with "__", sanitised, plus the
 * service label. Keys that are valid as they are win over keys that had to be changed
 * into the same key; among changed keys, the first in sorted order wins.
 */
export function outputLabels(labels: ReadonlyMap<string, string>, serviceLabel: string): MappedLabels {
  const out = new Map<string, string>();
  const dropped: string[] = [];
  let toSanitise: string[] | undefined;
  for (const [key, value] of labels) {
    if (key.startsWith('__')) continue;
    if (isValidLabelKey(key)) out.set(key, sanitizeLabelValue(value));
    else (toSanitise ??= []).push(key);
  }
  for (const key of toSanitise?.sort(compare) ?? []) {
    const clean = sanitizeLabelKey(key);
    if (clean === null || out.has(clean)) dropped.push(key);
    else out.set(clean, sanitizeLabelValue(labels.get(key) ?? ''));
  }
  const service = labels.get(OutputLabel.service);
  if (service !== undefined && service !== '') out.set(serviceLabel, sanitizeLabelValue(service));
  for (const key of RESERVED_LABELS) {
    if (out.delete(key)) dropped.push(key);
  }
  // Keys in sorted order, so serialised entries are stable. No key starts with "__",
  // so plain assignment cannot hit the __proto__ setter.
  const sorted: Record<string, string> = {};
  for (const key of [...out.keys()].sort(compare)) sorted[key] = out.get(key) as string;
  return { labels: sorted, dropped };
}

export interface Mapped {
  readonly entry: DesiredEntry;
  /** Network and canonical address: two entries with the same key are the same host. */
  readonly addressKey: string;
  readonly addressText: string;
  /** Network, address, service and ports: two entries with the same key describe the same workload. */
  readonly workloadKey: string;
}

function mapEndpoint(
  sourceName: string,
  endpoint: Endpoint,
  settings: Settings,
  providerRules: CompiledRuleSet,
  userRules: CompiledRuleSet,
): Mapped | null {
  const labels = new Map(Object.entries(endpoint.labels));
  if (!providerRules.apply(labels)) return null;
  for (const [k, v] of settings.overrides) labels.set(k, v);
  if (!userRules.apply(labels)) return null;
  // Kept by the rules: registry data the provider could not read skips it, with the provider's words.
  if (endpoint.problems !== undefined && endpoint.problems.length > 0) throw new Skip(endpoint.problems.join('; '));
  const service = get(labels, OutputLabel.service);
  if (service !== undefined && !isValidLabelValue(service)) {
    // Sanitising would reshape the service Istio selects on ("" or two names cut to one): report it instead.
    throw new Skip(
      `invalid service ${quote(service)} in ${OutputLabel.service}: a service must be a valid label value as it is (at most 63 characters of letters, digits, "-", "_", ".", alphanumeric at both ends); rename it in the registry or map it with a relabel rule`,
    );
  }

  const rawAddress = get(labels, OutputLabel.address);
  if (rawAddress === undefined) throw new Skip(`no address: ${OutputLabel.address} is empty`);
  const address = parseAddress(rawAddress);
  if (address === null) throw new Skip(`invalid address ${quote(rawAddress)}: not an IPv4 or IPv6 address or a DNS name`);

  const spec: WorkloadEntrySpec = { address: address.address };
  const ports = portsOf(labels, settings.ports);
  if (ports !== undefined) spec.ports = ports;
  const network = get(labels, OutputLabel.network);
  if (network !== undefined) spec.network = network;
  const locality = get(labels, OutputLabel.locality);
  if (locality !== undefined) spec.locality = locality;
  const weight = get(labels, OutputLabel.weight);
  if (weight !== undefined) spec.weight = parseIntIn(weight, `weight in ${OutputLabel.weight}`, 1, MAX_WEIGHT);
  const serviceAccount = get(labels, OutputLabel.serviceAccount);
  if (serviceAccount !== undefined) {
    if (!isDns1123Subdomain(serviceAccount)) {
      throw new Skip(`invalid service account ${quote(serviceAccount)} in ${OutputLabel.serviceAccount}: must be a DNS-1123 subdomain`);
    }
    spec.serviceAccount = serviceAccount;
  }
  const mapped = outputLabels(labels, settings.serviceLabel);
  // One object for both, shared by the instances with the same labels: entries are never edited.
  const entryLabels = labelPool.shared(Object.freeze(mapped.labels));
  spec.labels = entryLabels;

  const entry: DesiredEntry = {
    name: workloadEntryName(sourceName, endpoint.id, get(labels, OutputLabel.service)),
    endpointId: endpoint.id,
    scope: endpoint.scope,
    labels: entryLabels,
    annotations: { [ENDPOINT_ANNOTATION]: endpoint.id, [SCOPE_ANNOTATION]: endpoint.scope, ...settings.annotations },
    spec,
    ...(endpoint.healthy === undefined ? {} : { healthy: endpoint.healthy }),
    ...(mapped.dropped.length === 0 ? {} : { droppedLabels: mapped.dropped }),
  };
  const addressKey = `${network ?? ''}\0${address.key}`;
  return {
    entry,
    addressKey,
    addressText: network === undefined ? address.address : `${address.address} in network ${quote(network)}`,
    workloadKey: [addressKey, entry.labels[settings.serviceLabel] ?? '', JSON.stringify(Object.entries(entry.spec.ports ?? {}).sort())].join('\0'),
  };
}

/** What one endpoint maps to: an entry (with the keys clashes are checked on), null (dropped by a rule), or a skip reason. */
export type MapResult = Mapped | null | { readonly skip: string };

/** Maps one endpoint with compiled rules and settings, remembering results in the memo when there is one. */
export type EndpointMapper = (endpoint: Endpoint) => MapResult;

/** Compiles the rule sets once and returns the mapper of one endpoint. Throws RelabelError when a rule set is invalid. */
export function endpointMapper(input: Omit<BuildInput, 'endpoints'>): EndpointMapper {
  const providerRules = compileRuleSet(input.providerRules, { field: PROVIDER_RULES_FIELD });
  const userRules = compileRuleSet(input.spec.workloadEntry.relabelings ?? [], { field: USER_RULES_FIELD });
  const settings = settingsOf(input.spec, input.providerAnnotations);
  return (endpoint) => {
    const remembered = input.memo?.lookup(endpoint);
    if (remembered !== undefined) return remembered;
    let result: MapResult;
    try {
      result = mapEndpoint(input.sourceName, endpoint, settings, providerRules, userRules);
    } catch (e) {
      // Registry data the rules cannot read (a value over the input bound) skips the endpoint too.
      if (!(e instanceof Skip || e instanceof RelabelInputTooLongError)) throw e;
      result = { skip: e.message };
    }
    input.memo?.remember(endpoint, result);
    return result;
  };
}

/**
 * Maps a source's endpoints to the WorkloadEntries it should have. When two endpoints
 * clash (same id, name or address) the first in endpoint id order wins, so the result
 * does not depend on the order the registry listed them in. Throws RelabelError when a
 * rule set is invalid; never throws on endpoint data.
 */
export function buildDesiredState(input: BuildInput): DesiredState {
  const { entries, skipped } = mapInIdOrder(input.endpoints, endpointMapper(input));
  return { entries: sortedBy(entries, (a, b) => compare(a.name, b.name)), skipped: sortedSkips(skipped) };
}

/**
 * The entries of these endpoints, clashes settled in endpoint id order. Without a clash
 * the order does not matter: one pass as listed. A clash needs the endpoints sorted.
 */
export function mapInIdOrder(endpoints: readonly Endpoint[], mapOne: EndpointMapper): DesiredState {
  return collect(endpoints, mapOne, true) ?? (collect(sortedBy(endpoints, compareEndpoints), mapOne, false) as DesiredState);
}

export function sortedSkips(skipped: readonly SkippedEndpoint[]): SkippedEndpoint[] {
  return sortedBy(skipped, (a, b) => compare(a.endpointId, b.endpointId) || compare(a.reason, b.reason));
}


/** The entries of the endpoints in the order given; with `stopOnClash`, undefined at the first clash. */
function collect(endpoints: readonly Endpoint[], mapOne: EndpointMapper, stopOnClash: boolean): DesiredState | undefined {
  const entries: DesiredEntry[] = [];
  const skipped: SkippedEndpoint[] = [];
  const byId = new Set<string>();
  const byName = new Map<string, string>();
  const byAddress = new Map<string, string>();
  for (const endpoint of endpoints) {
    const mapped = mapOne(endpoint);
    if (mapped === null) continue; // dropped on purpose by a keep or drop rule
    if ('skip' in mapped) {
      skipped.push({ endpointId: endpoint.id, reason: mapped.skip });
      continue;
    }
    const { entry, addressText, workloadKey } = mapped;
    const nameOwner = byName.get(entry.name);
    // One VM often runs several services, or one service on several ports: only an
    // endpoint that would describe the same workload again (same network, address,
    // service and ports) is a duplicate.
    const addressOwner = byAddress.get(workloadKey);
    const clash = byId.has(endpoint.id)
      ? `duplicate endpoint id: the registry reported ${quote(endpoint.id)} more than once`
      : nameOwner !== undefined
        ? `duplicate name ${entry.name}: endpoint ${quote(nameOwner)} has it`
        : addressOwner !== undefined
          ? `duplicate address ${addressText}: endpoint ${quote(addressOwner)} has it with the same service and ports`
          : undefined;
    if (clash !== undefined) {
      if (stopOnClash) return undefined;
      skipped.push({ endpointId: endpoint.id, reason: clash });
      continue;
    }
    byId.add(endpoint.id);
    byName.set(entry.name, endpoint.id);
    byAddress.set(workloadKey, endpoint.id);
    entries.push(entry);
  }
  return { entries, skipped };
}
