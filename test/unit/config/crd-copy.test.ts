/**
 * kustomize loads only files in or below a kustomization's directory, so config/crd
 * carries a copy of the generated CRD. It must stay byte-identical to crds/ and to what
 * the generator writes today.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../../../src/dev/paths.ts';
import { CRD_FILE, crdYaml } from '../../../src/api/crd-yaml.ts';
import { BUILTIN_API } from '../../../src/providers/builtin.ts';
import { CONFIG_DIR, kustomizationFiles } from '../../harness/manifests.ts';

const COPY = join(CONFIG_DIR, 'crd', 'bases', 'vmregistry.io_vmregistrysources.yaml');

test('config/crd/bases holds the same CRD as crds/ (run `make manifests` and copy it when this fails)', async () => {
  const [copy, generated] = await Promise.all([readFile(COPY, 'utf8'), readFile(join(REPO_ROOT, CRD_FILE), 'utf8')]);
  assert.equal(copy, generated);
});

test('the copy matches the schema in src/api', async () => {
  assert.equal(await readFile(COPY, 'utf8'), crdYaml(BUILTIN_API));
});

test('config/crd/kustomization.yaml lists the copy', async () => {
  assert.deepEqual(await kustomizationFiles(join(CONFIG_DIR, 'crd')), [COPY]);
});
