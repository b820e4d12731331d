/** Writes crds/vmregistry.io_vmregistrysources.yaml from schema.ts (make manifests). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../dev/paths.ts';
import { crdYaml, CRD_FILE } from './crd-yaml.ts';

// crds/ is what the local cluster applies; config/crd/bases/ is the copy kustomize may load.
for (const file of [CRD_FILE, 'config/crd/bases/vmregistry.io_vmregistrysources.yaml']) {
  writeFileSync(join(REPO_ROOT, file), crdYaml());
  process.stdout.write(`wrote ${file}\n`);
}
