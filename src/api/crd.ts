/** Builds the VmRegistrySource CustomResourceDefinition from the schemas of spec and status (see source-api.ts). */
import type { JsonSchema } from './schema-types.ts';
import { GROUP, KIND, PLURAL, VERSION } from './types.ts';

export const CRD_NAME = `${PLURAL}.${GROUP}`;

export function buildCrd(specSchema: JsonSchema, statusSchema: JsonSchema): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: CRD_NAME },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: KIND.toLowerCase(),
        shortNames: ['vmrs'],
        categories: ['istio-vm'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Provider', type: 'string', jsonPath: '.status.provider' },
            { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
            { name: 'Entries', type: 'integer', jsonPath: '.status.managedEntries' },
            { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', priority: 1 },
            { name: 'Conflicts', type: 'integer', jsonPath: '.status.conflicts', priority: 1 },
            { name: 'ServiceEntries', type: 'integer', jsonPath: '.status.managedServiceEntries', priority: 1 },
            { name: 'SE-Conflicts', type: 'integer', jsonPath: '.status.serviceEntryConflicts', priority: 1 },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description:
                'VmRegistrySource keeps Istio WorkloadEntries in step with one VM registry (Consul, AWS EC2 or Google Compute Engine).',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: specSchema,
                status: statusSchema,
              },
              'x-kubernetes-validations': [
                {
                  rule: 'self.metadata.name.size() <= 63',
                  message: 'metadata.name must be at most 63 characters (it is used as a label value)',
                },
              ],
            },
          },
        },
      ],
    },
  };
}
