/**
 * One Compute Engine instance as an Endpoint, labelled in the vocabulary of
 * Prometheus' gce_sd_config. Differences from Prometheus: zone, region, network,
 * subnetwork and machine type are short names, not URLs (they end up in
 * WorkloadEntry fields and labels), and label and metadata keys are kept as they are
 * (Kubernetes label keys accept '-' and '.').
 */
import type { Endpoint } from '../provider.ts';
import type { GceInstance } from './client.ts';
import { parsePortList } from '../ports.ts';

export const META = '__meta_gce_';
export const LABEL_INSTANCE_ID = `${META}instance_id`;
export const LABEL_INSTANCE_NAME = `${META}instance_name`;
export const LABEL_INSTANCE_STATUS = `${META}instance_status`;
export const LABEL_PROJECT = `${META}project`;
export const LABEL_ZONE = `${META}zone`;
export const LABEL_REGION = `${META}region`;
export const LABEL_MACHINE_TYPE = `${META}machine_type`;
export const LABEL_NETWORK = `${META}network`;
export const LABEL_SUBNETWORK = `${META}subnetwork`;
export const LABEL_PRIVATE_IP = `${META}private_ip`;
export const LABEL_PUBLIC_IP = `${META}public_ip`;
export const LABEL_TAGS = `${META}tags`;
export const LABEL_SERVICE_ACCOUNT = `${META}service_account`;
export const LABEL_PREFIX = `${META}label_`;
export const METADATA_PREFIX = `${META}metadata_`;
/** Per interface: __meta_gce_interface_ipv4_<nic name> (as in Prometheus). */
export const INTERFACE_IPV4_PREFIX = `${META}interface_ipv4_`;

/**
 * Metadata keys Compute Engine uses for scripts and keys. Their values can be large
 * and can hold secrets, so they never become labels.
 */
const SKIPPED_METADATA = /^(startup-script|shutdown-script|windows-startup-script|windows-shutdown-script|sysprep-specialize-script|user-data|ssh-keys|sshKeys|windows-keys)/;

export interface LabelOptions {
  readonly project: string;
  readonly addressType: 'internal' | 'external';
  readonly networkInterface: string;
  readonly portsMetadataKey?: string | undefined;
}

/** Last path segment of a resource URL ("https://.../zones/europe-west1-b" → "europe-west1-b"). */
export function shortName(urlOrName: string | null | undefined): string {
  if (!urlOrName) return '';
  const trimmed = urlOrName.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** "europe-west1-b" → "europe-west1"; a name without a zone suffix is returned as is. */
export function regionOf(zone: string): string {
  const i = zone.lastIndexOf('-');
  return i > 0 ? zone.slice(0, i) : zone;
}

/** Parses "http=8080,grpc=9090": the valid pairs (bad parts are problems of the endpoint, see instanceToEndpoint). */
export function parsePorts(value: string): Record<string, number> {
  return Object.fromEntries(parsePortList(value, 'ports metadata').ports);
}

/**
 * The Endpoint of one instance, or undefined when the instance lacks an id (the API
 * always sends one; a record without it cannot be tracked across syncs).
 */
export function instanceToEndpoint(instance: GceInstance, opts: LabelOptions): Endpoint | undefined {
  const id = instance.id ?? '';
  if (id === '') return undefined;
  const zone = shortName(instance.zone);
  const interfaces = instance.networkInterfaces ?? [];
  const nic = interfaces.find((n) => n.name === opts.networkInterface);
  const privateIp = nic?.networkIP ?? '';
  const publicIp = nic?.accessConfigs?.find((a) => a.natIP)?.natIP ?? '';

  const labels: Record<string, string> = {
    __address__: opts.addressType === 'external' ? publicIp : privateIp,
    [LABEL_INSTANCE_ID]: id,
    [LABEL_INSTANCE_NAME]: instance.name ?? '',
    [LABEL_INSTANCE_STATUS]: instance.status ?? '',
    [LABEL_PROJECT]: opts.project,
    [LABEL_ZONE]: zone,
    [LABEL_REGION]: zone === '' ? '' : regionOf(zone),
    [LABEL_MACHINE_TYPE]: shortName(instance.machineType),
    [LABEL_NETWORK]: shortName(nic?.network),
    [LABEL_SUBNETWORK]: shortName(nic?.subnetwork),
    [LABEL_PRIVATE_IP]: privateIp,
    [LABEL_PUBLIC_IP]: publicIp,
  };
  for (const n of interfaces) {
    if (n.name && n.networkIP) labels[INTERFACE_IPV4_PREFIX + n.name] = n.networkIP;
  }
  const tags = instance.tags?.items ?? [];
  // Separators at both ends, as in Prometheus, so a relabel regex can match ".*,web,.*".
  if (tags.length > 0) labels[LABEL_TAGS] = `,${tags.join(',')},`;
  const sa = instance.serviceAccounts?.find((s) => s.email)?.email;
  if (sa) labels[LABEL_SERVICE_ACCOUNT] = sa;
  for (const [key, value] of Object.entries(instance.labels ?? {})) labels[LABEL_PREFIX + key] = value;

  const problems: string[] = [];
  for (const item of instance.metadata?.items ?? []) {
    const key = item.key ?? '';
    if (key === '' || SKIPPED_METADATA.test(key)) continue;
    const value = item.value ?? '';
    labels[METADATA_PREFIX + key] = value;
    if (opts.portsMetadataKey && key === opts.portsMetadataKey) {
      const list = parsePortList(value, `ports metadata ${JSON.stringify(key)}`);
      for (const [name, port] of list.ports) labels[`__port_${name}__`] = String(port);
      problems.push(...list.problems);
    }
  }
  return { id, scope: zone, labels, ...(problems.length > 0 ? { problems } : {}) };
}
