/** A Consul service instance as an Endpoint in Prometheus consul_sd vocabulary (docs/mapping.md). */
import type { Endpoint } from '../provider.ts';
import type { HealthEntry } from './api-types.ts';
import { aggregateHealth, isHealthy, isSelected } from './health.ts';
import { parseTagPairs, tagsLabel } from './tags.ts';

export const META = '__meta_consul_';
/** Label names of a Consul endpoint: Prometheus consul_sd names, plus __address__ and __port__. */
export const CONSUL_LABELS = {
  address: '__address__',
  port: '__port__',
  service: `${META}service`,
  serviceId: `${META}service_id`,
  node: `${META}node`,
  nodeAddress: `${META}address`,
  serviceAddress: `${META}service_address`,
  servicePort: `${META}service_port`,
  dc: `${META}dc`,
  tags: `${META}tags`,
  health: `${META}health`,
  namespace: `${META}namespace`,
  partition: `${META}partition`,
  tagPrefix: `${META}tag_`,
  serviceMetaPrefix: `${META}service_metadata_`,
  nodeMetaPrefix: `${META}metadata_`,
  taggedAddressPrefix: `${META}tagged_address_`,
} as const;

export interface EndpointOptions {
  readonly tagSeparator: string;
  readonly mode: 'exclude' | 'status';
  readonly includeWarning: boolean;
  /** Used when an entry carries no datacenter (it always does on current Consul). */
  readonly datacenter?: string;
}

/** The endpoint for one health entry, or undefined when its health excludes it. */
export function toEndpoint(entry: HealthEntry, opts: EndpointOptions): Endpoint | undefined {
  const { Node: n, Service: s } = entry;
  const health = aggregateHealth(entry.Checks);
  if (!isSelected(health, opts.mode, opts.includeWarning)) return undefined;

  const labels: Record<string, string> = {};
  // Prefixed keys first, fixed keys last: a meta key can never overwrite a fixed label.
  for (const [k, v] of Object.entries(n.Meta)) labels[CONSUL_LABELS.nodeMetaPrefix + k] = v;
  for (const [k, v] of Object.entries(n.TaggedAddresses)) labels[CONSUL_LABELS.taggedAddressPrefix + k] = v;
  for (const [k, v] of Object.entries(s.Meta)) labels[CONSUL_LABELS.serviceMetaPrefix + k] = v;
  for (const [k, v] of parseTagPairs(s.Tags, opts.tagSeparator)) labels[CONSUL_LABELS.tagPrefix + k] = v;

  labels[CONSUL_LABELS.address] = s.Address !== '' ? s.Address : n.Address;
  if (s.Port > 0) labels[CONSUL_LABELS.port] = String(s.Port);
  labels[CONSUL_LABELS.servicePort] = String(s.Port);
  labels[CONSUL_LABELS.service] = s.Service;
  labels[CONSUL_LABELS.serviceId] = s.ID;
  labels[CONSUL_LABELS.node] = n.Node;
  labels[CONSUL_LABELS.nodeAddress] = n.Address;
  labels[CONSUL_LABELS.serviceAddress] = s.Address;
  labels[CONSUL_LABELS.dc] = n.Datacenter !== '' ? n.Datacenter : (opts.datacenter ?? '');
  labels[CONSUL_LABELS.tags] = tagsLabel(s.Tags);
  labels[CONSUL_LABELS.health] = health;
  if (s.Namespace !== undefined) labels[CONSUL_LABELS.namespace] = s.Namespace;
  if (s.Partition !== undefined) labels[CONSUL_LABELS.partition] = s.Partition;

  return {
    id: `${n.Node}/${s.ID}`,
    scope: s.Service,
    labels,
    ...(opts.mode === 'status' ? { healthy: isHealthy(health, opts.includeWarning) } : {}),
  };
}
