/** Build step (make manifests): writes the CRD files from src/api/schema.ts. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crdYaml, CRD_FILE } from '../api/crd-yaml.ts';
import { REPO_ROOT } from './paths.ts';

// crds/ is what the local cluster applies; config/crd/bases/ is the copy kustomize may load.
for (const file of [CRD_FILE, 'config/crd/bases/vmregistry.io_vmregistrysources.yaml']) {
  writeFileSync(join(REPO_ROOT, file), crdYaml());
  process.stdout.write(`wrote ${file}\n`);
}
