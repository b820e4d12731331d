/** The schema of spec.gce; the GCE descriptor registers it with the API. */
import { HTTP_URL, secretKeyRef } from '../../api/schema.ts';
import type { JsonSchema } from '../../api/schema-types.ts';
import type { ProviderSpec } from '../../api/types.ts';

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

/** spec.gce after defaulting. */
export type GceSpec = ProviderSpec<'gce'>;
