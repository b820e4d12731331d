/**
 * validateSpec: every sample in config/samples passes, and a table of bad specs is
 * rejected with the messages the apiserver would give (schema checks and the CRD's CEL
 * rules, mirrored).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { parseAllDocuments } from 'yaml';
import { ValidationError, type FieldError } from '../../../src/api/validate.ts';
import { providerOf } from '../../../src/api/types.ts';
import { REPO_ROOT } from '../../../src/dev/paths.ts';
import { BUILTIN_API } from '../../../src/providers/builtin.ts';

const { applyDefaults, validateSpec } = BUILTIN_API;

const SAMPLES = join(REPO_ROOT, 'config', 'samples');
const consul = { address: 'http://consul.example.com:8500' };

/** The errors validateSpec reports for input (none when it accepts it). */
function errorsOf(input: unknown): readonly FieldError[] {
  try {
    validateSpec(input);
    return [];
  } catch (e) {
    assert.ok(e instanceof ValidationError, `a ValidationError, not ${String(e)}`);
    return e.errors;
  }
}

async function sampleSources(): Promise<Array<{ file: string; name: string; spec: unknown }>> {
  const files = (await readdir(SAMPLES)).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').sort();
  const out: Array<{ file: string; name: string; spec: unknown }> = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(await readFile(join(SAMPLES, file), 'utf8'))) {
      const obj = doc.toJS() as { kind?: string; metadata?: { name?: string }; spec?: unknown } | null;
      if (obj?.kind === 'VmRegistrySource') out.push({ file, name: obj.metadata?.name ?? '', spec: obj.spec });
    }
  }
  return out;
}

describe('validateSpec: samples', () => {
  test('every VmRegistrySource in config/samples is valid, one per provider', async () => {
    const sources = await sampleSources();
    assert.ok(sources.length >= 3, `found ${sources.length} samples`);
    const providers = new Set<string>();
    for (const s of sources) {
      assert.deepEqual(errorsOf(s.spec), [], `${s.file}: ${s.name}`);
      providers.add(providerOf(validateSpec(s.spec)));
    }
    assert.deepEqual([...providers].sort(), ['consul', 'ec2', 'gce']);
  });

  test('a valid spec comes back defaulted, the input untouched', async () => {
    for (const s of await sampleSources()) {
      const before = structuredClone(s.spec);
      const spec = validateSpec(s.spec);
      assert.deepEqual(s.spec, before, `${s.file}: input not modified`);
      assert.deepEqual(spec, applyDefaults(structuredClone(s.spec) as Parameters<typeof applyDefaults>[0]));
      assert.ok(spec.interval && spec.policy && spec.deletionGuard && spec.workloadEntry.serviceLabel);
    }
  });

  test('the smallest specs are valid', () => {
    assert.deepEqual(errorsOf({ consul }), []);
    assert.deepEqual(errorsOf({ ec2: { region: 'eu-west-1' } }), []);
    assert.deepEqual(errorsOf({ gce: { project: 'my-project-1' } }), []);
  });
});

const PROVIDERS = 'exactly one provider must be set: consul, ec2 or gce';
const INTERVAL = 'interval must be between 1s and 24h';
const SECRET_NS = 'namespace is not allowed: the Secret must be in the same namespace as the VmRegistrySource';

/** [what, spec, path, message]: each bad spec and the one error it must produce. */
const BAD: Array<[string, unknown, string, string]> = [
  ['no provider', {}, 'spec', PROVIDERS],
  ['two providers', { consul, ec2: { region: 'eu-west-1' } }, 'spec', PROVIDERS],
  ['three providers', { consul, ec2: { region: 'eu-west-1' }, gce: { project: 'my-project-1' } }, 'spec', PROVIDERS],
  ['interval without unit', { consul, interval: '30' }, 'spec.interval', "should match '^([0-9]+(ms|s|m|h))+$'"],
  ['interval in days', { consul, interval: '1d' }, 'spec.interval', "should match '^([0-9]+(ms|s|m|h))+$'"],
  ['interval 0s', { consul, interval: '0s' }, 'spec', INTERVAL],
  ['interval 999ms', { consul, interval: '999ms' }, 'spec', INTERVAL],
  ['interval 48h', { consul, interval: '48h' }, 'spec', INTERVAL],
  ['interval 24h1s', { consul, interval: '24h1s' }, 'spec', INTERVAL],
  ['port 0', { consul, workloadEntry: { ports: [{ name: 'http', number: 0 }] } }, 'spec.workloadEntry.ports[0].number', 'should be greater than or equal to 1'],
  ['port 70000', { consul, workloadEntry: { ports: [{ name: 'http', number: 70000 }] } }, 'spec.workloadEntry.ports[0].number', 'should be less than or equal to 65535'],
  ['port not an integer', { consul, workloadEntry: { ports: [{ name: 'http', number: 80.5 }] } }, 'spec.workloadEntry.ports[0].number', 'must be an integer'],
  ['port without name', { consul, workloadEntry: { ports: [{ number: 80 }] } }, 'spec.workloadEntry.ports[0].name', 'Required value'],
  ['unknown policy', { consul, policy: 'mirror' }, 'spec.policy', 'Unsupported value: "mirror": supported values: "sync", "upsert-only", "create-only"'],
  ['consul tokenSecretRef.namespace', { consul: { ...consul, tokenSecretRef: { name: 'tok', namespace: 'other' } } }, 'spec.consul.tokenSecretRef', SECRET_NS],
  ['consul caSecretRef.namespace', { consul: { ...consul, tls: { caSecretRef: { name: 'ca', namespace: 'other' } } } }, 'spec.consul.tls.caSecretRef', SECRET_NS],
  ['ec2 credentialsSecretRef.namespace', { ec2: { region: 'eu-west-1', credentialsSecretRef: { name: 'aws', namespace: 'other' } } }, 'spec.ec2.credentialsSecretRef', SECRET_NS],
  ['gce credentialsSecretRef.namespace', { gce: { project: 'my-project-1', credentialsSecretRef: { name: 'key', namespace: 'other' } } }, 'spec.gce.credentialsSecretRef', SECRET_NS],
  ['label key with a space', { consul, workloadEntry: { labels: { 'bad key': 'x' } } }, 'spec.workloadEntry.labels', 'label key "bad key" is not a valid Kubernetes label key'],
  ['label key with an uppercase prefix', { consul, workloadEntry: { labels: { 'Example.com/team': 'x' } } }, 'spec.workloadEntry.labels', 'label key "Example.com/team" is not a valid Kubernetes label key'],
  ['label key name of 64 characters', { consul, workloadEntry: { labels: { ['a'.repeat(64)]: 'x' } } }, 'spec.workloadEntry.labels', `label key "${'a'.repeat(64)}" is not a valid Kubernetes label key`],
  ['relabel replace without targetLabel', { consul, workloadEntry: { relabelings: [{ sourceLabels: ['__meta_x'] }] } }, 'spec.workloadEntry.relabelings[0]', 'targetLabel is required for the replace, lowercase and uppercase actions'],
  ['relabel keep without sourceLabels', { consul, workloadEntry: { relabelings: [{ action: 'keep', regex: 'x' }] } }, 'spec.workloadEntry.relabelings[0]', 'sourceLabels is required for the keep, drop, lowercase and uppercase actions'],
  ['relabel drop with empty sourceLabels', { consul, workloadEntry: { relabelings: [{ action: 'labeldrop', regex: 'x' }, { action: 'drop', sourceLabels: [] }] } }, 'spec.workloadEntry.relabelings[1]', 'sourceLabels is required for the keep, drop, lowercase and uppercase actions'],
  ['unknown relabel action', { consul, workloadEntry: { relabelings: [{ action: 'hashmod', targetLabel: 'x' }] } }, 'spec.workloadEntry.relabelings[0].action', 'Unsupported value: "hashmod": supported values: "replace", "keep", "drop", "labelmap", "labeldrop", "labelkeep", "lowercase", "uppercase"'],
  ['bad region', { ec2: { region: 'Europe' } }, 'spec.ec2.region', "should match '^[a-z]{2}(-[a-z]+)+-[0-9]+$'"],
  ['region without number', { ec2: { region: 'eu-west' } }, 'spec.ec2.region', "should match '^[a-z]{2}(-[a-z]+)+-[0-9]+$'"],
  ['bad gce project (uppercase)', { gce: { project: 'My-Project' } }, 'spec.gce.project', "should match '^[a-z][-a-z0-9]{4,28}[a-z0-9]$'"],
  ['bad gce project (too short)', { gce: { project: 'abc' } }, 'spec.gce.project', "should match '^[a-z][-a-z0-9]{4,28}[a-z0-9]$'"],
  ['weight 0', { gce: { project: 'my-project-1' }, workloadEntry: { weight: 0 } }, 'spec.workloadEntry.weight', 'should be greater than or equal to 1'],
  ['weight above a million', { consul, workloadEntry: { weight: 1_000_001 } }, 'spec.workloadEntry.weight', 'should be less than or equal to 1000000'],
  ['consul address not http', { consul: { address: 'consul:8500' } }, 'spec.consul.address', "should match '^https?://[^\\s/$.?#][^\\s]*$'"],
  ['consul without address', { consul: { datacenter: 'dc1' } }, 'spec.consul.address', 'Required value'],
  ['unknown field', { consul, mode: 'fast' }, 'spec.mode', 'field not declared in schema'],
  ['maxDeletePercent above 100', { consul, deletionGuard: { maxDeletePercent: 101 } }, 'spec.deletionGuard.maxDeletePercent', 'should be less than or equal to 100'],
  ['suspend as a string', { consul, suspend: 'true' }, 'spec.suspend', 'must be a boolean'],
  ['services not a list', { consul: { ...consul, services: 'web' } }, 'spec.consul.services', 'must be a list'],
  ['bad health mode', { consul: { ...consul, health: { mode: 'ignore' } } }, 'spec.consul.health.mode', 'Unsupported value: "ignore": supported values: "exclude", "status"'],
  ['ec2 filter without values', { ec2: { region: 'eu-west-1', filters: [{ name: 'tag:mesh', values: [] }] } }, 'spec.ec2.filters[0].values', 'at least 1 items'],
  ['bad gce zone', { gce: { project: 'my-project-1', zones: ['europe-west1'] } }, 'spec.gce.zones[0]', "should match '^[a-z]+-[a-z]+[0-9]+-[a-z]$'"],
  ['bad label value', { consul, workloadEntry: { labels: { team: 'a b' } } }, 'spec.workloadEntry.labels.team', "should match '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$'"],
];

describe('validateSpec: rejects bad specs with the apiserver\'s messages', () => {
  for (const [what, spec, path, message] of BAD) {
    test(what, () => {
      const before = structuredClone(spec);
      assert.throws(() => validateSpec(spec), ValidationError);
      assert.deepEqual(errorsOf(spec), [{ path, message }]);
      assert.deepEqual(spec, before, 'input not modified');
    });
  }

  test('not an object at all', () => {
    for (const input of [undefined, null, 'consul', 3, []]) assert.deepEqual(errorsOf(input), [{ path: 'spec', message: 'Required value' }]);
  });

  test('every problem is listed, and the error message names each', () => {
    const spec = { consul: { address: 'nope' }, policy: 'mirror', workloadEntry: { weight: 0 } };
    const errors = errorsOf(spec);
    assert.deepEqual(errors.map((e) => e.path).sort(), ['spec.consul.address', 'spec.policy', 'spec.workloadEntry.weight']);
    try {
      validateSpec(spec);
    } catch (e) {
      assert.ok(e instanceof ValidationError);
      for (const err of errors) assert.ok(e.message.includes(`${err.path}: ${err.message}`));
      assert.equal(e.name, 'ValidationError');
    }
  });

  test('the bounds themselves are valid: interval 1s and 24h, ports 1 and 65535, weight 1, maxDeletePercent 0 and 100', () => {
    for (const spec of [
      { consul, interval: '1s' },
      { consul, interval: '24h' },
      { consul, interval: '1000ms' },
      { consul, interval: '23h59m60s' },
      { consul, workloadEntry: { ports: [{ name: 'a', number: 1 }, { name: 'b', number: 65535 }], weight: 1 } },
      { consul, deletionGuard: { maxDeletePercent: 0 } },
      { consul, deletionGuard: { maxDeletePercent: 100 } },
      { consul, workloadEntry: { labels: { 'example.com/team': 'pay', ['a'.repeat(63)]: '' } } },
      { consul, workloadEntry: { relabelings: [{ action: 'labelmap', regex: '__meta_(.+)' }, { action: 'uppercase', sourceLabels: ['a'], targetLabel: 'b' }] } },
    ]) {
      assert.deepEqual(errorsOf(spec), [], JSON.stringify(spec));
    }
  });

  // Known defect: walk() looks fields up with schema.properties?.[key], which finds
  // Object.prototype members, so these names pass as declared fields.
  test('fields named like Object.prototype members are undeclared fields too', () => {
    for (const key of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const spec = JSON.parse(`{"consul": {"address": "http://c:8500"}, ${JSON.stringify(key)}: "x"}`) as unknown;
      assert.deepEqual(errorsOf(spec), [{ path: `spec.${key}`, message: 'field not declared in schema' }], key);
    }
  });

  test('arbitrary input either validates or fails with a ValidationError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.record({ consul: fc.jsonValue(), workloadEntry: fc.jsonValue(), interval: fc.jsonValue() }, { requiredKeys: [] })), (input) => {
        try {
          validateSpec(input);
        } catch (e) {
          assert.ok(e instanceof ValidationError, String(e));
          assert.ok(e.errors.length > 0);
        }
      }),
      { numRuns: 500 },
    );
  });
});
