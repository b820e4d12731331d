/**
 * The planner for generated objects keyed by name other than WorkloadEntries
 * (ServiceEntries today): the decision layer (decide.ts) with rules that compare each
 * top-level spec field we set, in canonical form. Pure.
 */
import { createHash } from 'node:crypto';
import type { Policy } from '../api/types.ts';
import type { ServiceEntry } from '../api/istio.ts';
import { canonicalJson } from './canonical-json.ts';
import { decide, type Changes, type DeletionGuard, type DesiredObject, type KindRules } from './decide.ts';
import { inventoryOf, type ManagedObject } from './inventory.ts';
import { describeForeign } from '../api/ownership.ts';
import { APPLIED_HASH_ANNOTATION } from './plan.ts';
import type { DesiredServiceEntry } from '../mapping/service-entries.ts';

export type { DesiredObject } from './decide.ts';
export type { ManagedObject } from './inventory.ts';

export interface ObjectPlanInput<D extends DesiredObject, C extends ManagedObject> {
  readonly desired: readonly D[];
  readonly owned: readonly C[];
  /** Objects of the namespace this source does not own: checked for clashes (kind.clash). */
  readonly foreign?: readonly C[];
  readonly policy: Policy;
  readonly guard: DeletionGuard;
  /** Owned objects without a desired counterpart that must stay anyway (e.g. a service with no healthy instance). */
  readonly keep?: (current: C) => boolean;
  /** When false (the feature was turned off in the spec), deletions bypass the deletion guard. */
  readonly guarded?: boolean;
}

export type ObjectPlan<D, C> = Changes<D, C>;
export type { Update as ObjectUpdate } from './decide.ts';

/** Stable hash of everything applied for an object; stored on it to notice fields we stopped setting. */
export function objectHash<S>(desired: DesiredObject<S>): string {
  return createHash('sha256').update(canonicalJson([desired.labels, desired.annotations, desired.spec])).digest('hex').slice(0, 16);
}

function subsetDiffers(want: Readonly<Record<string, string>>, have: Readonly<Record<string, string>> | undefined): boolean {
  return Object.entries(want).some(([k, v]) => have?.[k] !== v);
}

/** Managed fields of current that differ from desired: each top-level spec field we set, compared in canonical form. */
export function objectChangedFields<S extends object>(desired: DesiredObject<S>, current: ManagedObject<S>): string[] {
  const fields: string[] = [];
  const have = (current.spec ?? {}) as Record<string, unknown>;
  for (const [key, want] of Object.entries(desired.spec)) {
    if (want !== undefined && canonicalJson(want) !== canonicalJson(have[key])) fields.push(`spec.${key}`);
  }
  if (subsetDiffers(desired.labels, current.metadata.labels)) fields.push('metadata.labels');
  if (subsetDiffers(desired.annotations, current.metadata.annotations)) fields.push('metadata.annotations');
  if (current.metadata.annotations?.[APPLIED_HASH_ANNOTATION] !== objectHash(desired)) fields.push('applied-hash');
  return fields;
}

/** Why a desired ServiceEntry may not be written beside these ServiceEntries the source does not own, or undefined when it may. */
export function foreignClash(desired: DesiredServiceEntry, foreign: Iterable<ServiceEntry>): string | undefined {
  for (const se of foreign) {
    if (se.metadata.name === desired.name) return `the name is taken by a ServiceEntry ${describeForeign(se)}`;
    const host = (se.spec?.hosts ?? []).find((h) => desired.spec.hosts.includes(h));
    if (host !== undefined) return `host ${host} is already declared by ServiceEntry ${se.metadata.name} (${describeForeign(se)})`;
  }
  return undefined;
}

/** The ServiceEntry rules: a name or a host held by a ServiceEntry this source does not own blocks the write; nothing is adopted. */
export const SERVICE_ENTRY_RULES: KindRules<DesiredServiceEntry, ServiceEntry> = {
  changedFields: objectChangedFields,
  clash: (desired, foreign) => foreignClash(desired, foreign.values()),
};

/** Rules for objects that nothing else can hold (no clash checks). */
function genericRules<D extends DesiredObject<object>, C extends ManagedObject<object>>(): KindRules<D, C> {
  return { changedFields: (d, c) => objectChangedFields(d, c), clash: () => undefined };
}

export function planObjects<D extends DesiredObject<object>, C extends ManagedObject<object>>(input: ObjectPlanInput<D, C>, rules: KindRules<D, C> = genericRules<D, C>()): ObjectPlan<D, C> {
  return decide(rules, {
    desired: input.desired,
    inventory: inventoryOf(input.owned, input.foreign),
    policy: input.policy,
    guard: input.guard,
    ...(input.keep ? { keep: input.keep } : {}),
    ...(input.guarded !== undefined ? { guarded: input.guarded } : {}),
  });
}
