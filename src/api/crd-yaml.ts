/** The generated CRD as YAML text; crds/ holds the same bytes (checked by a unit test). */
import { stringify } from 'yaml';
import { buildCrd } from './crd.ts';

export const CRD_FILE = 'crds/vmregistry.io_vmregistrysources.yaml';

export function crdYaml(): string {
  return (
    '# Generated from src/api/schema.ts by `make manifests`; do not edit by hand.\n' +
    stringify(buildCrd(), { lineWidth: 0 })
  );
}
