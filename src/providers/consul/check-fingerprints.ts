/**
 * Which services' health may have changed, from one answer of the filtered health-state
 * watch (/v1/health/state/any?filter=Status != "passing") to the next. The operator only
 * uses the aggregate health of an instance (health.ts), which passing checks never
 * change: the set of non-passing checks is all it needs. Any transition between passing,
 * warning and critical, and a non-passing check appearing or disappearing, changes it.
 */
import type { CheckState } from './api-types.ts';

/** The filter of the health-state watch: only checks that count against an instance. */
export const NON_PASSING_FILTER = 'Status != "passing"';

export interface NonPassingCheck {
  readonly status: string;
  /** Empty for a node-level check (serfHealth, maintenance), which counts for every service on the node. */
  readonly serviceName: string;
  readonly node: string;
}

/** Non-passing checks keyed by node and check id (a check id is unique per node). */
export type NonPassingSet = ReadonlyMap<string, NonPassingCheck>;

export function nonPassingSet(checks: readonly CheckState[]): NonPassingSet {
  const out = new Map<string, NonPassingCheck>();
  for (const c of checks) {
    if (c.Status === 'passing') continue;
    out.set(`${c.Node}\u0000${c.CheckID}`, { status: c.Status, serviceName: c.ServiceName, node: c.Node });
  }
  return out;
}

export interface CheckChanges {
  /** Services with a service check that changed. */
  readonly services: ReadonlySet<string>;
  /** Nodes with a node-level check that changed: every service on them is affected. */
  readonly nodes: ReadonlySet<string>;
}

/** The checks that appeared, disappeared or changed status between two sets. */
export function changedChecks(before: NonPassingSet, after: NonPassingSet): CheckChanges {
  const services = new Set<string>();
  const nodes = new Set<string>();
  const note = (c: NonPassingCheck): void => {
    if (c.serviceName === '') nodes.add(c.node);
    else services.add(c.serviceName);
  };
  for (const [key, c] of after) {
    const old = before.get(key);
    if (old === undefined || old.status !== c.status || old.serviceName !== c.serviceName) note(c);
    if (old !== undefined && old.serviceName !== c.serviceName) note(old);
  }
  for (const [key, c] of before) if (!after.has(key)) note(c);
  return { services, nodes };
}
