/** A Consul service instance as an Endpoint in Prometheus consul_sd vocabulary (docs/mapping.md). */
import type { Endpoint } from '../provider.ts';
import type { HealthEntry } from './api-types.ts';
import { aggregateHealth, isHealthy, isSelected } from './health.ts';
import { parseTagPairs, tagsLabel } from './tags.ts';

export const META = '__meta_consul_';
export const L = {
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
  for (const [k, v] of Object.entries(n.Meta)) labels[L.nodeMetaPrefix + k] = v;
  for (const [k, v] of Object.entries(n.TaggedAddresses)) labels[L.taggedAddressPrefix + k] = v;
  for (const [k, v] of Object.entries(s.Meta)) labels[L.serviceMetaPrefix + k] = v;
  for (const [k, v] of parseTagPairs(s.Tags, opts.tagSeparator)) labels[L.tagPrefix + k] = v;

  labels[L.address] = s.Address !== '' ? s.Address : n.Address;
  if (s.Port > 0) labels[L.port] = String(s.Port);
  labels[L.servicePort] = String(s.Port);
  labels[L.service] = s.Service;
  labels[L.serviceId] = s.ID;
  labels[L.node] = n.Node;
  labels[L.nodeAddress] = n.Address;
  labels[L.serviceAddress] = s.Address;
  labels[L.dc] = n.Datacenter !== '' ? n.Datacenter : (opts.datacenter ?? '');
  labels[L.tags] = tagsLabel(s.Tags);
  labels[L.health] = health;
  if (s.Namespace !== undefined) labels[L.namespace] = s.Namespace;
  if (s.Partition !== undefined) labels[L.partition] = s.Partition;

  return {
    id: `${n.Node}/${s.ID}`,
    scope: s.Service,
    labels,
    ...(opts.mode === 'status' ? { healthy: isHealthy(health, opts.includeWarning) } : {}),
  };
}
