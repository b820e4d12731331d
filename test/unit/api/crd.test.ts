/**
 * The CRD in crds/ is generated from src/api/schema.ts: it must hold exactly what the
 * generator writes today, and the schema must be consistent with itself (defaults
 * valid, CEL messages mirrored by validate.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { RE2JS } from 're2js';
import { CRD_NAME } from '../../../src/api/crd.ts';
import { CRD_FILE, crdYaml as crdYamlOf } from '../../../src/api/crd-yaml.ts';
import { defaultValue } from '../../../src/api/defaults.ts';
import type { JsonSchema } from '../../../src/api/schema-types.ts';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../../../src/api/types.ts';
import { ValidationError, matchesPattern } from '../../../src/api/validate.ts';
import { REPO_ROOT } from '../../../src/dev/paths.ts';
import { BUILTIN_API } from '../../../src/providers/builtin.ts';

const { validateSpec, specSchema, statusSchema } = BUILTIN_API;
const buildCrd = (): Record<string, unknown> => BUILTIN_API.crd();
const crdYaml = (): string => crdYamlOf(BUILTIN_API);

const crdText = (): Promise<string> => readFile(join(REPO_ROOT, CRD_FILE), 'utf8');

/** Every sub-schema with its path. */
function* schemas(schema: JsonSchema, path: string): Generator<[string, JsonSchema]> {
  yield [path, schema];
  for (const [k, s] of Object.entries(schema.properties ?? {})) yield* schemas(s, `${path}.${k}`);
  if (schema.items) yield* schemas(schema.items, `${path}[]`);
  if (schema.additionalProperties) yield* schemas(schema.additionalProperties, `${path}{}`);
}

describe('CRD', () => {
  test('crds/ holds exactly what crdYaml() generates (run `make manifests` when the schema changed)', async () => {
    assert.equal(await crdText(), crdYaml());
  });

  test('the YAML parses back to buildCrd()', async () => {
    assert.deepEqual(parse(await crdText()), buildCrd());
  });

  test('names, group, version and the spec/status schemas come from src/api and the registered providers', () => {
    const crd = buildCrd() as {
      metadata: { name: string };
      spec: {
        group: string;
        names: { kind: string; plural: string };
        scope: string;
        versions: Array<{ name: string; served: boolean; storage: boolean; subresources: unknown; schema: { openAPIV3Schema: { properties: Record<string, unknown> } } }>;
      };
    };
    assert.equal(crd.metadata.name, CRD_NAME);
    assert.equal(CRD_NAME, `${PLURAL}.${GROUP}`);
    assert.equal(crd.spec.group, GROUP);
    assert.equal(API_VERSION, `${GROUP}/${VERSION}`);
    assert.equal(crd.spec.names.kind, KIND);
    assert.equal(crd.spec.scope, 'Namespaced');
    assert.equal(crd.spec.versions.length, 1);
    const [v] = crd.spec.versions;
    assert.ok(v);
    assert.equal(v.name, VERSION);
    assert.ok(v.served && v.storage);
    assert.deepEqual(v.subresources, { status: {} });
    assert.equal(v.schema.openAPIV3Schema.properties['spec'], specSchema);
    assert.equal(v.schema.openAPIV3Schema.properties['status'], statusSchema);
  });

  test('the generated YAML is stable (two calls, same bytes) and starts with the do-not-edit header', () => {
    const a = crdYaml();
    assert.equal(a, crdYaml());
    assert.match(a, /^# Generated from src\/api\/schema\.ts/);
  });
});

describe('schema consistency', () => {
  test('every default is valid for its own schema (enum member, pattern, bounds)', () => {
    let checked = 0;
    for (const [path, s] of schemas(specSchema, 'spec')) {
      if (s.default === undefined) continue;
      checked++;
      const d = s.default;
      if (s.enum) assert.ok(typeof d === 'string' && s.enum.includes(d), `${path}: default ${String(d)} in enum`);
      if (s.pattern) assert.ok(matchesPattern(s.pattern, String(d)), `${path}: default matches pattern`);
      if (typeof d === 'number') {
        assert.ok(s.minimum === undefined || d >= s.minimum, `${path}: default >= minimum`);
        assert.ok(s.maximum === undefined || d <= s.maximum, `${path}: default <= maximum`);
      }
      if (typeof d === 'string') {
        assert.ok(s.minLength === undefined || d.length >= s.minLength, `${path}: default length`);
        assert.ok(s.maxLength === undefined || d.length <= s.maxLength, `${path}: default length`);
      }
      const expected = s.type === 'integer' || s.type === 'number' ? 'number' : s.type === 'object' ? 'object' : s.type;
      assert.equal(typeof d, expected, `${path}: default has the schema's type`);
    }
    assert.ok(checked >= 20, `checked ${checked} defaults`);
  });

  test('every pattern compiles as an RE2 regular expression (the apiserver\'s engine)', () => {
    for (const [path, s] of schemas(specSchema, 'spec')) {
      if (s.pattern) assert.doesNotThrow(() => RE2JS.compile(s.pattern as string), path);
    }
  });

  test('object defaults ({}) fill in to their nested defaults', () => {
    for (const [path, s] of schemas(specSchema, 'spec')) {
      if (s.type !== 'object' || s.default === undefined) continue;
      const filled = defaultValue(s, undefined) as Record<string, unknown>;
      for (const [k, child] of Object.entries(s.properties ?? {})) {
        if (child.default !== undefined) assert.notEqual(filled[k], undefined, `${path}.${k} defaulted`);
      }
    }
  });

  test('the CEL messages are the messages validate.ts reports', () => {
    const messages = (input: unknown): string[] => {
      try {
        validateSpec(input);
        return [];
      } catch (e) {
        assert.ok(e instanceof ValidationError);
        return e.errors.map((x) => x.message);
      }
    };
    const cel = [...schemas(specSchema, 'spec')].flatMap(([, s]) => s['x-kubernetes-validations'] ?? []).map((r) => r.message);
    const consul = { address: 'http://127.0.0.1:8500' };
    const reported = [
      ...messages({}),
      ...messages({ consul, interval: '0s' }),
      ...messages({ consul, workloadEntry: { relabelings: [{ action: 'lowercase' }] } }),
      ...messages({ consul: { ...consul, timeout: '500ms' } }),
    ];
    for (const m of reported) assert.ok(cel.includes(m), `"${m}" is a CEL message of the CRD`);
    assert.equal(reported.length, 5);
    // The Secret reference rule: validate.ts names the field in its path, the CRD in its message.
    const ns = messages({ consul: { ...consul, tokenSecretRef: { name: 's', namespace: 'other' } } });
    assert.equal(ns.length, 1);
    assert.ok(cel.filter((m) => m.includes('namespace is not allowed')).every((m) => m.endsWith(ns[0] as string)));
  });
});
