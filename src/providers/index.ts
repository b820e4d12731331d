/**
 * Every provider this build ships, in the order of the CRD's spec fields. A new provider
 * is one folder (with its descriptor.ts) plus one entry in PROVIDERS; the CRD, the
 * exactly-one-provider rule, status.provider, validation and the status reasons follow
 * from it (docs/providers.md). Descriptors are light: this module loads no provider
 * implementation and no validator (builtin.ts builds the API and the lazy factories).
 */
import { consulDescriptor } from './consul/descriptor.ts';
import type { ProviderDescriptor } from './descriptor.ts';
import { ec2Descriptor } from './ec2/descriptor.ts';
import { gceDescriptor } from './gce/descriptor.ts';

export const PROVIDERS: readonly ProviderDescriptor[] = [consulDescriptor, ec2Descriptor, gceDescriptor];
