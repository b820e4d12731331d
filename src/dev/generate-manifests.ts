/** Build step (make manifests): writes the CRD files from src/api/schema.ts and the registered providers' descriptors. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crdYaml, CRD_FILE } from '../api/crd-yaml.ts';
import { BUILTIN_API } from '../providers/builtin.ts';
import { REPO_ROOT } from './paths.ts';

// crds/ is what the local cluster applies; config/crd/bases/ is the copy kustomize may
// load, and the chart's crds/ the copy Helm installs.
const COPIES = ['config/crd/bases/vmregistry.io_vmregistrysources.yaml', 'charts/vm-registry-operator/crds/vmregistry.io_vmregistrysources.yaml'];
for (const file of [CRD_FILE, ...COPIES]) {
  writeFileSync(join(REPO_ROOT, file), crdYaml(BUILTIN_API));
  process.stdout.write(`wrote ${file}\n`);
}
