/**
 * The VmRegistrySource API as the real apiserver enforces it: CRDs install and become
 * Established, bad sources are rejected with messages a user can act on (and the same
 * inputs are rejected by the code's own validator), printer columns show.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { startLocalCluster, type LocalCluster } from '../../src/dev/cluster.ts';
import { ValidationError } from '../../src/api/validate.ts';
import { eventually } from '../harness/operator-env.ts';
import { BUILTIN_API } from '../../src/providers/builtin.ts';

const { validateSpec } = BUILTIN_API;

let cluster: LocalCluster;

before(async () => {
  cluster = await startLocalCluster({ controllerManager: false });
});

after(async () => {
  await cluster?.stop();
});

const consul = { address: 'http://consul.consul.svc:8500' };

function sourceYaml(name: string, spec: unknown): string {
  return stringify({ apiVersion: 'vmregistry.io/v1alpha1', kind: 'VmRegistrySource', metadata: { name, namespace: 'default' }, spec });
}

/** Each bad spec, and a fragment the apiserver's message must contain. */
const BAD: Array<[string, unknown, RegExp]> = [
  ['no provider', { interval: '30s' }, /exactly one provider must be set/],
  ['two providers', { consul, ec2: { region: 'eu-west-1' } }, /exactly one provider must be set/],
  ['interval not a duration', { consul, interval: 'soon' }, /spec\.interval/],
  ['interval too short', { consul, interval: '0s' }, /interval must be between 1s and 24h/],
  ['interval too long', { consul, interval: '48h' }, /interval must be between 1s and 24h/],
  ['port number 0', { consul, workloadEntry: { ports: [{ name: 'http', number: 0 }] } }, /spec\.workloadEntry\.ports\[0\]\.number/],
  ['port number 70000', { consul, workloadEntry: { ports: [{ name: 'http', number: 70000 }] } }, /spec\.workloadEntry\.ports\[0\]\.number/],
  ['port name not a DNS label', { consul, workloadEntry: { ports: [{ name: 'HTTP_port' }] } }, /spec\.workloadEntry\.ports\[0\]\.name/],
  ['unknown policy', { consul, policy: 'mirror' }, /Unsupported value: "mirror"/],
  ['secret in another namespace', { consul: { ...consul, tokenSecretRef: { name: 'acl', namespace: 'kube-system' } } }, /the Secret must be in the same namespace/],
  ['bad label key', { consul, workloadEntry: { labels: { '-team': 'x' } } }, /label keys must be valid Kubernetes label keys/],
  ['weight 0', { consul, workloadEntry: { weight: 0 } }, /spec\.workloadEntry\.weight/],
  ['consul timeout under 1s', { consul: { ...consul, timeout: '500ms' } }, /consul\.timeout must be at least 1s/],
  ['consul timeout of 0s', { consul: { ...consul, timeout: '0s' } }, /consul\.timeout must be at least 1s/],
  ['consul address not a URL', { consul: { address: 'consul:8500' } }, /spec\.consul\.address/],
  ['ec2 without region', { ec2: {} }, /spec\.ec2\.region: Required value/],
  ['gce project id invalid', { gce: { project: 'My Project' } }, /spec\.gce\.project/],
  ['unknown health mode', { consul: { ...consul, health: { mode: 'ignore' } } }, /Unsupported value: "ignore"/],
  ['relabel replace without targetLabel', { consul, workloadEntry: { relabelings: [{ action: 'replace', sourceLabels: ['a'] }] } }, /targetLabel is required/],
  ['relabel keep without sourceLabels', { consul, workloadEntry: { relabelings: [{ action: 'keep', regex: 'x' }] } }, /sourceLabels is required/],
  ['deletion guard over 100%', { consul, deletionGuard: { maxDeletePercent: 150 } }, /spec\.deletionGuard\.maxDeletePercent/],
];

describe('the VmRegistrySource API on a real apiserver', () => {
  test('our CRD and Istio\'s three CRDs are Established', async () => {
    const out = await cluster.kubectl(['get', 'crd', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Established")].status}{"\\n"}{end}']);
    for (const name of ['vmregistrysources.vmregistry.io', 'workloadentries.networking.istio.io', 'serviceentries.networking.istio.io', 'workloadgroups.networking.istio.io']) {
      assert.match(out, new RegExp(`^${name.replaceAll('.', '\\.')}=True$`, 'm'));
    }
    // The OpenAPI document that kubectl explain reads is published a moment after the CRD.
    const explain = await eventually('kubectl explain', () => cluster.kubectl(['explain', 'vmrs.spec.consul.health']));
    assert.match(explain, /exclude: only instances whose checks pass/);
  });

  for (const [what, spec, message] of BAD) {
    test(`rejects: ${what}`, async () => {
      const name = what.replace(/[^a-z0-9]+/g, '-');
      await assert.rejects(cluster.kubectl(['apply', '-f', '-'], { input: sourceYaml(name, spec) }), (e: Error) => {
        assert.match(e.message, message);
        return true;
      });
      assert.throws(() => validateSpec(spec), ValidationError, 'the code\'s validator rejects it too');
    });
  }

  test('a valid source with defaults filled in, and the printer columns', async () => {
    await cluster.kubectl(['apply', '-f', '-'], { input: sourceYaml('ok', { consul }) });
    const stored = JSON.parse(await cluster.kubectl(['get', 'vmrs', 'ok', '-o', 'json'])) as { spec: Record<string, unknown> };
    assert.equal(stored.spec['interval'], '30s');
    assert.equal(stored.spec['policy'], 'sync');
    assert.deepEqual(stored.spec['deletionGuard'], { enabled: true, maxDeletePercent: 50 });
    assert.deepEqual(stored.spec, validateSpec({ consul }), 'the apiserver and applyDefaults default alike');
    const table = await cluster.kubectl(['get', 'vmrs']);
    assert.match(table.split('\n')[0] ?? '', /^NAME\s+PROVIDER\s+READY\s+ENTRIES\s+AGE$/);
    const wide = await cluster.kubectl(['get', 'vmrs', '-o', 'wide']);
    assert.match(wide.split('\n')[0] ?? '', /REASON\s+CONFLICTS/);
  });

  test('a consul.timeout of exactly 1s is accepted by both', async () => {
    const spec = { consul: { ...consul, timeout: '1s' } };
    await cluster.kubectl(['apply', '-f', '-'], { input: sourceYaml('timeout-1s', spec) });
    assert.equal(validateSpec(spec).consul?.timeout, '1s');
  });

  test('a metadata.name longer than 63 characters is rejected (it becomes a label value)', async () => {
    await assert.rejects(cluster.kubectl(['apply', '-f', '-'], { input: sourceYaml('a'.repeat(64), { consul }) }), /at most 63 characters/);
  });
});
