/**
 * The one source of truth for the VmRegistrySource API. The CRD YAML in crds/ is
 * generated from these objects (npm run manifests) and the TypeScript types in
 * types.ts are inferred from them, so the two cannot drift apart.
 */
import type { JsonSchema } from './schema-types.ts';

const DURATION = '^([0-9]+(ms|s|m|h))+$';
const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
const HTTP_URL = '^https?://[^\\s/$.?#][^\\s]*$';
// Qualified label key: optional DNS-subdomain prefix, then a name of at most 63 characters.
const LABEL_KEY =
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$';
const LABEL_VALUE = '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$';

export const CONSUL_TIMEOUT_MESSAGE = 'consul.timeout must be at least 1s';

const duration = (description: string, def: string) =>
  ({ type: 'string', description, pattern: DURATION, maxLength: 32, default: def }) as const;

/** A key of a Secret in the source's own namespace. */
const secretKeyRef = (description: string, defaultKey: string) =>
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
        rule: '!has(self.__namespace__)',
        message: 'secretRef.namespace is not allowed: the Secret must be in the same namespace as the VmRegistrySource',
        reason: 'FieldValueForbidden',
      },
    ],
  }) as const;

const stringList = (description: string, maxItems: number) =>
  ({ type: 'array', description, items: { type: 'string', minLength: 1, maxLength: 253 }, maxItems }) as const;

const stringMap = (description: string) =>
  ({ type: 'object', description, additionalProperties: { type: 'string' }, maxProperties: 64 }) as const;

export const consulSpecSchema = {
  type: 'object',
  description: 'Select services from a HashiCorp Consul catalog. Changes arrive through blocking queries.',
  required: ['address'],
  properties: {
    address: {
      type: 'string',
      description: 'HTTP(S) address of a Consul agent or server, e.g. http://consul.consul.svc:8500.',
      pattern: HTTP_URL,
      maxLength: 2048,
    },
    datacenter: { type: 'string', description: "Datacenter to query. Default: the agent's own.", maxLength: 253 },
    services: stringList('Service names to select. Empty: every service that matches tags.', 1000),
    tags: stringList('Tags an instance must carry, all of them. Empty: no tag filter.', 64),
    nodeMeta: stringMap('Node metadata an instance\'s node must carry (Consul node-meta filter).'),
    namespace: { type: 'string', description: 'Consul Enterprise namespace. Sent only when set.', maxLength: 64 },
    partition: { type: 'string', description: 'Consul Enterprise admin partition. Sent only when set.', maxLength: 64 },
    health: {
      type: 'object',
      description: 'How Consul health checks affect WorkloadEntries.',
      default: {},
      properties: {
        mode: {
          type: 'string',
          enum: ['exclude', 'status'],
          default: 'exclude',
          description:
            'exclude: only instances whose checks pass get a WorkloadEntry. status: every instance gets one, and Consul\'s verdict is written to its Healthy condition for Istio.',
        },
        includeWarning: {
          type: 'boolean',
          default: false,
          description: 'Treat checks in warning state as passing.',
        },
      },
    },
    tokenSecretRef: secretKeyRef('ACL token for Consul.', 'token'),
    tls: {
      type: 'object',
      description: 'TLS settings for an https address.',
      properties: {
        caSecretRef: secretKeyRef('PEM CA bundle that signs the Consul server certificate.', 'ca.crt'),
        serverName: { type: 'string', description: 'Server name to verify instead of the address host.', maxLength: 253 },
        insecureSkipVerify: {
          type: 'boolean',
          default: false,
          description: 'Skip server certificate verification. For testing only.',
        },
      },
    },
    timeout: {
      ...duration('Timeout of one non-blocking request to Consul. At least 1s: shorter would fail healthy agents under load.', '10s'),
      'x-kubernetes-validations': [{ rule: "duration(self) >= duration('1s')", message: CONSUL_TIMEOUT_MESSAGE }],
    },
    tagSeparator: {
      type: 'string',
      description: 'Tags of the form key<sep>value become labels key=value (the convention of Istio 1.7\'s Consul registry).',
      default: '|',
      minLength: 1,
      maxLength: 4,
    },
  },
} as const satisfies JsonSchema;

export const ec2SpecSchema = {
  type: 'object',
  description: 'Select instances from AWS EC2 (DescribeInstances).',
  required: ['region'],
  properties: {
    region: { type: 'string', description: 'AWS region, e.g. eu-west-1.', pattern: '^[a-z]{2}(-[a-z]+)+-[0-9]+$', maxLength: 32 },
    endpoint: {
      type: 'string',
      description: 'EC2 endpoint URL override, for VPC endpoints, other partitions or a local test server.',
      pattern: HTTP_URL,
      maxLength: 2048,
    },
    filters: {
      type: 'array',
      description:
        'EC2 filters in the API\'s own form, e.g. {name: "tag:mesh", values: ["true"]}. Unless one names instance-state-name, only running instances are selected.',
      maxItems: 50,
      items: {
        type: 'object',
        required: ['name', 'values'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 255 },
          values: { type: 'array', items: { type: 'string', maxLength: 255 }, minItems: 1, maxItems: 200 },
        },
      },
    },
    addressType: {
      type: 'string',
      enum: ['private-ipv4', 'public-ipv4', 'private-dns', 'ipv6'],
      default: 'private-ipv4',
      description: 'Which instance address becomes the WorkloadEntry address.',
    },
    serviceTagKey: {
      type: 'string',
      description: 'Tag whose value names the service an instance belongs to (the label given by workloadEntry.serviceLabel).',
      default: 'service',
      minLength: 1,
      maxLength: 128,
    },
    portsTagKey: {
      type: 'string',
      description:
        'Tag listing ports as name=number pairs separated by commas, e.g. "http=8080,grpc=9090". No default: without it no tag is read as ports. An instance whose tag has a bad pair is skipped with a reason.',
      maxLength: 128,
    },
    networkTagKey: { type: 'string', description: 'Optional tag whose value is the mesh network.', maxLength: 128 },
    serviceAccountTagKey: { type: 'string', description: 'Optional tag whose value is the service account.', maxLength: 128 },
    vpcNetworks: stringMap('Mesh network per VPC id, e.g. {"vpc-0abc": "network-eu"}. Default: the VPC id.'),
    credentialsSecretRef: {
      type: 'object',
      description:
        'Static access keys from a Secret in the source\'s namespace. Default: the AWS default credential chain (environment, web identity / IRSA, instance profile).',
      required: ['name'],
      properties: {
        name: { type: 'string', pattern: DNS_SUBDOMAIN, maxLength: 253 },
        accessKeyIdKey: { type: 'string', default: 'AWS_ACCESS_KEY_ID', maxLength: 253 },
        secretAccessKeyKey: { type: 'string', default: 'AWS_SECRET_ACCESS_KEY', maxLength: 253 },
        sessionTokenKey: { type: 'string', description: 'Optional key holding a session token.', maxLength: 253 },
        namespace: { type: 'string', description: 'Not allowed; present so the error is explicit.' },
      },
      'x-kubernetes-validations': [
        {
          rule: '!has(self.__namespace__)',
          message: 'credentialsSecretRef.namespace is not allowed: the Secret must be in the same namespace as the VmRegistrySource',
          reason: 'FieldValueForbidden',
        },
      ],
    },
    assumeRole: {
      type: 'object',
      description: 'Assume this IAM role (optionally cross-account) with the base credentials.',
      required: ['roleArn'],
      properties: {
        roleArn: { type: 'string', pattern: '^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$', maxLength: 2048 },
        externalId: { type: 'string', maxLength: 1224 },
        sessionName: { type: 'string', default: 'vm-registry-operator', pattern: '^[\\w+=,.@-]{2,64}$' },
      },
    },
    retryMode: {
      type: 'string',
      enum: ['standard', 'adaptive'],
      default: 'standard',
      description: 'AWS SDK retry mode; adaptive also rate-limits the client when throttled.',
    },
    maxAttempts: { type: 'integer', minimum: 1, maximum: 20, default: 3, description: 'AWS SDK attempts per call.' },
  },
} as const satisfies JsonSchema;

export const gceSpecSchema = {
  type: 'object',
  description: 'Select instances from Google Compute Engine.',
  required: ['project'],
  properties: {
    project: { type: 'string', description: 'Google Cloud project id.', pattern: '^[a-z][-a-z0-9]{4,28}[a-z0-9]$' },
    zones: {
      type: 'array',
      description: 'Zones to list, e.g. ["europe-west1-b"]. Empty: all zones (aggregatedList).',
      items: { type: 'string', pattern: '^[a-z]+-[a-z]+[0-9]+-[a-z]$' },
      maxItems: 100,
    },
    filter: {
      type: 'string',
      description: 'Compute Engine filter expression, e.g. labels.mesh = "true". Unless the filter names status, only RUNNING instances are selected.',
      maxLength: 4096,
    },
    addressType: {
      type: 'string',
      enum: ['internal', 'external'],
      default: 'internal',
      description: 'internal: the interface\'s networkIP; external: its first access config\'s natIP.',
    },
    networkInterface: {
      type: 'string',
      description: 'Name of the network interface whose address is used.',
      default: 'nic0',
      pattern: '^nic[0-9]+$',
    },
    serviceLabelKey: {
      type: 'string',
      description: 'GCE label whose value names the service an instance belongs to.',
      default: 'service',
      maxLength: 63,
    },
    portsMetadataKey: {
      type: 'string',
      description: 'Optional metadata key listing ports as name=number pairs, e.g. "http=8080,grpc=9090".',
      maxLength: 128,
    },
    credentialsSecretRef: secretKeyRef(
      'Service-account key JSON. Default: Application Default Credentials (workload identity).',
      'key.json',
    ),
    endpoint: {
      type: 'string',
      description: 'Compute API endpoint override (Private Service Connect or a local test server).',
      pattern: HTTP_URL,
      maxLength: 2048,
    },
  },
} as const satisfies JsonSchema;

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

export const specSchema = {
  type: 'object',
  description: 'Which VM registry to read, what to select, and how to map it to Istio WorkloadEntries.',
  properties: {
    consul: consulSpecSchema,
    ec2: ec2SpecSchema,
    gce: gceSpecSchema,
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
      rule: '[has(self.consul), has(self.ec2), has(self.gce)].filter(x, x).size() == 1',
      message: 'exactly one provider must be set: consul, ec2 or gce',
    },
    {
      rule: "duration(self.interval) >= duration('1s') && duration(self.interval) <= duration('24h')",
      message: 'interval must be between 1s and 24h',
    },
  ],
} as const satisfies JsonSchema;

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

export const statusSchema = {
  type: 'object',
  properties: {
    observedGeneration: { type: 'integer', description: 'The spec generation the status describes.' },
    provider: { type: 'string', enum: ['consul', 'ec2', 'gce'], description: 'The provider in use.' },
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
