/**
 * A provider describes itself and the rest follows: registering the test-only `memory`
 * descriptor (test/fixtures/memory-provider.ts) adds spec.memory to the CRD, its name to
 * the exactly-one-provider rule and to the status.provider enum, and validation,
 * defaulting and Secret-reference checks pick it up, with no line outside its own file.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { sourceApi } from '../../../src/api/source-api.ts';
import { REPO_ROOT } from '../../../src/dev/paths.ts';
import type { JsonSchema } from '../../../src/api/schema-types.ts';
import { ValidationError, MIRRORED_RULES } from '../../../src/api/validate.ts';
import { providerOf, type ProviderName } from '../../../src/api/types.ts';
import { ProviderError } from '../../../src/providers/errors.ts';
import { BUILTIN_API } from '../../../src/providers/builtin.ts';
import { PROVIDERS } from '../../../src/providers/index.ts';
import { factoriesOf } from '../../../src/providers/registry.ts';
import { memoryDescriptor, memoryProviderFactory, memorySpecSchema, TEST_API, TEST_CRD_YAML, TEST_PROVIDERS } from '../../fixtures/memory-provider.ts';

interface CrdShape {
  spec: { versions: Array<{ schema: { openAPIV3Schema: { properties: { spec: JsonSchema; status: JsonSchema } } } }> };
}

function schemasOf(yaml: string): { spec: JsonSchema; status: JsonSchema } {
  const v = (parse(yaml) as CrdShape).spec.versions[0];
  assert.ok(v);
  return v.schema.openAPIV3Schema.properties;
}

function errorsOf(input: unknown): Array<{ path: string; message: string }> {
  try {
    TEST_API.validateSpec(input);
    return [];
  } catch (e) {
    assert.ok(e instanceof ValidationError);
    return [...e.errors];
  }
}

/** Every CEL rule in a schema, with the path of the schema that carries it. */
function* celRules(schema: JsonSchema, path: string): Generator<[string, string]> {
  for (const r of schema['x-kubernetes-validations'] ?? []) yield [path, r.rule];
  for (const [k, s] of Object.entries(schema.properties ?? {})) yield* celRules(s, `${path}.${k}`);
  if (schema.items) yield* celRules(schema.items, `${path}[]`);
  if (schema.additionalProperties) yield* celRules(schema.additionalProperties, `${path}{}`);
}

describe('a registered provider descriptor', () => {
  const { spec, status } = schemasOf(TEST_CRD_YAML);

  test('adds its block to the CRD after the shipped providers, before the common fields', () => {
    assert.deepEqual(spec.properties?.['memory'], memorySpecSchema);
    assert.deepEqual(Object.keys(spec.properties ?? {}).slice(0, 5), ['consul', 'ec2', 'gce', 'memory', 'workloadEntry']);
  });

  test('joins the exactly-one-provider rule and the status.provider enum', () => {
    const oneOf = spec['x-kubernetes-validations']?.[0];
    assert.equal(oneOf?.rule, '[has(self.consul), has(self.ec2), has(self.gce), has(self.memory)].filter(x, x).size() == 1');
    assert.equal(oneOf?.message, 'exactly one provider must be set: consul, ec2, gce or memory');
    assert.deepEqual(status.properties?.['provider']?.enum, ['consul', 'ec2', 'gce', 'memory']);
  });

  test('the shipped CRD is untouched by it', () => {
    assert.equal(BUILTIN_API.specSchema.properties?.['memory'], undefined);
    assert.deepEqual(BUILTIN_API.statusSchema.properties?.['provider']?.enum, ['consul', 'ec2', 'gce']);
    assert.throws(() => BUILTIN_API.validateSpec({ memory: { registry: 'http://r.test' } }), ValidationError);
  });

  test('validation and defaulting know it', () => {
    const stored = TEST_API.validateSpec({ memory: { registry: 'http://r.test', tokenSecretRef: { name: 'tok' } } });
    assert.deepEqual(stored.memory, { registry: 'http://r.test', tokenSecretRef: { name: 'tok', key: 'token' } });
    assert.equal(providerOf(stored), 'memory');
    assert.deepEqual(errorsOf({ memory: {} }), [{ path: 'spec.memory.registry', message: 'Required value' }]);
    assert.deepEqual(errorsOf({ memory: { registry: 'http://r.test' }, consul: { address: 'http://c:8500' } }), [
      { path: 'spec', message: 'exactly one provider must be set: consul, ec2, gce or memory' },
    ]);
  });

  test('its Secret references are checked from its schema, without a list in validate.ts', () => {
    assert.deepEqual(errorsOf({ memory: { registry: 'http://r.test', tokenSecretRef: { name: 'tok', namespace: 'elsewhere' } } }), [
      { path: 'spec.memory.tokenSecretRef', message: 'namespace is not allowed: the Secret must be in the same namespace as the VmRegistrySource' },
    ]);
  });

  test('its sample is valid, and so is every shipped provider\'s', () => {
    for (const d of TEST_PROVIDERS) assert.doesNotThrow(() => TEST_API.validateSpec({ [d.name]: d.sample }), d.name);
  });

  test('its failures carry its reason prefix', () => {
    assert.equal(new ProviderError('memory', 'Unreachable', 'down').reason, `${memoryDescriptor.reasonPrefix}Unreachable`);
    for (const d of PROVIDERS) assert.equal(new ProviderError(d.name, 'Unauthorized', 'no').reason, `${d.reasonPrefix}Unauthorized`);
  });

  test('in-memory factories bring their descriptors: the operator validates with them', () => {
    const factories = factoriesOf([memoryProviderFactory(new Map())]);
    assert.deepEqual(factories.names, ['memory']);
    assert.equal(factories.api.validateSpec({ memory: { registry: 'http://r.test' } }).memory?.registry, 'http://r.test');
  });

  test('a name that clashes with a spec field or another provider is refused', () => {
    assert.throws(() => factoriesOf([memoryProviderFactory(new Map()), memoryProviderFactory(new Map())]), /"memory" is registered twice/);
    assert.throws(() => sourceApi([{ ...memoryDescriptor, name: 'interval' as ProviderName }]), /"interval" is registered twice or clashes/);
  });

  test('src/api knows no provider: it imports nothing from src/providers', async () => {
    const dir = join(REPO_ROOT, 'src', 'api');
    for (const file of await readdir(dir)) {
      const text = await readFile(join(dir, file), 'utf8');
      assert.doesNotMatch(text, /from '\.\.\/providers\//, file);
    }
  });

  test('every CEL rule inside a provider block is mirrored by validate.ts (else vmreg preview would not check it)', () => {
    for (const d of TEST_PROVIDERS) {
      for (const [path, rule] of celRules(d.specSchema, `spec.${d.name}`)) {
        assert.ok(MIRRORED_RULES.has(rule), `${path}: add a mirror of ${rule} to MIRRORED_RULES in src/api/validate.ts`);
      }
    }
  });
});
