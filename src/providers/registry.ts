/**
 * The registered providers: their descriptors (loaded with the operator) and their
 * factories, loaded on demand. A provider's module (and the client library behind it:
 * @aws-sdk/client-ec2, google-auth-library, consul) is imported the first time a source
 * names that provider, never before: an operator without GCE sources never pays for the
 * Compute client.
 */
import { sourceApi, type SourceApi } from '../api/source-api.ts';
import type { ProviderName } from '../api/types.ts';
import type { ProviderDescriptor, ProviderOptions } from './descriptor.ts';
import type { ProviderFactory } from './provider.ts';

export interface ProviderFactories {
  /** Providers this build can load. */
  readonly names: readonly ProviderName[];
  readonly descriptors: readonly ProviderDescriptor[];
  /** The API derived from the descriptors: validation and defaulting of specs that name them. */
  readonly api: SourceApi;
  /** The factory of a provider, importing its module on first use; undefined when the build has no such provider. */
  load(name: ProviderName): Promise<ProviderFactory | undefined>;
  /** Names whose module has been imported so far (for tests and the memory benchmark). */
  loaded(): readonly ProviderName[];
}

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
export function lazyFactories(descriptors: readonly ProviderDescriptor[], options: ProviderOptions = {}): ProviderFactories {
  const byName = new Map(descriptors.map((d) => [d.name, d]));
  const pending = new Map<ProviderName, Promise<ProviderFactory>>();
  const done = new Set<ProviderName>();
  const names = [...byName.keys()];
  return {
    names,
    descriptors,
    api: sourceApi(descriptors),
    load(name) {
      const descriptor = byName.get(name);
      if (descriptor === undefined) return Promise.resolve(undefined);
      let p = pending.get(name);
      if (p === undefined) {
        p = descriptor.load(options).then(
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

/** Factories that are already in memory (tests, fixtures), registered with their descriptors. */
export function factoriesOf(list: readonly ProviderFactory[]): ProviderFactories {
  const byName = new Map(list.map((f) => [f.descriptor.name, f]));
  const descriptors = list.map((f) => f.descriptor);
  return {
    names: [...byName.keys()],
    descriptors,
    api: sourceApi(descriptors),
    load: (name) => Promise.resolve(byName.get(name)),
    loaded: () => [...byName.keys()],
  };
}
