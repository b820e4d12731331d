/** The GCE default mapping, run through the real mapping engine. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gceProviderFactory } from '../../../src/providers/gce/index.ts';
import { instanceToEndpoint } from '../../../src/providers/gce/labels.ts';
import { buildDesiredState } from '../../../src/mapping/desired.ts';
import { BUILTIN_API } from '../../../src/providers/builtin.ts';

const { applyDefaults } = BUILTIN_API;

const instance = {
  id: '7000000000000000042',
  name: 'pay-1',
  status: 'RUNNING',
  zone: 'https://h/compute/v1/projects/proj-1/zones/europe-west4-a',
  labels: { service: 'payments', 'cost-center': 'cc1' },
  metadata: { items: [{ key: 'ports', value: 'http=8080' }] },
  networkInterfaces: [{ name: 'nic0', networkIP: '10.4.0.7', network: 'https://h/compute/v1/projects/proj-1/global/networks/prod-vpc' }],
  serviceAccounts: [{ email: 'pay@proj-1.iam.gserviceaccount.com' }],
};

function desired(gce: Record<string, unknown>, workloadEntry: Record<string, unknown> = {}) {
  const spec = applyDefaults({ gce: { project: 'proj-1', portsMetadataKey: 'ports', ...gce }, workloadEntry });
  const ep = instanceToEndpoint(instance, {
    project: 'proj-1',
    addressType: 'internal',
    networkInterface: 'nic0',
    portsMetadataKey: 'ports',
  });
  assert.ok(ep);
  return buildDesiredState({ sourceName: 'vms', spec, endpoints: [ep], providerRules: gceProviderFactory.defaultMapping(spec) });
}

describe('GCE default mapping', () => {
  test('service, locality, network, ports and labels', () => {
    const state = desired({});
    assert.deepEqual(state.skipped, []);
    const e = state.entries[0];
    assert.ok(e);
    assert.equal(e.spec.address, '10.4.0.7');
    assert.equal(e.spec.locality, 'europe-west4/europe-west4-a');
    assert.equal(e.spec.network, 'prod-vpc');
    assert.deepEqual(e.spec.ports, { http: 8080 });
    assert.equal(e.labels['app'], 'payments', 'the service label feeds workloadEntry.serviceLabel');
    assert.equal(e.labels['cost-center'], 'cc1', 'GCE labels are copied');
    assert.equal(e.spec.serviceAccount, undefined, 'a Google service-account email is not a Kubernetes service account');
    assert.equal(e.annotations['vmregistry.io/scope'], 'europe-west4-a');
  });

  test('serviceLabelKey picks another GCE label; spec settings still win', () => {
    const state = desired({ serviceLabelKey: 'cost-center' }, { network: 'mesh-net', serviceAccount: 'payments' });
    const e = state.entries[0];
    assert.equal(e?.labels['app'], 'cc1');
    assert.equal(e?.spec.network, 'mesh-net');
    assert.equal(e?.spec.serviceAccount, 'payments');
  });

  test('secret references follow credentialsSecretRef', () => {
    const spec = applyDefaults({ gce: { project: 'proj-1', credentialsSecretRef: { name: 'gcp' } } });
    assert.deepEqual(gceProviderFactory.secretRefs(spec), [{ name: 'gcp', key: 'key.json' }]);
    assert.deepEqual(gceProviderFactory.secretRefs(applyDefaults({ gce: { project: 'proj-1' } })), []);
  });
});
