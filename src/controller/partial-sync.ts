/**
 * What lets a sync plan only what changed (docs/decisions.md §4b). A successful sync
 * leaves a Ledger; the next one, caused by a registry change or an informer event, plans
 * the names whose desired entry changed, the entries the informer reported and what the
 * last sync left to do, against the cache's entries of those names. A whole sync runs on
 * the first sync, a new spec, after a failure, with every direct LIST of the owned
 * entries (every 10 minutes), and for sources that adopt or read only part of their
 * registry. The interval's tick reads the registry again but plans what changed: a whole
 * plan of a large source each interval promoted MBs of short-lived maps to the old
 * generation and set off a full collection of the heap each time, for nothing the
 * change tracking had not already planned.
 */
import type { WorkloadEntry } from '../api/istio.ts';
import type { DesiredEntry } from '../mapping/types.ts';
import type { Plan } from '../plan/plan.ts';

/** What a successful sync leaves for the next one. */
export interface Ledger {
  readonly specKey: string;
  /** Names with something left to do: a write, a conflict, an entry no longer wanted but kept (policy, guard). */
  readonly pending: ReadonlySet<string>;
}

/** What decides whether a sync may be partial. */
export interface ScopeInput {
  /** The last sync's ledger (undefined after a failure or on the first sync). */
  readonly ledger: Ledger | undefined;
  /** The owned names after the last sync, when known. */
  readonly owned: ReadonlySet<string> | undefined;
  /** Whether the informer cache can be read by name. */
  readonly cacheByName: boolean;
  readonly specKey: string;
  /** Names whose desired entry changed since the last mapping; undefined: any may have. */
  readonly changed: ReadonlySet<string> | undefined;
  /** Names the informer reported since the last sync. */
  readonly touched: ReadonlySet<string>;
  /** Twins (adopt) and unreadable scopes are decided over the whole source. */
  readonly wholeSourceDecisions: boolean;
  /** A direct LIST of the owned entries is due (it replaces the cache's view). */
  readonly directListDue: boolean;
}

/** The names this sync must plan, or undefined when it plans every one. */
export function partialScope(s: ScopeInput): Set<string> | undefined {
  const { ledger, changed } = s;
  if (!s.cacheByName || ledger === undefined || s.owned === undefined || changed === undefined) return undefined;
  if (ledger.specKey !== s.specKey || s.directListDue || s.wholeSourceDecisions) return undefined;
  return new Set([...changed, ...s.touched, ...ledger.pending]);
}

/** The ledger a successful sync leaves; `lookedAt`: the owned entries a partial sync planned against. */
export function nextLedger(specKey: string, p: Plan, owned: ReadonlyMap<string, WorkloadEntry>, desired: ReadonlyMap<string, DesiredEntry>, lookedAt?: ReadonlyMap<string, WorkloadEntry>): Ledger {
  return { specKey, pending: pendingAfter(p, owned, desired, lookedAt) };
}

/** The owned names after a sync: those of the inventory after a whole one; after a partial one, the names it planned updated in the set before. */
export function ownedAfter(after: ReadonlyMap<string, WorkloadEntry>, partial?: { readonly names: ReadonlySet<string>; readonly before: Set<string> }): Set<string> {
  if (partial === undefined) return new Set(after.keys());
  for (const name of partial.names) {
    if (after.has(name)) partial.before.add(name);
    else partial.before.delete(name);
  }
  return partial.before;
}

/** The desired entries of these names. */
export function pick(byName: ReadonlyMap<string, DesiredEntry>, names: Iterable<string>): DesiredEntry[] {
  const out: DesiredEntry[] = [];
  for (const name of names) {
    const d = byName.get(name);
    if (d !== undefined) out.push(d);
  }
  return out;
}

/**
 * The names a sync leaves with something to do: every name it planned a change or
 * found a conflict for, and owned entries no longer desired but kept (policy, guard,
 * unreadable scope). Only the owned entries it looked at are walked (all of them in a
 * whole sync).
 */
function pendingAfter(p: Plan, ownedAfter: ReadonlyMap<string, WorkloadEntry>, desired: ReadonlyMap<string, DesiredEntry>, lookedAt?: ReadonlyMap<string, WorkloadEntry>): Set<string> {
  const pending = new Set<string>();
  for (const d of [...p.creates, ...p.adopts]) pending.add(d.name);
  for (const u of p.updates) pending.add(u.desired.name);
  for (const c of [...p.deletes, ...p.replaces.map((r) => r.twin), ...p.kept]) pending.add(c.metadata.name);
  for (const x of [...p.conflicts, ...p.unreadable, ...p.healthUpdates]) pending.add(x.name);
  for (const name of (lookedAt ?? ownedAfter).keys()) if (ownedAfter.has(name) && !desired.has(name)) pending.add(name);
  return pending;
}
