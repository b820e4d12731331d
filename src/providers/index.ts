/** Every provider this build ships. A new provider is one folder plus one line here. */
import { consulProviderFactory } from './consul/index.ts';
import { ec2ProviderFactory } from './ec2/index.ts';
import { gceProviderFactory } from './gce/index.ts';
import { factoriesOf, type ProviderFactories } from './registry.ts';

export function builtinProviders(): ProviderFactories {
  return factoriesOf([consulProviderFactory, ec2ProviderFactory, gceProviderFactory]);
}
