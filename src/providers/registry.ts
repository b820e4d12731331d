/** Provider factories by name: the one place a new provider is registered. */
import type { ProviderName } from '../api/types.ts';
import type { ProviderFactory } from './provider.ts';

export type ProviderFactories = ReadonlyMap<ProviderName, ProviderFactory>;

export function factoriesOf(list: readonly ProviderFactory[]): ProviderFactories {
  return new Map(list.map((f) => [f.name, f]));
}
