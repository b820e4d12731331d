/** The EC2 provider as the registry sees it before its module (and the AWS SDK) is loaded. */
import type { ProviderDescriptor } from '../descriptor.ts';
import { ec2SpecSchema } from './spec-schema.ts';

declare module '../../api/types.ts' {
  interface ProviderSpecSchemas {
    ec2: typeof ec2SpecSchema;
  }
}

export const ec2Descriptor: ProviderDescriptor<'ec2'> = {
  name: 'ec2',
  specSchema: ec2SpecSchema,
  reasonPrefix: 'EC2',
  sample: { region: 'eu-west-1', filters: [{ name: 'tag:mesh', values: ['true'] }] },
  load: async () => (await import('./index.ts')).ec2ProviderFactory,
};
