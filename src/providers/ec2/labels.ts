/**
 * One DescribeInstances instance → an Endpoint label set, in the vocabulary of
 * Prometheus' ec2_sd (__meta_ec2_*). Pure, so it is tested without a server.
 */
import type { Instance, Tag } from '@aws-sdk/client-ec2';
import type { Ec2Spec } from './spec-schema.ts';
import { readPortsTag } from './ports.ts';

export const META = '__meta_ec2_';
/** Label names of an EC2 endpoint: Prometheus ec2_sd names, plus the operator's __address__, __network__, __service_account__. */
export const EC2_LABELS = {
  address: '__address__',
  network: '__network__',
  serviceAccount: '__service_account__',
  instanceId: `${META}instance_id`,
  instanceState: `${META}instance_state`,
  instanceType: `${META}instance_type`,
  instanceLifecycle: `${META}instance_lifecycle`,
  availabilityZone: `${META}availability_zone`,
  availabilityZoneId: `${META}availability_zone_id`,
  region: `${META}region`,
  vpcId: `${META}vpc_id`,
  subnetId: `${META}subnet_id`,
  privateIp: `${META}private_ip`,
  privateDnsName: `${META}private_dns_name`,
  publicIp: `${META}public_ip`,
  publicDnsName: `${META}public_dns_name`,
  ipv6Addresses: `${META}ipv6_addresses`,
  ami: `${META}ami`,
  architecture: `${META}architecture`,
  platform: `${META}platform`,
  ownerId: `${META}owner_id`,
} as const;

/**
 * Tag labels keep the tag key verbatim (Prometheus replaces non [A-Za-z0-9_]
 * characters): a key like app.kubernetes.io/name can then become the same
 * WorkloadEntry label; the engine sanitises what is not a valid label key.
 */
export function tagLabel(key: string): string {
  return `${META}tag_${key}`;
}

export function portLabel(name: string): string {
  return `__port_${name}__`;
}

/** The settings of the spec that shape labels. */
export type LabelSettings = Pick<Ec2Spec, 'region' | 'addressType' | 'portsTagKey' | 'networkTagKey' | 'serviceAccountTagKey' | 'vpcNetworks'>;

/** IPv6 addresses of all interfaces, the primary interface's first (the instance's own Ipv6Address leads). */
export function ipv6Addresses(instance: Instance): string[] {
  const out: string[] = [];
  if (instance.Ipv6Address) out.push(instance.Ipv6Address);
  const nics = [...(instance.NetworkInterfaces ?? [])].sort(
    (a, b) => (a.Attachment?.DeviceIndex ?? 99) - (b.Attachment?.DeviceIndex ?? 99),
  );
  for (const nic of nics) {
    const addrs = [...(nic.Ipv6Addresses ?? [])].sort((a, b) => Number(b.IsPrimaryIpv6 === true) - Number(a.IsPrimaryIpv6 === true));
    for (const a of addrs) if (a.Ipv6Address && !out.includes(a.Ipv6Address)) out.push(a.Ipv6Address);
  }
  return out;
}

function addressOf(instance: Instance, type: LabelSettings['addressType']): string {
  switch (type) {
    case 'public-ipv4':
      return instance.PublicIpAddress ?? '';
    case 'private-dns':
      return instance.PrivateDnsName ?? '';
    case 'ipv6':
      return ipv6Addresses(instance)[0] ?? '';
    case 'private-ipv4':
    default:
      return instance.PrivateIpAddress ?? '';
  }
}

function tagMap(tags: readonly Tag[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const t of tags ?? []) if (t.Key !== undefined) m.set(t.Key, t.Value ?? '');
  return m;
}

/**
 * Labels of one instance. A missing address gives __address__ = "" (the engine skips the
 * endpoint with a reason); absent optional facts are left out rather than set empty.
 */
export function instanceLabels(instance: Instance, ownerId: string | undefined, settings: LabelSettings): Record<string, string> {
  const labels: Record<string, string> = {};
  const set = (key: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') labels[key] = value;
  };
  labels[EC2_LABELS.address] = addressOf(instance, settings.addressType);
  set(EC2_LABELS.instanceId, instance.InstanceId);
  set(EC2_LABELS.instanceState, instance.State?.Name);
  set(EC2_LABELS.instanceType, instance.InstanceType);
  set(EC2_LABELS.instanceLifecycle, instance.InstanceLifecycle);
  set(EC2_LABELS.availabilityZone, instance.Placement?.AvailabilityZone);
  set(EC2_LABELS.availabilityZoneId, instance.Placement?.AvailabilityZoneId);
  set(EC2_LABELS.region, settings.region);
  set(EC2_LABELS.vpcId, instance.VpcId);
  set(EC2_LABELS.subnetId, instance.SubnetId);
  set(EC2_LABELS.privateIp, instance.PrivateIpAddress);
  set(EC2_LABELS.privateDnsName, instance.PrivateDnsName);
  set(EC2_LABELS.publicIp, instance.PublicIpAddress);
  set(EC2_LABELS.publicDnsName, instance.PublicDnsName);
  const v6 = ipv6Addresses(instance);
  // Wrapped in separators as Prometheus does, so a regex can match ",<addr>," anywhere.
  if (v6.length > 0) labels[EC2_LABELS.ipv6Addresses] = `,${v6.join(',')},`;
  set(EC2_LABELS.ami, instance.ImageId);
  set(EC2_LABELS.architecture, instance.Architecture);
  set(EC2_LABELS.platform, instance.Platform);
  set(EC2_LABELS.ownerId, ownerId);

  const tags = tagMap(instance.Tags);
  for (const [k, v] of tags) labels[tagLabel(k)] = v;

  const vpcNetwork = instance.VpcId !== undefined ? settings.vpcNetworks?.[instance.VpcId] : undefined;
  const tagNetwork = settings.networkTagKey ? tags.get(settings.networkTagKey) : undefined;
  // An explicit per-VPC setting is the operator's decision; the tag is the instance's own claim.
  set(EC2_LABELS.network, vpcNetwork ?? tagNetwork);
  if (settings.serviceAccountTagKey) set(EC2_LABELS.serviceAccount, tags.get(settings.serviceAccountTagKey));
  if (settings.portsTagKey) {
    const raw = tags.get(settings.portsTagKey);
    if (raw !== undefined) for (const [name, port] of readPortsTag(settings.portsTagKey, raw).ports) labels[portLabel(name)] = String(port);
  }
  return labels;
}

/** Registry data of an instance that cannot be used as it is (a bad ports tag): the engine skips it with these reasons. */
export function instanceProblems(instance: Instance, settings: Pick<LabelSettings, 'portsTagKey'>): string[] {
  if (!settings.portsTagKey) return [];
  const raw = tagMap(instance.Tags).get(settings.portsTagKey);
  return raw === undefined ? [] : [...readPortsTag(settings.portsTagKey, raw).problems];
}
