/** The schema of spec.ec2; the EC2 descriptor registers it with the API. */
import { DNS_SUBDOMAIN, HTTP_URL, SECRET_NAMESPACE_RULE, stringMap } from '../../api/schema.ts';
import type { JsonSchema } from '../../api/schema-types.ts';
import type { ProviderSpec } from '../../api/types.ts';

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
          rule: SECRET_NAMESPACE_RULE,
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

/** spec.ec2 after defaulting. */
export type Ec2Spec = ProviderSpec<'ec2'>;
