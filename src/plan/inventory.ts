/**
 * What the decision layer knows about the cluster: the objects a source owns, and the
 * objects it does not own that matter to this sync (those holding a desired name, and
 * for ServiceEntries every one of the namespace, whose hosts may clash). Read by the
 * reconciler before planning; updated from what the applier did, so the counts in
 * status are counted from it rather than worked out.
 */
import type { OwnerReference } from '../api/istio.ts';

/** The metadata the decision layer reads of any managed kind. */
export interface ObjectMeta {
  name: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  deletionTimestamp?: string;
}

export interface ManagedObject<S = unknown> {
  metadata: ObjectMeta;
  spec?: S;
}

export interface Inventory<C extends ManagedObject> {
  /** Objects the source owns (ownership.isOwnedBy), by name. */
  readonly owned: ReadonlyMap<string, C>;
  /** Objects the source does not own, by name: they may block (conflict) or be taken over (adoption). */
  readonly foreign: ReadonlyMap<string, C>;
  /** Names whose lookup failed: nothing of that name is written this sync. */
  readonly unreadable: ReadonlyMap<string, Error>;
}

const NO_ERRORS: ReadonlyMap<string, Error> = new Map();

export function inventoryOf<C extends ManagedObject>(owned: Iterable<C>, foreign: Iterable<C> = [], unreadable: ReadonlyMap<string, Error> = NO_ERRORS): Inventory<C> {
  return { owned: byName(owned), foreign: byName(foreign), unreadable };
}

function byName<C extends ManagedObject>(objects: Iterable<C>): Map<string, C> {
  const out = new Map<string, C>();
  for (const o of objects) out.set(o.metadata.name, o);
  return out;
}

/** What the applier did, as far as ownership goes: objects now ours, names now gone. */
export interface Written<C> {
  /** Objects applied by this sync (creates, take-overs, updates), as applied. */
  readonly applied: ReadonlyMap<string, C>;
  /** Owned objects deleted (or found gone). */
  readonly deleted: readonly string[];
}

/** The inventory after the apply: applied objects are owned now, deleted ones are gone. */
export function afterApply<C extends ManagedObject>(inventory: Inventory<C>, written: Written<C>): Inventory<C> {
  const owned = new Map(inventory.owned);
  const foreign = new Map(inventory.foreign);
  for (const name of written.deleted) owned.delete(name);
  for (const [name, object] of written.applied) {
    owned.set(name, object);
    foreign.delete(name);
  }
  return { owned, foreign, unreadable: inventory.unreadable };
}
