/**
 * The reads the decision layer needs beyond the owned objects: who holds the names a
 * source is about to create. For a few names a GET each is cheapest; for many (the
 * first sync of a large registry) one paged LIST of the namespace halves the requests.
 */
import type { VmRegistrySource } from '../api/types.ts';
import { isNotFound } from '../runtime/kube-client.ts';
import { mapLimit } from '../runtime/concurrency.ts';
import type { ManagedObject } from '../plan/inventory.ts';
import type { ManagedKind } from '../plan/kinds.ts';
import { isOwnedBy } from '../api/ownership.ts';
import type { DesiredObject } from '../plan/decide.ts';
import type { ObjectWriter } from './writer.ts';

/** Above this many names, one LIST replaces a GET per name. */
export const LIST_INSTEAD_OF_GET = 20;

export interface NameHolders<C> {
  /** Objects of those names the source owns (a cache that lagged behind). */
  readonly owned: C[];
  /** Objects of those names the source does not own. */
  readonly foreign: C[];
  readonly unreadable: Map<string, Error>;
}

export async function lookUpNames<D extends DesiredObject, C extends ManagedObject>(
  writer: ObjectWriter,
  kind: ManagedKind<D, C>,
  source: VmRegistrySource,
  names: readonly string[],
  options: { readonly concurrency?: number; readonly keep?: (item: C) => C } = {},
): Promise<NameHolders<C>> {
  const ns = source.metadata.namespace;
  const found: C[] = [];
  const unreadable = new Map<string, Error>();
  if (names.length > LIST_INSTEAD_OF_GET) {
    const wanted = new Set(names);
    const all = await writer.list<C>(kind.resource, ns, options.keep ? { keep: options.keep } : {});
    found.push(...all.filter((o) => wanted.has(o.metadata.name)));
  } else {
    await mapLimit(names, options.concurrency ?? 8, async (name) => {
      try {
        found.push(await writer.get<C>(kind.resource, ns, name));
      } catch (e) {
        if (!isNotFound(e)) unreadable.set(name, e instanceof Error ? e : new Error(String(e)));
      }
    });
  }
  return { owned: found.filter((o) => isOwnedBy(o, source)), foreign: found.filter((o) => !isOwnedBy(o, source)), unreadable };
}
