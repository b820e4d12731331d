/** One Compute Engine instance → one Endpoint (labels in gce_sd vocabulary). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { GceInstance } from '../../../src/providers/gce/client.ts';
import { instanceToEndpoint, parsePorts, regionOf, shortName, type LabelOptions } from '../../../src/providers/gce/labels.ts';

const opts: LabelOptions = { project: 'proj-1', addressType: 'internal', networkInterface: 'nic0', portsMetadataKey: 'ports' };

const base: GceInstance = {
  id: '18446744073709551615',
  name: 'vm',
  status: 'RUNNING',
  zone: 'https://compute.example/compute/v1/projects/proj-1/zones/asia-east1-a',
  networkInterfaces: [{ name: 'nic0', networkIP: '10.0.0.1', network: 'x/global/networks/vpc', subnetwork: 'x/regions/asia-east1/subnetworks/s' }],
};

describe('GCE ports metadata', () => {
  test('bad parts are a problem of the endpoint, in the same words as EC2\'s', () => {
    const ep = instanceToEndpoint({ ...base, metadata: { items: [{ key: 'ports', value: 'http=abc,=80,grpc=99999' }] } }, opts);
    assert.deepEqual(ep?.problems, [
      'invalid ports metadata "ports" "http=abc,=80,grpc=99999": "http=abc": "abc" is not a port number from 1 to 65535; "=80" has no port name; "grpc=99999": "99999" is not a port number from 1 to 65535',
    ]);
    const good = instanceToEndpoint({ ...base, metadata: { items: [{ key: 'ports', value: 'http=80' }] } }, opts);
    assert.equal(good?.problems, undefined);
    assert.equal(good?.labels['__port_http__'], '80');
  });
});

describe('GCE labels', () => {
  test('short names and regions', () => {
    assert.equal(shortName('https://h/compute/v1/projects/p/zones/us-east1-b/'), 'us-east1-b');
    assert.equal(shortName('e2-small'), 'e2-small');
    assert.equal(shortName(undefined), '');
    assert.equal(regionOf('us-east1-b'), 'us-east1');
    assert.equal(regionOf('nozone'), 'nozone');
  });

  test('ports metadata: good pairs kept, malformed ignored', () => {
    assert.deepEqual(parsePorts('http=8080, grpc = 9090'), { http: 8080, grpc: 9090 });
    assert.deepEqual(parsePorts('=1,x,Bad=80,ok=0,big=70000,neg=-1,web=80x,tcp-db=5432'), { 'tcp-db': 5432 });
    assert.deepEqual(parsePorts(''), {});
  });

  test('the id stays a uint64 string; the zone is the scope', () => {
    const ep = instanceToEndpoint(base, opts);
    assert.equal(ep?.id, '18446744073709551615');
    assert.equal(ep?.scope, 'asia-east1-a');
    assert.equal(ep?.labels['__meta_gce_region'], 'asia-east1');
    assert.equal(ep?.labels['__meta_gce_network'], 'vpc');
    assert.equal(ep?.labels['__meta_gce_subnetwork'], 's');
    assert.equal(ep?.labels['__meta_gce_tags'], undefined, 'no tags, no label');
  });

  test('an instance without id cannot be tracked and is left out', () => {
    assert.equal(instanceToEndpoint({ ...base, id: null }, opts), undefined);
  });

  test('a missing interface or access config gives an empty address', () => {
    const ep = instanceToEndpoint(base, { ...opts, networkInterface: 'nic3' });
    assert.equal(ep?.labels['__address__'], '');
    const ext = instanceToEndpoint(base, { ...opts, addressType: 'external' });
    assert.equal(ext?.labels['__address__'], '');
    assert.equal(ext?.labels['__meta_gce_public_ip'], '');
  });

  test('script and key metadata never become labels; malformed ports do not throw', () => {
    const ep = instanceToEndpoint(
      {
        ...base,
        metadata: {
          items: [
            { key: 'startup-script', value: 'export TOKEN=s3cret' },
            { key: 'ssh-keys', value: 'user:ssh-rsa AAAA' },
            { key: 'user-data', value: '#cloud-config' },
            { key: 'ports', value: 'http=80,oops' },
            { key: 'env', value: 'prod' },
          ],
        },
      },
      opts,
    );
    const keys = Object.keys(ep?.labels ?? {});
    assert.ok(!keys.some((k) => /startup|ssh|user-data/.test(k)), keys.join(','));
    assert.equal(ep?.labels['__meta_gce_metadata_env'], 'prod');
    assert.equal(ep?.labels['__port_http__'], '80');
    assert.equal(Object.keys(ep?.labels ?? {}).filter((k) => k.startsWith('__port_')).length, 1);
  });
});
