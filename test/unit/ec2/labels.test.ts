import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance } from '@aws-sdk/client-ec2';
import { instanceLabels, instanceProblems, type LabelSettings } from '../../../src/providers/ec2/labels.ts';

/** An instance as DescribeInstances returns it (fields the provider reads). */
function instance(over: Partial<Instance> = {}): Instance {
  return {
    InstanceId: 'i-0abc',
    State: { Name: 'running', Code: 16 },
    InstanceType: 'm7g.large',
    Placement: { AvailabilityZone: 'eu-west-1b', AvailabilityZoneId: 'euw1-az2' },
    VpcId: 'vpc-1',
    SubnetId: 'subnet-1',
    PrivateIpAddress: '10.0.1.5',
    PrivateDnsName: 'ip-10-0-1-5.eu-west-1.compute.internal',
    PublicIpAddress: '52.1.2.3',
    PublicDnsName: 'ec2-52-1-2-3.eu-west-1.compute.amazonaws.com',
    ImageId: 'ami-1',
    Architecture: 'arm64',
    NetworkInterfaces: [
      { Attachment: { DeviceIndex: 1 }, Ipv6Addresses: [{ Ipv6Address: '2001:db8::9' }] },
      { Attachment: { DeviceIndex: 0 }, Ipv6Addresses: [{ Ipv6Address: '2001:db8::2' }, { Ipv6Address: '2001:db8::1', IsPrimaryIpv6: true }] },
    ],
    Tags: [
      { Key: 'service', Value: 'orders' },
      { Key: 'app.kubernetes.io/part-of', Value: 'shop' },
      { Key: 'ports', Value: 'http=8080,grpc=9090,oops' },
      { Key: 'net', Value: 'tagged-net' },
      { Key: 'sa', Value: 'orders-sa' },
      { Key: 'empty', Value: '' },
    ],
    ...over,
  };
}

const base: LabelSettings = { region: 'eu-west-1', addressType: 'private-ipv4' };

describe('instanceLabels', () => {
  test('describes an instance in the ec2_sd vocabulary', () => {
    const l = instanceLabels(instance(), '111122223333', base);
    assert.deepEqual(l, {
      __address__: '10.0.1.5',
      __meta_ec2_instance_id: 'i-0abc',
      __meta_ec2_instance_state: 'running',
      __meta_ec2_instance_type: 'm7g.large',
      __meta_ec2_availability_zone: 'eu-west-1b',
      __meta_ec2_availability_zone_id: 'euw1-az2',
      __meta_ec2_region: 'eu-west-1',
      __meta_ec2_vpc_id: 'vpc-1',
      __meta_ec2_subnet_id: 'subnet-1',
      __meta_ec2_private_ip: '10.0.1.5',
      __meta_ec2_private_dns_name: 'ip-10-0-1-5.eu-west-1.compute.internal',
      __meta_ec2_public_ip: '52.1.2.3',
      __meta_ec2_public_dns_name: 'ec2-52-1-2-3.eu-west-1.compute.amazonaws.com',
      __meta_ec2_ipv6_addresses: ',2001:db8::1,2001:db8::2,2001:db8::9,',
      __meta_ec2_ami: 'ami-1',
      __meta_ec2_architecture: 'arm64',
      __meta_ec2_owner_id: '111122223333',
      __meta_ec2_tag_service: 'orders',
      '__meta_ec2_tag_app.kubernetes.io/part-of': 'shop',
      __meta_ec2_tag_ports: 'http=8080,grpc=9090,oops',
      __meta_ec2_tag_net: 'tagged-net',
      __meta_ec2_tag_sa: 'orders-sa',
      __meta_ec2_tag_empty: '',
    });
  });

  test('picks the address by addressType; the primary interface\'s primary IPv6 first', () => {
    const i = instance();
    assert.equal(instanceLabels(i, undefined, { ...base, addressType: 'public-ipv4' })['__address__'], '52.1.2.3');
    assert.equal(instanceLabels(i, undefined, { ...base, addressType: 'private-dns' })['__address__'], 'ip-10-0-1-5.eu-west-1.compute.internal');
    assert.equal(instanceLabels(i, undefined, { ...base, addressType: 'ipv6' })['__address__'], '2001:db8::1');
    assert.equal(instanceLabels(instance({ Ipv6Address: '2001:db8::7' }), undefined, { ...base, addressType: 'ipv6' })['__address__'], '2001:db8::7');
  });

  test('a missing address is empty (the engine skips it), absent facts are left out', () => {
    const l = instanceLabels(instance({ PublicIpAddress: undefined, PublicDnsName: '', NetworkInterfaces: [], Placement: {} }), undefined, {
      ...base,
      addressType: 'public-ipv4',
    });
    assert.equal(l['__address__'], '');
    for (const k of ['__meta_ec2_public_ip', '__meta_ec2_public_dns_name', '__meta_ec2_ipv6_addresses', '__meta_ec2_availability_zone', '__meta_ec2_owner_id']) {
      assert.equal(k in l, false, k);
    }
  });

  test('settings turn tags into ports, network and service account', () => {
    const l = instanceLabels(instance(), undefined, { ...base, portsTagKey: 'ports', networkTagKey: 'net', serviceAccountTagKey: 'sa' });
    assert.equal(l['__port_http__'], '8080');
    assert.equal(l['__port_grpc__'], '9090');
    assert.equal(l['__network__'], 'tagged-net');
    assert.equal(l['__service_account__'], 'orders-sa');
  });

  test('a bad ports tag is a problem of the instance (the engine skips it with this reason)', () => {
    const bad = instance({ Tags: [{ Key: 'ports', Value: 'http=abc,=80,grpc=99999' }] });
    const [problem, ...rest] = instanceProblems(bad, { portsTagKey: 'ports' });
    assert.deepEqual(rest, []);
    assert.match(problem ?? '', /^invalid ports tag "ports" "http=abc,=80,grpc=99999": /);
    assert.deepEqual(instanceProblems(instance({ Tags: [{ Key: 'ports', Value: 'http=80' }] }), { portsTagKey: 'ports' }), []);
    assert.equal(instanceProblems(instance(), { portsTagKey: 'ports' }).length, 1, 'the fixture\'s "oops" part is reported too');
    assert.deepEqual(instanceProblems(bad, {}), [], 'without portsTagKey the tag is an ordinary tag');
  });

  test('vpcNetworks outranks the network tag; unset settings add nothing', () => {
    const l = instanceLabels(instance(), undefined, { ...base, networkTagKey: 'net', vpcNetworks: { 'vpc-1': 'net-eu' } });
    assert.equal(l['__network__'], 'net-eu');
    const plain = instanceLabels(instance(), undefined, base);
    assert.deepEqual(Object.keys(plain).filter((k) => /^__(network|service_account|port_.*)__$/.test(k)), []);
    const otherVpc = instanceLabels(instance({ VpcId: 'vpc-2' }), undefined, { ...base, vpcNetworks: { 'vpc-1': 'net-eu' } });
    assert.equal(otherVpc['__network__'], undefined);
  });
});
