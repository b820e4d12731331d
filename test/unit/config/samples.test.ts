/** config/samples: one valid, self-contained VmRegistrySource per provider. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import { providerOf, type VmRegistrySourceSpecInput } from '../../../src/api/types.ts';
import { ALLOWED_ENDPOINTS_ANNOTATION, checkSecretConsent, parseEntries } from '../../../src/controller/consent.ts';
import { secretKey } from '../../../src/providers/provider.ts';
import { CONFIG_DIR, kustomizationFiles, readDocs, yamlFilesIn, type K8sObject } from '../../harness/manifests.ts';
import { BUILTIN_API, builtinProviders } from '../../../src/providers/builtin.ts';

const { validateSpec, providerNames } = BUILTIN_API;

const SAMPLES = join(CONFIG_DIR, 'samples');

interface Sample {
  file: string;
  docs: K8sObject[];
}

async function samples(): Promise<Sample[]> {
  return Promise.all((await yamlFilesIn(SAMPLES)).map(async (file) => ({ file: basename(file), docs: await readDocs(file) })));
}

const sourcesOf = (s: Sample) => s.docs.filter((d) => d.kind === 'VmRegistrySource') as Array<K8sObject & { spec: unknown }>;

describe('config/samples', () => {
  test('every sample VmRegistrySource passes validateSpec', async () => {
    const all = await samples();
    assert.ok(all.length >= 3, 'at least three sample files');
    for (const s of all) {
      const sources = sourcesOf(s);
      assert.equal(sources.length, 1, `${s.file}: one VmRegistrySource`);
      for (const src of sources) {
        assert.equal(src.apiVersion, 'vmregistry.io/v1alpha1', `${s.file}: apiVersion`);
        assert.doesNotThrow(() => validateSpec(src.spec), `${s.file}: ${src.metadata.name} is valid`);
      }
    }
  });

  test('there is one sample per provider, named after it', async () => {
    const byProvider = new Map<string, string>();
    for (const s of await samples()) {
      for (const src of sourcesOf(s)) byProvider.set(providerOf(src.spec as VmRegistrySourceSpecInput), s.file);
    }
    for (const p of providerNames) assert.equal(byProvider.get(p), `${p}.yaml`, `a sample for ${p}`);
  });

  test('every Secret a sample refers to is in the same file, with the referenced key', async () => {
    for (const s of await samples()) {
      const secrets = new Map(
        s.docs.filter((d) => d.kind === 'Secret').map((d) => [d.metadata.name, d as K8sObject & { stringData?: Record<string, string>; data?: Record<string, string> }]),
      );
      for (const src of sourcesOf(s)) {
        const spec = validateSpec(src.spec);
        const refs: Array<{ name: string; keys: string[] }> = [];
        if (spec.consul?.tokenSecretRef) refs.push({ name: spec.consul.tokenSecretRef.name, keys: [spec.consul.tokenSecretRef.key] });
        if (spec.consul?.tls?.caSecretRef) refs.push({ name: spec.consul.tls.caSecretRef.name, keys: [spec.consul.tls.caSecretRef.key] });
        const ec2 = spec.ec2?.credentialsSecretRef;
        if (ec2) refs.push({ name: ec2.name, keys: [ec2.accessKeyIdKey, ec2.secretAccessKeyKey, ...(ec2.sessionTokenKey ? [ec2.sessionTokenKey] : [])] });
        if (spec.gce?.credentialsSecretRef) refs.push({ name: spec.gce.credentialsSecretRef.name, keys: [spec.gce.credentialsSecretRef.key] });
        assert.ok(refs.length > 0, `${s.file}: refers to a Secret`);
        for (const ref of refs) {
          const secret = secrets.get(ref.name);
          assert.ok(secret, `${s.file}: Secret ${ref.name} is in the file`);
          for (const key of ref.keys) {
            assert.ok(secret.stringData?.[key] !== undefined || secret.data?.[key] !== undefined, `${s.file}: Secret ${ref.name} has key ${key}`);
          }
        }
      }
    }
  });

  test("every sample Secret consents to exactly where its sample source sends it", async () => {
    const factories = builtinProviders();
    for (const s of await samples()) {
      const secrets = s.docs.filter((d) => d.kind === 'Secret') as Array<K8sObject & { metadata: { annotations?: Record<string, string> }; stringData?: Record<string, string> }>;
      for (const src of sourcesOf(s)) {
        const spec = validateSpec(src.spec);
        const factory = await factories.load(providerOf(spec));
        assert.ok(factory);
        const refs = factory.secretRefs(spec).filter((r) => r.use !== 'trust');
        const values = new Map(refs.map((r) => [secretKey(r), secrets.find((x) => x.metadata.name === r.name)?.stringData?.[r.key] ?? '']));
        const destinations = factory.credentialUse(spec, values).destinations;
        for (const name of new Set(refs.map((r) => r.name))) {
          const annotation = secrets.find((x) => x.metadata.name === name)?.metadata.annotations?.[ALLOWED_ENDPOINTS_ANNOTATION];
          assert.doesNotThrow(() => checkSecretConsent({ namespace: 'vm-workloads', name, allowedEndpoints: annotation }, destinations), `${s.file}: ${name}`);
          assert.equal(parseEntries(annotation).allowed.size, new Set(destinations.map((d) => d.entry)).size, `${s.file}: ${name} allows no more than needed`);
        }
      }
    }
  });

  test('samples leave the namespace to the one applying them', async () => {
    for (const s of await samples()) {
      for (const d of s.docs) assert.equal(d.metadata.namespace, undefined, `${s.file}: ${d.kind}/${d.metadata.name} has no namespace`);
    }
  });

  test('the samples kustomization lists every sample file', async () => {
    const listed = (await kustomizationFiles(SAMPLES)).map((f) => basename(f)).sort();
    assert.deepEqual(listed, (await samples()).map((s) => s.file).sort());
  });
});
