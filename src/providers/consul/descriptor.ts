/** The Consul provider as the registry sees it before its module is loaded. */
import type { ProviderDescriptor } from '../descriptor.ts';
import { consulSpecSchema } from './spec-schema.ts';

declare module '../../api/types.ts' {
  interface ProviderSpecSchemas {
    consul: typeof consulSpecSchema;
  }
}

export const consulDescriptor: ProviderDescriptor<'consul'> = {
  name: 'consul',
  specSchema: consulSpecSchema,
  reasonPrefix: 'Consul',
  sample: { address: 'http://consul.consul.svc:8500', tags: ['mesh'] },
  load: async (options) => (await import('./index.ts')).createConsulProviderFactory(options.consul),
};
