/**
 * Map: a snapshot's endpoints → desired WorkloadEntries, with the provider's own
 * mapping (its default relabel rules and the annotations it puts on every entry). The
 * operator and `vmreg preview` both map through here, so preview prints what the
 * operator writes.
 */
import type { VmRegistrySourceSpec } from '../api/types.ts';
import type { Endpoint, ProviderFactory } from '../providers/provider.ts';
import { buildDesiredState, type MappingMemo } from './desired.ts';
import type { DesiredState } from './types.ts';

export interface MapInput {
  readonly sourceName: string;
  readonly spec: VmRegistrySourceSpec;
  readonly endpoints: readonly Endpoint[];
  /** The provider's factory; undefined maps with no provider rules. */
  readonly mapping: Pick<ProviderFactory, 'defaultMapping' | 'entryAnnotations'> | undefined;
  readonly memo?: MappingMemo;
}

export function mapEndpoints(input: MapInput): DesiredState {
  const { mapping, spec } = input;
  return buildDesiredState({
    sourceName: input.sourceName,
    spec,
    endpoints: input.endpoints,
    providerRules: mapping?.defaultMapping(spec) ?? [],
    providerAnnotations: mapping?.entryAnnotations?.(spec) ?? {},
    ...(input.memo ? { memo: input.memo } : {}),
  });
}
