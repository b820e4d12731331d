/** The schema of spec.consul; the Consul descriptor registers it with the API. */
import { AT_LEAST_ONE_SECOND_RULE, duration, HTTP_URL, secretKeyRef, stringList, stringMap } from '../../api/schema.ts';
import type { JsonSchema } from '../../api/schema-types.ts';
import type { ProviderSpec } from '../../api/types.ts';

export const CONSUL_TIMEOUT_MESSAGE = 'consul.timeout must be at least 1s';

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
      'x-kubernetes-validations': [{ rule: AT_LEAST_ONE_SECOND_RULE, message: CONSUL_TIMEOUT_MESSAGE }],
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

/** spec.consul after defaulting. */
export type ConsulSpec = ProviderSpec<'consul'>;
