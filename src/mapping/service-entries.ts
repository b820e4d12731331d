/**
 * The pure ServiceEntry mapping: the desired WorkloadEntries of a source → one Istio
 * ServiceEntry per service (spec.serviceEntries). No I/O; the same entries always give
 * the same ServiceEntries. A service that cannot get a valid ServiceEntry is skipped
 * with a reason; nothing throws on registry data.
 */
import { isIP } from 'node:net';
import type { ProviderName, ServiceEntryTemplate } from '../api/types.ts';
import { workloadEntryName } from './names.ts';
import { SOURCE_LABEL } from '../api/ownership.ts';
import { isDns1123Subdomain, sanitizeLabelValue } from './sanitize.ts';
import type { DesiredEntry } from './types.ts';
import type { OwnerReference, ServiceEntryPort, ServiceEntrySpec } from '../api/istio.ts';

/** The service (value of the service label) a generated ServiceEntry stands for. */
export const SERVICE_ANNOTATION = 'vmregistry.io/service';

/** Default host templates (documented in the CRD and docs/service-entries.md). */
export const VM_INTERNAL_HOSTS: readonly string[] = ['{service}.{namespace}.vm.internal'];
/** Providers whose registry has a host convention of its own; the others get VM_INTERNAL_HOSTS. */
export const DEFAULT_HOSTS: Readonly<Partial<Record<ProviderName, readonly string[]>>> = {
  consul: ['{service}.service.consul'],
};

export interface DesiredServiceEntry {
  readonly name: string;
  /** Value of the service label the ServiceEntry selects. */
  readonly service: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly spec: ServiceEntrySpec;
}

export interface SkippedService {
  readonly service: string;
  readonly reason: string;
}

export interface DesiredServiceEntries {
  readonly serviceEntries: readonly DesiredServiceEntry[];
  /** Services without a ServiceEntry, or with ports left out, and why. */
  readonly skipped: readonly SkippedService[];
  /** WorkloadEntries whose address is a DNS name: a STATIC ServiceEntry does not select them. */
  readonly unselected: readonly string[];
}

export interface ServiceEntryInput {
  readonly sourceName: string;
  readonly namespace: string;
  readonly provider: ProviderName;
  readonly template: ServiceEntryTemplate;
  readonly serviceLabel: string;
  readonly entries: readonly DesiredEntry[];
}

/** Istio's protocol names by port-name prefix (protocol.Parse, case-insensitive), in ServiceEntry spelling. */
const PROTOCOLS: ReadonlyMap<string, string> = new Map([
  ['http', 'HTTP'],
  ['http2', 'HTTP2'],
  ['https', 'HTTPS'],
  ['grpc', 'GRPC'],
  ['grpc-web', 'GRPC-Web'],
  ['tcp', 'TCP'],
  ['tls', 'TLS'],
  ['mongo', 'Mongo'],
  ['mysql', 'MySQL'],
  ['redis', 'Redis'],
  ['udp', 'UDP'],
]);

/** The protocol a port name announces, the way Istio reads Kubernetes port names: `<protocol>[-<suffix>]`. */
export function protocolOfPortName(name: string): string | undefined {
  const lower = name.toLowerCase();
  if (lower === 'grpc-web' || lower.startsWith('grpc-web-')) return PROTOCOLS.get('grpc-web');
  return PROTOCOLS.get(lower.split('-')[0] ?? '');
}

/** A service name as a host part: lower-cased, other characters "-", labels trimmed. Empty when nothing is left. */
export function serviceHostPart(service: string): string {
  return service
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/gu, '-')
    .split('.')
    .map((l) => l.replace(/^-+|-+$/g, ''))
    .filter((l) => l !== '')
    .join('.');
}

export function renderHosts(templates: readonly string[], vars: { service: string; namespace: string; source: string }): string[] {
  const hosts = templates.map((t) =>
    t.replaceAll('{service}', serviceHostPart(vars.service)).replaceAll('{namespace}', vars.namespace).replaceAll('{source}', vars.source),
  );
  return [...new Set(hosts)];
}

/** The deterministic name of a service's ServiceEntry: `<source>-<service>-<hash>`. */
export function serviceEntryName(sourceName: string, service: string): string {
  return workloadEntryName(sourceName, `service:${service}`, service);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Ports of a service: the union of its entries' named ports. A name used with several
 * numbers takes the number most entries use (ties: the lowest); each entry still
 * reaches its own number, because istiod maps a ServiceEntry port to an entry's port
 * of the same name. Two names cannot share a number: the later name (sorted) takes
 * another of its numbers, or is left out with a reason.
 */
export function unionPorts(entries: readonly DesiredEntry[]): { ports: ServiceEntryPort[]; dropped: string[] } {
  const uses = new Map<string, Map<number, number>>();
  for (const e of entries) {
    for (const [name, number] of Object.entries(e.spec.ports ?? {})) {
      const counts = uses.get(name) ?? new Map<number, number>();
      counts.set(number, (counts.get(number) ?? 0) + 1);
      uses.set(name, counts);
    }
  }
  const taken = new Map<number, string>();
  const ports: ServiceEntryPort[] = [];
  const dropped: string[] = [];
  for (const name of [...uses.keys()].sort(compare)) {
    const candidates = [...(uses.get(name) ?? [])].sort(([na, ca], [nb, cb]) => cb - ca || na - nb).map(([n]) => n);
    const number = candidates.find((n) => !taken.has(n));
    if (number === undefined) {
      dropped.push(`port ${name} left out: its number ${candidates.join(', ')} is already used by port ${taken.get(candidates[0] ?? 0)}`);
      continue;
    }
    taken.set(number, name);
    const protocol = protocolOfPortName(name);
    ports.push({ number, name, ...(protocol ? { protocol } : {}) });
  }
  ports.sort((a, b) => a.number - b.number);
  return { ports, dropped };
}

/** Groups the desired entries by service and maps each service to its ServiceEntry. */
export function buildDesiredServiceEntries(input: ServiceEntryInput): DesiredServiceEntries {
  const byService = new Map<string, DesiredEntry[]>();
  const unselected: string[] = [];
  for (const e of input.entries) {
    const service = e.labels[input.serviceLabel];
    if (service === undefined || service === '') continue;
    if (isIP(e.spec.address) === 0) unselected.push(e.name);
    const list = byService.get(service) ?? [];
    list.push(e);
    byService.set(service, list);
  }
  const templates = input.template.hosts ?? DEFAULT_HOSTS[input.provider] ?? VM_INTERNAL_HOSTS;
  const serviceEntries: DesiredServiceEntry[] = [];
  const skipped: SkippedService[] = [];
  for (const service of [...byService.keys()].sort(compare)) {
    const hosts = renderHosts(templates, { service, namespace: input.namespace, source: input.sourceName });
    const bad = hosts.find((h) => !isDns1123Subdomain(h));
    if (bad !== undefined) {
      skipped.push({ service, reason: `host ${JSON.stringify(bad)} is not a valid DNS name` });
      continue;
    }
    const { ports, dropped } = unionPorts(byService.get(service) ?? []);
    for (const reason of dropped) skipped.push({ service, reason });
    if (ports.length === 0) {
      skipped.push({ service, reason: 'its WorkloadEntries have no named ports' });
      continue;
    }
    const spec: ServiceEntrySpec = {
      hosts,
      location: input.template.location,
      resolution: 'STATIC',
      ports,
      workloadSelector: { labels: { [input.serviceLabel]: service, [SOURCE_LABEL]: input.sourceName } },
      ...(input.template.exportTo && input.template.exportTo.length > 0 ? { exportTo: [...input.template.exportTo] } : {}),
    };
    serviceEntries.push({
      name: serviceEntryName(input.sourceName, service),
      service,
      labels: {},
      annotations: { [SERVICE_ANNOTATION]: service },
      spec,
    });
  }
  serviceEntries.sort((a, b) => compare(a.name, b.name));
  return { serviceEntries, skipped, unselected: unselected.sort(compare) };
}

/** Registry service names as the service label values the mapping gives them (Consul's service list). */
export function serviceKeys(names: readonly string[] | undefined): ReadonlySet<string> | undefined {
  return names === undefined ? undefined : new Set(names.map(sanitizeLabelValue));
}
