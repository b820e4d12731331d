/**
 * The decision layer: desired objects + inventory → what to write. Pure; no I/O.
 * It works for any managed kind (WorkloadEntries, ServiceEntries) given the kind's
 * rules, in the way external-dns plans: a diff of desired against owned objects, then
 * small filters, each deciding one thing:
 *
 *   diff → unreadable → foreign (conflicts, take-over by name) → keep → unknown scopes
 *        → twins → policy → deletion guard
 *
 * Nothing outside this file decides ownership, adoption, policy or the guard; the
 * applier (apply.ts) only executes the result.
 */
import type { Policy } from '../api/types.ts';
import type { Inventory, ManagedObject } from './inventory.ts';

export interface DeletionGuard {
  readonly enabled: boolean;
  readonly maxDeletePercent: number;
}

export const HOLD_REASONS = ['Policy', 'DeletionGuard', 'UnknownScope'] as const;
export type HoldReason = (typeof HOLD_REASONS)[number];

/** What one desired object looks like before ownership metadata is added. */
export interface DesiredObject<S = unknown> {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly spec: S;
}

export interface Conflict {
  readonly name: string;
  readonly reason: string;
}

export interface Update<D, C> {
  readonly desired: D;
  readonly current: C;
  /** Which managed fields differ, for logs and events. */
  readonly fields: readonly string[];
}

/** A hand-written twin deleted because the managed object `by` now stands for its workload. */
export interface Replacement<C> {
  readonly twin: C;
  readonly by: string;
}

export interface Changes<D, C> {
  readonly creates: readonly D[];
  /** Unowned objects taken over by name (spec.adopt): applied like creates. */
  readonly adopts: readonly D[];
  readonly updates: readonly Update<D, C>[];
  readonly deletes: readonly C[];
  /** Hand-written twins to delete (adoption); held back like deletes by the policy and the guard. */
  readonly replaces: readonly Replacement<C>[];
  /** Owned objects without a desired counterpart kept on purpose (keep filter). */
  readonly kept: readonly C[];
  /** Desired objects not written because an object this source does not own stands in the way. */
  readonly conflicts: readonly Conflict[];
  /** Desired objects not written because their name could not be looked up. */
  readonly unreadable: readonly { readonly name: string; readonly error: Error }[];
  /** Deletions not made, and why. */
  readonly heldBack: ReadonlyMap<HoldReason, number>;
}

/** What differs between the kinds the decision layer plans for. */
export interface KindRules<D extends DesiredObject, C extends ManagedObject> {
  /** Managed fields of current that differ from desired (empty: no write). */
  changedFields(desired: D, current: C): string[];
  /** Why desired may not be written beside the objects this source does not own; undefined when it may. */
  clash(desired: D, foreign: ReadonlyMap<string, C>): string | undefined;
  /** True when an unowned object of a desired name may be taken over (spec.adopt). */
  adoptable?(current: C): boolean;
}

export interface DecideInput<D extends DesiredObject, C extends ManagedObject> {
  readonly desired: readonly D[];
  readonly inventory: Inventory<C>;
  readonly policy: Policy;
  readonly guard: DeletionGuard;
  /** When false (the feature was turned off in the spec), deletions bypass the deletion guard. */
  readonly guarded?: boolean;
  /**
   * How many objects the source owns in all, when the inventory holds only some of them
   * (a sync of what changed): the deletion guard weighs deletions against all.
   */
  readonly ownedTotal?: number;
  /** Take over adoptable unowned objects of a desired name (spec.adopt). */
  readonly adopt?: boolean;
  /** Owned objects without a desired counterpart that must stay anyway (e.g. a service with no healthy instance). */
  readonly keep?: (current: C) => boolean;
  /** The scope an owned object belongs to, with the scopes the provider could not read: their objects are kept. */
  readonly unknownScopes?: { readonly scopeOf: (current: C) => string | undefined; readonly scopes: readonly string[] };
  /** Hand-written twins of desired objects (adoption): deleted once their successor is in place. */
  readonly twins?: (changes: Changes<D, C>) => readonly Replacement<C>[];
}

/** One decision over the changes. Filters compose: each returns new changes, never edits its input. */
export type Filter<D, C> = (changes: Changes<D, C>) => Changes<D, C>;

export function decide<D extends DesiredObject, C extends ManagedObject>(kind: KindRules<D, C>, input: DecideInput<D, C>): Changes<D, C> {
  const filters: Filter<D, C>[] = [
    skipUnreadable(input.inventory),
    resolveForeign(kind, input),
    ...(input.keep ? [keepListed<D, C>(input.keep)] : []),
    ...(input.unknownScopes ? [holdUnknownScopes<D, C>(input.unknownScopes.scopeOf, input.unknownScopes.scopes)] : []),
    ...(input.twins ? [replaceTwins<D, C>(input.twins)] : []),
    applyPolicy<D, C>(input.policy),
    guardDeletions<D, C>(input.guard, input.guarded ?? true, input.ownedTotal ?? input.inventory.owned.size),
  ];
  return filters.reduce((changes, filter) => filter(changes), diff(kind, input.desired, input.inventory));
}

/** Desired against owned: creates, updates (only where a managed field differs) and deletes. */
export function diff<D extends DesiredObject, C extends ManagedObject>(kind: KindRules<D, C>, desired: readonly D[], inventory: Inventory<C>): Changes<D, C> {
  const creates: D[] = [];
  const updates: Update<D, C>[] = [];
  const desiredNames = new Set<string>();
  for (const d of desired) {
    desiredNames.add(d.name);
    const current = inventory.owned.get(d.name);
    if (current === undefined) creates.push(d);
    else if (current.metadata.deletionTimestamp === undefined) {
      const fields = comparedFields(kind, d, current);
      if (fields.length > 0) updates.push({ desired: d, current, fields });
    }
  }
  const deletes: C[] = [];
  for (const current of inventory.owned.values()) {
    if (!desiredNames.has(current.metadata.name) && current.metadata.deletionTimestamp === undefined) deletes.push(current);
  }
  return { creates, adopts: [], updates, deletes, replaces: [], kept: [], conflicts: [], unreadable: [], heldBack: new Map() };
}

/**
 * The last comparison of each desired object, with the object it was compared to.
 * Desired objects are reused while their endpoint does not change (MappingMemo) and
 * cached objects are replaced, never edited, when the API reports a change: the same
 * pair compares the same, so a sync of a large source compares only what changed.
 */
const comparisons = new WeakMap<object, { readonly current: object; readonly fields: readonly string[] }>();
const UNCHANGED: readonly string[] = Object.freeze([]);

function comparedFields<D extends DesiredObject, C extends ManagedObject>(kind: KindRules<D, C>, desired: D, current: C): readonly string[] {
  const last = comparisons.get(desired);
  if (last?.current === current) return last.fields;
  const changed = kind.changedFields(desired, current);
  const fields = changed.length === 0 ? UNCHANGED : changed;
  comparisons.set(desired, { current, fields });
  return fields;
}

/** Creates whose name could not be looked up wait for the next sync. */
export function skipUnreadable<D extends DesiredObject, C extends ManagedObject>(inventory: Inventory<C>): Filter<D, C> {
  return (changes) => {
    if (inventory.unreadable.size === 0) return changes;
    const unreadable = changes.creates.flatMap((d) => {
      const error = inventory.unreadable.get(d.name);
      return error === undefined ? [] : [{ name: d.name, error }];
    });
    return { ...changes, creates: changes.creates.filter((d) => !inventory.unreadable.has(d.name)), unreadable: [...changes.unreadable, ...unreadable] };
  };
}

/**
 * Ownership: a desired object that clashes with an object this source does not own is
 * a conflict (reported, neither object touched), unless it is a create of an adoptable
 * object's name and the source adopts, which takes that object over. Unchanged desired
 * objects are checked too, so a clash that appeared since the last write is reported.
 */
export function resolveForeign<D extends DesiredObject, C extends ManagedObject>(kind: KindRules<D, C>, input: DecideInput<D, C>): Filter<D, C> {
  const foreign = input.inventory.foreign;
  return (changes) => {
    if (foreign.size === 0) return changes;
    const conflicts: Conflict[] = [...changes.conflicts];
    const blocked = new Set<string>();
    const adopts: D[] = [...changes.adopts];
    const creates: D[] = [];
    for (const d of changes.creates) {
      const holder = foreign.get(d.name);
      if (holder !== undefined && input.adopt === true && kind.adoptable?.(holder) === true && holder.metadata.deletionTimestamp === undefined) {
        adopts.push(d);
        continue;
      }
      creates.push(d);
    }
    const takenOver = new Set(adopts.map((d) => d.name));
    for (const d of input.desired) {
      if (takenOver.has(d.name)) continue;
      const reason = kind.clash(d, foreign);
      if (reason === undefined) continue;
      conflicts.push({ name: d.name, reason });
      blocked.add(d.name);
    }
    conflicts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return {
      ...changes,
      creates: creates.filter((d) => !blocked.has(d.name)),
      updates: changes.updates.filter((u) => !blocked.has(u.desired.name)),
      adopts,
      conflicts,
    };
  };
}

/** Owned objects the caller still wants are kept instead of deleted. */
export function keepListed<D, C>(keep: (current: C) => boolean): Filter<D, C> {
  return (changes) => ({ ...changes, deletes: changes.deletes.filter((c) => !keep(c)), kept: [...changes.kept, ...changes.deletes.filter(keep)] });
}

/** Objects in scopes the provider could not read are neither deleted nor counted as deletions. */
export function holdUnknownScopes<D, C>(scopeOf: (current: C) => string | undefined, scopes: readonly string[]): Filter<D, C> {
  const unknown = new Set(scopes);
  return (changes) => {
    if (unknown.size === 0) return changes;
    const inUnknown = (c: C): boolean => {
      const scope = scopeOf(c);
      return scope !== undefined && unknown.has(scope);
    };
    const held = changes.deletes.filter(inUnknown).length;
    if (held === 0) return changes;
    return { ...changes, deletes: changes.deletes.filter((c) => !inUnknown(c)), heldBack: hold(changes.heldBack, 'UnknownScope', held) };
  };
}

export function replaceTwins<D, C>(find: (changes: Changes<D, C>) => readonly Replacement<C>[]): Filter<D, C> {
  return (changes) => ({ ...changes, replaces: [...changes.replaces, ...find(changes)] });
}

/** upsert-only and create-only never delete; create-only never updates either. */
export function applyPolicy<D, C>(policy: Policy): Filter<D, C> {
  return (changes) => {
    const updates = policy === 'create-only' ? [] : changes.updates;
    if (policy === 'sync') return updates === changes.updates ? changes : { ...changes, updates };
    return { ...changes, updates, deletes: [], replaces: [], heldBack: hold(changes.heldBack, 'Policy', changes.deletes.length + changes.replaces.length) };
  };
}

/**
 * The guard holds back every deletion of a sync that would delete more than
 * maxDeletePercent at once. Twins are weighed with the source's own objects: both
 * are objects the mesh sees.
 */
export function guardDeletions<D, C>(guard: DeletionGuard, guarded: boolean, owned: number): Filter<D, C> {
  return (changes) => {
    const deleting = changes.deletes.length + changes.replaces.length;
    if (!guarded || !guardTrips(guard, deleting, owned + changes.replaces.length)) return changes;
    return { ...changes, deletes: [], replaces: [], heldBack: hold(changes.heldBack, 'DeletionGuard', deleting) };
  };
}

/**
 * The guard trips on a sync that would delete more than maxDeletePercent of the owned
 * objects at once. A single deletion is always allowed, so a source with one
 * instance can still follow its registry.
 */
export function guardTrips(guard: DeletionGuard, deletes: number, owned: number): boolean {
  if (!guard.enabled || deletes <= 1 || owned === 0) return false;
  return (deletes * 100) / owned > guard.maxDeletePercent;
}

function hold(heldBack: ReadonlyMap<HoldReason, number>, reason: HoldReason, n: number): ReadonlyMap<HoldReason, number> {
  if (n <= 0) return heldBack;
  const next = new Map(heldBack);
  next.set(reason, (next.get(reason) ?? 0) + n);
  return next;
}

export function heldBackTotal(heldBack: ReadonlyMap<HoldReason, number>): number {
  return [...heldBack.values()].reduce((a, b) => a + b, 0);
}
