/**
 * Provider factories by name: the one place a new provider is registered. A provider's
 * module (and the client library behind it: @aws-sdk/client-ec2, google-auth-library,
 * consul) is imported the first time a source names that provider, never before: an
 * operator without GCE sources never pays for the Compute client.
 */
import type { ProviderName } from '../api/types.ts';
import type { ProviderFactory } from './provider.ts';

export interface ProviderFactories {
  /** Providers this build can load. */
  readonly names: readonly ProviderName[];
  /** The factory of a provider, importing its module on first use; undefined when the build has no such provider. */
  load(name: ProviderName): Promise<ProviderFactory | undefined>;
  /** Names whose module has been imported so far (for tests and the memory benchmark). */
  loaded(): readonly ProviderName[];
}

/** Imports a provider's module and returns its factory. */
export type FactoryLoader = () => Promise<ProviderFactory>;

/** A provider module that could not be imported (a broken install): reported on the source, retried later. */
export class ProviderLoadError extends Error {
  override readonly name = 'ProviderLoadError';
  readonly provider: ProviderName;
  constructor(provider: ProviderName, options: { cause: unknown }) {
    super(`the ${provider} provider module could not be loaded: ${(options.cause as Error)?.message ?? String(options.cause)}`, options);
    this.provider = provider;
  }
}

/** Factories loaded on demand; a module is imported once, concurrent first uses share the import. */
export function lazyFactories(loaders: Readonly<Partial<Record<ProviderName, FactoryLoader>>>): ProviderFactories {
  const pending = new Map<ProviderName, Promise<ProviderFactory>>();
  const done = new Set<ProviderName>();
  const names = Object.keys(loaders) as ProviderName[];
  return {
    names,
    load(name) {
      const loader = loaders[name];
      if (loader === undefined) return Promise.resolve(undefined);
      let p = pending.get(name);
      if (p === undefined) {
        p = loader().then(
          (f) => {
            done.add(name);
            return f;
          },
          (e: unknown) => {
            pending.delete(name); // a later sync tries again
            throw new ProviderLoadError(name, { cause: e });
          },
        );
        pending.set(name, p);
      }
      return p;
    },
    loaded: () => names.filter((n) => done.has(n)),
  };
}

/** Factories that are already in memory (tests, fixtures). */
export function factoriesOf(list: readonly ProviderFactory[]): ProviderFactories {
  const byName = new Map(list.map((f) => [f.name, f]));
  return {
    names: [...byName.keys()],
    load: (name) => Promise.resolve(byName.get(name)),
    loaded: () => [...byName.keys()],
  };
}
