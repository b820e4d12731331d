/**
 * Validation of a VmRegistrySource outside the apiserver (vmreg preview, defence in
 * depth in the controller). Structural checks walk the spec schema built for the
 * registered providers (buildSpecSchema); the cross-field rules mirror the CEL rules of
 * the CRD, and the integration tests check both reject the same inputs.
 */
import { RE2JS } from 're2js';
import type { CelRule, JsonSchema } from './schema-types.ts';
import { AT_LEAST_ONE_SECOND_RULE, commonSpecSchema, exactlyOneProviderMessage, SECRET_NAMESPACE_RULE } from './schema.ts';
import { parseDuration } from './duration.ts';
import { defaultValue } from './defaults.ts';
import type { VmRegistrySourceSpec } from './types.ts';

export interface FieldError {
  readonly path: string;
  readonly message: string;
}

export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  readonly errors: readonly FieldError[];
  constructor(errors: readonly FieldError[]) {
    super(errors.map((e) => `${e.path}: ${e.message}`).join('; '));
    this.errors = errors;
  }
}

const compiledPatterns = new Map<string, RE2JS>();

/**
 * Tests a schema pattern the way the apiserver does: OpenAPI `pattern` and CEL
 * `matches()` are Go regexps (RE2), searched anywhere in the value unless anchored.
 */
export function matchesPattern(pattern: string, value: string): boolean {
  let re = compiledPatterns.get(pattern);
  if (re === undefined) {
    re = RE2JS.compile(pattern);
    compiledPatterns.set(pattern, re);
  }
  return re.test(value);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function walk(schema: JsonSchema, value: unknown, path: string, out: FieldError[]): void {
  const fail = (message: string): void => {
    out.push({ path, message });
  };
  switch (schema.type) {
    case 'object': {
      if (!isRecord(value)) return fail('must be an object');
      for (const key of schema.required ?? []) if (value[key] === undefined) out.push({ path: `${path}.${key}`, message: 'Required value' });
      if (schema.maxProperties !== undefined && Object.keys(value).length > schema.maxProperties) fail(`at most ${schema.maxProperties} entries`);
      for (const [key, child] of Object.entries(value)) {
        const declared = schema.properties !== undefined && Object.hasOwn(schema.properties, key) ? schema.properties[key] : undefined;
        const sub = declared ?? schema.additionalProperties;
        if (!sub) {
          if (!schema['x-kubernetes-preserve-unknown-fields']) out.push({ path: `${path}.${key}`, message: 'field not declared in schema' });
          continue;
        }
        walk(sub, child, `${path}.${key}`, out);
      }
      return;
    }
    case 'array': {
      if (!Array.isArray(value)) return fail('must be a list');
      if (schema.maxItems !== undefined && value.length > schema.maxItems) fail(`at most ${schema.maxItems} items`);
      if (schema.minItems !== undefined && value.length < schema.minItems) fail(`at least ${schema.minItems} items`);
      if (schema.items) value.forEach((item, i) => walk(schema.items as JsonSchema, item, `${path}[${i}]`, out));
      return;
    }
    case 'string': {
      if (typeof value !== 'string') return fail('must be a string');
      if (schema.enum && !schema.enum.includes(value)) return fail(`Unsupported value: "${value}": supported values: ${schema.enum.map((e) => `"${e}"`).join(', ')}`);
      if (schema.pattern && !matchesPattern(schema.pattern, value)) fail(`should match '${schema.pattern}'`);
      if (schema.maxLength !== undefined && value.length > schema.maxLength) fail(`at most ${schema.maxLength} characters`);
      if (schema.minLength !== undefined && value.length < schema.minLength) fail(`at least ${schema.minLength} characters`);
      return;
    }
    case 'integer':
    case 'number': {
      if (typeof value !== 'number' || (schema.type === 'integer' && !Number.isInteger(value))) return fail(`must be an ${schema.type}`);
      if (schema.minimum !== undefined && value < schema.minimum) fail(`should be greater than or equal to ${schema.minimum}`);
      if (schema.maximum !== undefined && value > schema.maximum) fail(`should be less than or equal to ${schema.maximum}`);
      return;
    }
    case 'boolean':
      if (typeof value !== 'boolean') fail('must be a boolean');
      return;
    default:
      return;
  }
}

type RuleMirror = (value: unknown, path: string, rule: CelRule, out: FieldError[]) => void;

/**
 * CEL rules that may sit anywhere in a provider's block, in TypeScript: a provider that
 * builds its schema from the helpers in schema.ts gets them checked here without a line
 * of its own. A provider with another rule adds its mirror here (a unit test lists the
 * rules of every registered provider that have none).
 */
export const MIRRORED_RULES: ReadonlyMap<string, RuleMirror> = new Map<string, RuleMirror>([
  [
    SECRET_NAMESPACE_RULE,
    (value, path, _rule, out) => {
      if (isRecord(value) && value['namespace'] !== undefined) {
        out.push({ path, message: 'namespace is not allowed: the Secret must be in the same namespace as the VmRegistrySource' });
      }
    },
  ],
  [
    AT_LEAST_ONE_SECOND_RULE,
    (value, path, rule, out) => {
      if (typeof value !== 'string') return;
      try {
        if (parseDuration(value) < 1000) out.push({ path, message: rule.message });
      } catch {
        /* reported by the pattern check */
      }
    },
  ],
]);

/** Runs the mirrored CEL rules of a schema and its children over a value whose shape is valid. */
function mirroredRules(schema: JsonSchema, value: unknown, path: string, out: FieldError[]): void {
  for (const rule of schema['x-kubernetes-validations'] ?? []) MIRRORED_RULES.get(rule.rule)?.(value, path, rule, out);
  if (isRecord(value)) {
    for (const [key, child] of Object.entries(value)) {
      const sub = schema.properties !== undefined && Object.hasOwn(schema.properties, key) ? schema.properties[key] : schema.additionalProperties;
      if (sub !== undefined) mirroredRules(sub, child, `${path}.${key}`, out);
    }
  } else if (Array.isArray(value) && schema.items !== undefined) {
    const items = schema.items;
    value.forEach((item, i) => mirroredRules(items, item, `${path}[${i}]`, out));
  }
}

/** The CRD's CEL rules, in TypeScript. */
function crossFieldRules(spec: VmRegistrySourceSpec, schemas: SpecSchemas, out: FieldError[]): void {
  const blocks = schemas.providerNames.filter((p) => (spec as Record<string, unknown>)[p] !== undefined);
  if (blocks.length !== 1) out.push({ path: 'spec', message: exactlyOneProviderMessage(schemas.providerNames) });
  try {
    const ms = parseDuration(spec.interval);
    if (ms < 1000 || ms > 86_400_000) out.push({ path: 'spec', message: 'interval must be between 1s and 24h' });
  } catch {
    /* reported by the pattern check */
  }
  for (const name of blocks) {
    const block = schemas.specSchema.properties?.[name];
    if (block !== undefined) mirroredRules(block, (spec as Record<string, unknown>)[name], `spec.${name}`, out);
  }
  spec.workloadEntry.relabelings?.forEach((rule, i) => {
    const path = `spec.workloadEntry.relabelings[${i}]`;
    if (['replace', 'lowercase', 'uppercase'].includes(rule.action) && rule.targetLabel === undefined) {
      out.push({ path, message: 'targetLabel is required for the replace, lowercase and uppercase actions' });
    }
    if (['keep', 'drop', 'lowercase', 'uppercase'].includes(rule.action) && !rule.sourceLabels?.length) {
      out.push({ path, message: 'sourceLabels is required for the keep, drop, lowercase and uppercase actions' });
    }
  });
  spec.serviceEntries?.hosts?.forEach((h, i) => {
    const path = `spec.serviceEntries.hosts[${i}]`;
    if (!h.includes('{service}')) out.push({ path, message: 'every host template must contain {service}, or all services would get the same host' });
    if (/[{}]/.test(h.replaceAll('{service}', '').replaceAll('{namespace}', '').replaceAll('{source}', ''))) {
      out.push({ path, message: 'host templates know only the placeholders {service}, {namespace} and {source}' });
    }
  });
  const keyPattern = commonSpecSchema.properties.workloadEntry.properties.serviceLabel.pattern;
  for (const key of Object.keys(spec.workloadEntry.labels ?? {})) {
    if (!matchesPattern(keyPattern, key)) {
      out.push({ path: 'spec.workloadEntry.labels', message: `label key "${key}" is not a valid Kubernetes label key` });
    }
  }
}

/** What validation needs to know of the registered providers (see api/source-api.ts). */
export interface SpecSchemas {
  /** The schema of spec with every registered provider's block (buildSpecSchema). */
  readonly specSchema: JsonSchema;
  readonly providerNames: readonly string[];
}

/**
 * Validates and defaults a spec against the registered providers; throws ValidationError
 * listing every schema problem, then (once the shape is right) every cross-field one.
 */
export function validateSpec(input: unknown, schemas: SpecSchemas): VmRegistrySourceSpec {
  const errors: FieldError[] = [];
  if (!isRecord(input)) throw new ValidationError([{ path: 'spec', message: 'Required value' }]);
  const spec = defaultValue(schemas.specSchema, input) as VmRegistrySourceSpec;
  walk(schemas.specSchema, spec, 'spec', errors);
  if (errors.length === 0) crossFieldRules(spec, schemas, errors);
  if (errors.length > 0) throw new ValidationError(errors);
  return spec;
}
