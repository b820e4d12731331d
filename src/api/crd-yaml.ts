/** The generated CRD as YAML text; crds/ holds the same bytes (checked by a unit test). */
import { stringify } from 'yaml';
import type { SourceApi } from './source-api.ts';

export const CRD_FILE = 'crds/vmregistry.io_vmregistrysources.yaml';

export function crdYaml(api: Pick<SourceApi, 'crd'>): string {
  return (
    '# Generated from src/api/schema.ts by `make manifests`; do not edit by hand.\n' +
    stringify(api.crd(), { lineWidth: 0 })
  );
}
