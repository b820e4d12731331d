/** Writes crds/vmregistry.io_vmregistrysources.yaml from schema.ts (make manifests). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../dev/paths.ts';
import { crdYaml, CRD_FILE } from './crd-yaml.ts';

writeFileSync(join(REPO_ROOT, CRD_FILE), crdYaml());
process.stdout.write(`wrote ${CRD_FILE}\n`);
