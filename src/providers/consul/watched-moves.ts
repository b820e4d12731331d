/**
 * Catalog-wide moves that the service watches already explain. A change to a watched
 * service answers its own watch with the change's raft index, which is also the new index
 * of the service list (an instance added or removed) or of the node list (a node added or
 * re-addressed). When the instances it touched (added, removed or changed: changedNodes)
 * run on nodes that run no other cached service than watched ones, the move needs no
 * catalog summary or node-list read: MBs that the agent builds at fleet size, while the
 * watches' own answers wait behind them.
 *
 * A blocking answer skips the indexes between two answers, so another change may hide
 * behind an explained move. Such a change is still found: a skipped summary keeps its
 * baseline, so the next summary read compares with what came before the skipped move,
 * and every move is followed by a sweep within its period (sweep-schedule.ts).
 */
import type { HealthEntry } from './api-types.ts';

/** The catalog-wide lists whose moves may be explained. */
export type CatalogList = 'services' | 'nodes';

/** Raft indexes of explained changes remembered (a move is examined within moments of its change). */
const REMEMBERED = 256;

export class WatchedMoves {
  private readonly explained = new Set<number>();
  private readonly pending: Record<CatalogList, Set<number>> = { services: new Set(), nodes: new Set() };
  /** Lists with a pending move no watch can explain (a first answer, after a restart of the queries). */
  private readonly mustRead = new Set<CatalogList>();

  /** A watch answered with a change at this index, wholly within watched services. */
  explain(index: number): void {
    this.explained.add(index);
    // Sets iterate in insertion order: the oldest goes first.
    if (this.explained.size > REMEMBERED) this.explained.delete(this.explained.values().next().value as number);
  }

  /** The list moved to this index: its read is due unless a watch explains the move. */
  moved(list: CatalogList, index: number): void {
    this.pending[list].add(index);
  }

  /** The list may have moved in ways no watch saw (its query started again): its next read is due. */
  unexplained(list: CatalogList): void {
    this.mustRead.add(list);
  }

  /** Whether a watch may still explain the list's pending moves (none of them is one no watch can explain). */
  explainable(list: CatalogList): boolean {
    return !this.mustRead.has(list);
  }

  /** Whether every move of the list since the last take is explained (vacuously true for none). */
  allExplained(list: CatalogList): boolean {
    if (this.mustRead.has(list)) return false;
    for (const index of this.pending[list]) if (!this.explained.has(index)) return false;
    return true;
  }

  /** The moves of the list are examined now (by a read, or found explained): forgets them; returns the newest. */
  take(list: CatalogList): number {
    const newest = Math.max(0, ...this.pending[list]);
    this.pending[list].clear();
    this.mustRead.delete(list);
    return newest;
  }
}

/** The nodes of the instances added, removed or changed (node, service or checks) between two answers of a service. */
export function changedNodes(before: readonly HealthEntry[], after: readonly HealthEntry[]): Set<string> {
  const key = (e: HealthEntry): string => `${e.Node.Node}\u0000${e.Service.ID}`;
  const old = new Map(before.map((e) => [key(e), e]));
  const nodes = new Set<string>();
  for (const e of after) {
    const was = old.get(key(e));
    old.delete(key(e));
    if (was === undefined || (was !== e && JSON.stringify(was) !== JSON.stringify(e))) nodes.add(e.Node.Node);
  }
  for (const e of old.values()) nodes.add(e.Node.Node);
  return nodes;
}
