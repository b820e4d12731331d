/** Applies schema defaults the way the apiserver does, for specs read from files (preview). */
import type { JsonSchema } from './schema-types.ts';
import type { VmRegistrySourceSpec, VmRegistrySourceSpecInput } from './types.ts';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function defaultValue(schema: JsonSchema, value: unknown): unknown {
  let v = value === undefined && schema.default !== undefined ? structuredClone(schema.default) : value;
  if (schema.type === 'object' && isRecord(v)) {
    const out: Record<string, unknown> = { ...v };
    for (const [key, child] of Object.entries(schema.properties ?? {})) {
      const d = defaultValue(child, out[key]);
      if (d !== undefined) out[key] = d;
    }
    if (schema.additionalProperties) {
      for (const key of Object.keys(out)) out[key] = defaultValue(schema.additionalProperties, out[key]);
    }
    v = out;
  } else if (schema.type === 'array' && Array.isArray(v) && schema.items) {
    const items = schema.items;
    v = v.map((item) => defaultValue(items, item));
  }
  return v;
}

/** Defaults a spec with the schema of spec built for the registered providers (buildSpecSchema). */
export function applyDefaults(spec: VmRegistrySourceSpecInput, specSchema: JsonSchema): VmRegistrySourceSpec {
  return defaultValue(specSchema, spec) as VmRegistrySourceSpec;
}
