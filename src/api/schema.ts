/**
 * The one source of truth for the VmRegistrySource API. The fields every source has are
 * here; each provider's block (spec.<provider>) comes from the provider's descriptor and
 * is joined in by buildSpecSchema. The CRD YAML in crds/ is generated from the result
 * (make manifests) and the TypeScript types in types.ts are inferred from the same
 * objects, so the two cannot drift apart.
 */
import type { JsonSchema } from './schema-types.ts';

export const DURATION = '^([0-9]+(ms|s|m|h))+$';
export const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
export const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
export const HTTP_URL = '^https?://[^\\s/$.?#][^\\s]*$';
// Qualified label key: optional DNS-subdomain prefix, then a name of at most 63 characters.
const LABEL_KEY =
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$';
const LABEL_VALUE = '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$';

export const duration = (description: string, def: string) =>
  ({ type: 'string', description, pattern: DURATION, maxLength: 32, default: def }) as const;

/**
 * The CEL rule that forbids a namespace on a Secret reference: Secrets are read only from
 * the source's own namespace. validate.ts mirrors it wherever a schema carries it.
 */
export const SECRET_NAMESPACE_RULE = '!has(self.__namespace__)';

/** The CEL rule of a duration of at least one second; validate.ts mirrors it too. */
export const AT_LEAST_ONE_SECOND_RULE = "duration(self) >= duration('1s')";

/** A key of a Secret in the source's own namespace. */
export const secretKeyRef = (description: string, defaultKey: string) =>
  ({
    type: 'object',
    description: `${description} The Secret must be in the VmRegistrySource's own namespace.`,
    required: ['name'],
    properties: {
      name: { type: 'string', description: 'Name of the Secret.', pattern: DNS_SUBDOMAIN, maxLength: 253 },
      key: { type: 'string', description: 'Key within the Secret.', default: defaultKey, minLength: 1, maxLength: 253 },
      namespace: {
        type: 'string',
        description: 'Not allowed: Secrets are read only from the source\'s own namespace. Present so the error is explicit.',
      },
    },
    'x-kubernetes-validations': [
      {
        rule: SECRET_NAMESPACE_RULE,
        message: 'secretRef.namespace is not allowed: the Secret must be in the same namespace as the VmRegistrySource',
        reason: 'FieldValueForbidden',
      },
    ],
  }) as const;

export const stringList = (description: string, maxItems: number) =>
  ({ type: 'array', description, items: { type: 'string', minLength: 1, maxLength: 253 }, maxItems }) as const;

export const stringMap = (description: string) =>
  ({ type: 'object', description, additionalProperties: { type: 'string' }, maxProperties: 64 }) as const;

export const relabelRuleSchema = {
  type: 'object',
  description: 'A Prometheus-style relabel rule applied to an endpoint\'s label set.',
  properties: {
    action: {
      type: 'string',
      enum: ['replace', 'keep', 'drop', 'labelmap', 'labeldrop', 'labelkeep', 'lowercase', 'uppercase'],
      default: 'replace',
    },
    sourceLabels: { type: 'array', items: { type: 'string', maxLength: 253 }, maxItems: 16 },
    separator: { type: 'string', default: ';', maxLength: 16 },
    regex: { type: 'string', default: '(.*)', maxLength: 1024, description: 'Anchored at both ends (RE2-like syntax).' },
    targetLabel: { type: 'string', maxLength: 253 },
    replacement: { type: 'string', default: '$1', maxLength: 1024 },
  },
  'x-kubernetes-validations': [
    {
      rule: "!(self.action in ['replace', 'lowercase', 'uppercase']) || has(self.targetLabel)",
      message: 'targetLabel is required for the replace, lowercase and uppercase actions',
      reason: 'FieldValueRequired',
    },
    {
      rule: "!(self.action in ['keep', 'drop', 'lowercase', 'uppercase']) || (has(self.sourceLabels) && size(self.sourceLabels) > 0)",
      message: 'sourceLabels is required for the keep, drop, lowercase and uppercase actions',
      reason: 'FieldValueRequired',
    },
  ],
} as const satisfies JsonSchema;

export const workloadEntryTemplateSchema = {
  type: 'object',
  description: 'How endpoints become WorkloadEntries.',
  default: {},
  properties: {
    serviceLabel: {
      type: 'string',
      description: 'Label key that carries the service name (what a ServiceEntry\'s workloadSelector matches).',
      default: 'app',
      pattern: LABEL_KEY,
      maxLength: 317,
    },
    ports: {
      type: 'array',
      description:
        'Named ports. A port without number takes the port the registry reports (Consul\'s service port, or a ports tag/metadata entry).',
      maxItems: 32,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
      items: {
        type: 'object',
        required: ['name'],
        properties: {
          name: { type: 'string', pattern: DNS_LABEL, maxLength: 63, description: 'Port name, e.g. http or tcp-postgres.' },
          number: { type: 'integer', minimum: 1, maximum: 65535 },
        },
      },
    },
    labels: {
      type: 'object',
      description: 'Static labels added to every WorkloadEntry.',
      additionalProperties: { type: 'string', pattern: LABEL_VALUE, maxLength: 63 },
      maxProperties: 64,
      'x-kubernetes-validations': [
        {
          rule: `self.all(k, k.matches(r'${LABEL_KEY}'))`,
          message: 'label keys must be valid Kubernetes label keys (optional DNS prefix, a name of at most 63 characters)',
        },
      ],
    },
    network: { type: 'string', description: 'Istio network the endpoints live in. Default: from the provider, if any.', maxLength: 253 },
    locality: {
      type: 'string',
      description: 'Locality region/zone/subzone. Default: from the provider (Consul datacenter, cloud region/zone).',
      pattern: '^[^/]+(/[^/]+){0,2}$',
      maxLength: 253,
    },
    weight: { type: 'integer', minimum: 1, maximum: 1000000, description: 'Load-balancing weight.' },
    serviceAccount: {
      type: 'string',
      description: 'Kubernetes service account the VM workloads run as (their mTLS identity).',
      pattern: DNS_SUBDOMAIN,
      maxLength: 253,
    },
    relabelings: {
      type: 'array',
      description:
        'Prometheus-style relabel rules run after the provider\'s default mapping. __address__, __network__, __locality__, __weight__, __service_account__ and __port_<name>__ set WorkloadEntry fields; other labels not starting with __ become WorkloadEntry labels.',
      maxItems: 64,
      items: relabelRuleSchema,
    },
  },
} as const satisfies JsonSchema;

/** Host templates: lower-case DNS names whose labels may hold {service}, {namespace} and {source}. */
const HOST_TEMPLATE = '^([a-z0-9{}]([-a-z0-9{}]*[a-z0-9{}])?)(\\.[a-z0-9{}]([-a-z0-9{}]*[a-z0-9{}])?)*$';

export const serviceEntryTemplateSchema = {
  type: 'object',
  description:
    'Opt-in: one Istio ServiceEntry per service the source selects (resolution STATIC, a workloadSelector on the service label and the source label, ports = the union of the named ports of the service\'s WorkloadEntries). Entries whose address is a DNS name cannot be selected by a STATIC ServiceEntry: they are counted in status and named in an Event. A service whose instances are all unhealthy keeps its ServiceEntry; it is deleted when the service leaves the registry (policy and deletion guard apply).',
  properties: {
    hosts: {
      type: 'array',
      description:
        'Host name templates; {service} is the service name (lower-cased, characters other than a-z, 0-9, "-" and "." become "-"), {namespace} the source\'s namespace, {source} its name. Default: ["{service}.service.consul"] for Consul (Istio 1.7\'s Consul registry), ["{service}.{namespace}.vm.internal"] for EC2 and GCE.',
      items: { type: 'string', pattern: HOST_TEMPLATE, minLength: 1, maxLength: 253 },
      minItems: 1,
      maxItems: 8,
      'x-kubernetes-validations': [
        {
          rule: "self.all(h, h.contains('{service}'))",
          message: 'every host template must contain {service}, or all services would get the same host',
        },
        {
          rule: "self.all(h, !h.replace('{service}', '').replace('{namespace}', '').replace('{source}', '').matches('[{}]'))",
          message: 'host templates know only the placeholders {service}, {namespace} and {source}',
        },
      ],
    },
    location: {
      type: 'string',
      enum: ['MESH_INTERNAL', 'MESH_EXTERNAL'],
      default: 'MESH_INTERNAL',
      description: 'MESH_INTERNAL: the VMs are part of the mesh (mTLS when they have a service account). MESH_EXTERNAL: outside the mesh.',
    },
    exportTo: {
      type: 'array',
      description: 'Namespaces the ServiceEntries are visible to ("." this namespace, "*" all). Default: Istio\'s (all namespaces).',
      items: { type: 'string', minLength: 1, maxLength: 253, pattern: '^(\\.|\\*|~|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$' },
      maxItems: 32,
    },
  },
} as const satisfies JsonSchema;

/**
 * The fields every source has, whatever its provider. Each registered provider adds its
 * own block next to them (spec.consul, spec.ec2, ...): see buildSpecSchema.
 */
export const commonSpecSchema = {
  type: 'object',
  description: 'Which VM registry to read, what to select, and how to map it to Istio WorkloadEntries.',
  properties: {
    workloadEntry: workloadEntryTemplateSchema,
    serviceEntries: serviceEntryTemplateSchema,
    interval: duration('How often the registry is read in full (Consul changes also arrive at once).', '30s'),
    policy: {
      type: 'string',
      enum: ['sync', 'upsert-only', 'create-only'],
      default: 'sync',
      description:
        'sync: create, update and delete. upsert-only: never delete. create-only: create only, never update or delete.',
    },
    suspend: { type: 'boolean', default: false, description: 'Stop syncing; existing WorkloadEntries are kept as they are.' },
    adopt: {
      type: 'boolean',
      default: false,
      description:
        'Migration from hand-written WorkloadEntries: take over an unowned entry with a desired name (otherwise such a clash is a conflict), and delete an unowned twin (same network, address, service label and ports) once the managed entry is in place. The deletion obeys policy and deletionGuard.',
    },
    deletionGuard: {
      type: 'object',
      description: 'Holds back a sync that would delete a large share of the managed entries at once.',
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true },
        maxDeletePercent: { type: 'integer', minimum: 0, maximum: 100, default: 50 },
      },
    },
  },
  'x-kubernetes-validations': [
    {
      rule: "duration(self.interval) >= duration('1s') && duration(self.interval) <= duration('24h')",
      message: 'interval must be between 1s and 24h',
    },
  ],
} as const satisfies JsonSchema;

/** What the API needs to know of a provider: its name (the spec field) and the schema of its block. */
export interface ProviderSchema {
  readonly name: string;
  readonly specSchema: JsonSchema;
}

/** "consul, ec2 or gce": provider names as a sentence lists them. */
export function listOfNames(names: readonly string[]): string {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

/** The message of the exactly-one-provider rule, shared by the CEL rule and the TypeScript validator. */
export function exactlyOneProviderMessage(names: readonly string[]): string {
  return `exactly one provider must be set: ${listOfNames(names)}`;
}

/**
 * The schema of spec: one block per provider, in registration order, before the common
 * fields, and a CEL rule that exactly one of the blocks is set.
 */
export function buildSpecSchema(providers: readonly ProviderSchema[]): JsonSchema {
  const names = providers.map((p) => p.name);
  const clash = names.find((n, i) => names.indexOf(n) !== i || Object.hasOwn(commonSpecSchema.properties, n));
  if (clash !== undefined) throw new Error(`provider name "${clash}" is registered twice or clashes with a spec field`);
  return {
    type: commonSpecSchema.type,
    description: commonSpecSchema.description,
    properties: { ...Object.fromEntries(providers.map((p) => [p.name, p.specSchema])), ...commonSpecSchema.properties },
    'x-kubernetes-validations': [
      {
        rule: `[${names.map((n) => `has(self.${n})`).join(', ')}].filter(x, x).size() == 1`,
        message: exactlyOneProviderMessage(names),
      },
      ...commonSpecSchema['x-kubernetes-validations'],
    ],
  };
}

const conditionSchema = {
  type: 'object',
  required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
  properties: {
    type: { type: 'string', maxLength: 316 },
    status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
    observedGeneration: { type: 'integer', minimum: 0 },
    lastTransitionTime: { type: 'string', format: 'date-time' },
    reason: { type: 'string', maxLength: 1024, minLength: 1 },
    message: { type: 'string', maxLength: 32768 },
  },
} as const satisfies JsonSchema;

/** The status; `provider` gets the enum of registered names from buildStatusSchema. */
export const statusSchema = {
  type: 'object',
  properties: {
    observedGeneration: { type: 'integer', description: 'The spec generation the status describes.' },
    provider: { type: 'string', description: 'The provider in use.' },
    conditions: {
      type: 'array',
      description: 'Ready summarises ProviderReady (the registry answered) and Synced (the entries match it).',
      items: conditionSchema,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    },
    desiredEntries: { type: 'integer', description: 'Endpoints the registry reports after selection and mapping.' },
    managedEntries: { type: 'integer', description: 'WorkloadEntries this source owns.' },
    conflicts: { type: 'integer', description: 'Desired entries blocked by objects this source does not own.' },
    skipped: { type: 'integer', description: 'Endpoints skipped as invalid (see the Synced condition and Events).' },
    heldBackDeletes: { type: 'integer', description: 'Deletions held back by the deletion guard or the policy.' },
    desiredServiceEntries: { type: 'integer', description: 'ServiceEntries the registry\'s services call for (spec.serviceEntries).' },
    managedServiceEntries: { type: 'integer', description: 'ServiceEntries this source owns.' },
    serviceEntryConflicts: {
      type: 'integer',
      description: 'Desired ServiceEntries blocked by a ServiceEntry this source does not own (same name, or same host in the namespace).',
    },
    unselectedEntries: {
      type: 'integer',
      description: 'WorkloadEntries with a DNS-name address: a STATIC ServiceEntry cannot select them, so they carry no traffic for it.',
    },
    lastSyncTime: {
      type: 'string',
      format: 'date-time',
      description: 'When the status last changed after a sync (status is written only when it changes).',
    },
  },
} as const satisfies JsonSchema;

/** The status schema with status.provider limited to the registered provider names. */
export function buildStatusSchema(providers: readonly ProviderSchema[]): JsonSchema {
  const { provider } = statusSchema.properties;
  const withEnum = { type: provider.type, enum: providers.map((p) => p.name), description: provider.description };
  // Same field order as statusSchema: the generated CRD keeps its bytes.
  const properties = Object.entries(statusSchema.properties).map(([field, schema]): [string, JsonSchema] => [field, field === 'provider' ? withEnum : schema]);
  return { type: statusSchema.type, properties: Object.fromEntries(properties) };
}
