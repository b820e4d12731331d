/**
 * A kind-agnostic planner for generated objects keyed by name (ServiceEntries today):
 * desired vs owned → creates, updates, deletes. Pure, with the same rules as the
 * WorkloadEntry planner: an update only when a managed field differs or the applied
 * hash changed, policies and the deletion guard as filters over deletions.
 */
import { createHash } from 'node:crypto';
import type { Policy } from '../api/types.ts';
import { canonicalJson } from './canonical-json.ts';
import { APPLIED_HASH_ANNOTATION, guardTrips, type DeletionGuard, type HoldReason } from './plan.ts';

export interface ManagedMeta {
  name: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
}

export interface ManagedObject<S> {
  metadata: ManagedMeta;
  spec?: S;
}

export interface DesiredObject<S> {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly spec: S;
}

export interface ObjectPlanInput<S, D extends DesiredObject<S>, C extends ManagedObject<S>> {
  readonly desired: readonly D[];
  readonly owned: readonly C[];
  readonly policy: Policy;
  readonly guard: DeletionGuard;
  /** Owned objects without a desired counterpart that must stay anyway (e.g. a service with no healthy instance). */
  readonly keep?: (current: C) => boolean;
  /** When false (the feature was turned off in the spec), deletions bypass the deletion guard. */
  readonly guarded?: boolean;
}

export interface ObjectUpdate<D, C> {
  readonly desired: D;
  readonly current: C;
  readonly fields: readonly string[];
}

export interface ObjectPlan<D, C> {
  readonly creates: readonly D[];
  readonly updates: readonly ObjectUpdate<D, C>[];
  readonly deletes: readonly C[];
  /** Owned objects kept by `keep`. */
  readonly kept: readonly C[];
  readonly heldBack: ReadonlyMap<HoldReason, number>;
}

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

export function planObjects<S extends object, D extends DesiredObject<S>, C extends ManagedObject<S>>(input: ObjectPlanInput<S, D, C>): ObjectPlan<D, C> {
  const ownedByName = new Map(input.owned.map((o) => [o.metadata.name, o]));
  const desiredNames = new Set(input.desired.map((d) => d.name));
  const heldBack = new Map<HoldReason, number>();
  const creates: D[] = [];
  const updates: ObjectUpdate<D, C>[] = [];
  for (const desired of input.desired) {
    const current = ownedByName.get(desired.name);
    if (current === undefined) {
      creates.push(desired);
      continue;
    }
    if (current.metadata.deletionTimestamp !== undefined || input.policy === 'create-only') continue;
    const fields = objectChangedFields(desired, current);
    if (fields.length > 0) updates.push({ desired, current, fields });
  }
  const kept: C[] = [];
  let deletes: C[] = [];
  for (const current of input.owned) {
    if (desiredNames.has(current.metadata.name) || current.metadata.deletionTimestamp !== undefined) continue;
    if (input.keep?.(current)) kept.push(current);
    else deletes.push(current);
  }
  if (input.policy !== 'sync') {
    if (deletes.length > 0) heldBack.set('Policy', deletes.length);
    deletes = [];
  } else if ((input.guarded ?? true) && guardTrips(input.guard, deletes.length, input.owned.length)) {
    heldBack.set('DeletionGuard', deletes.length);
    deletes = [];
  }
  return { creates, updates, deletes, kept, heldBack };
}
