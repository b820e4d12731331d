/** The GCE provider as the registry sees it before its module (and the Google auth library) is loaded. */
import type { ProviderDescriptor } from '../descriptor.ts';
import { gceSpecSchema } from './spec-schema.ts';

declare module '../../api/types.ts' {
  interface ProviderSpecSchemas {
    gce: typeof gceSpecSchema;
  }
}

export const gceDescriptor: ProviderDescriptor<'gce'> = {
  name: 'gce',
  specSchema: gceSpecSchema,
  reasonPrefix: 'GCE',
  sample: { project: 'my-project-1', filter: 'labels.mesh = "true"' },
  load: async () => (await import('./index.ts')).gceProviderFactory,
};
