/**
 * The planner: desired entries vs the entries a source owns → changes. Pure; no I/O.
 * Updates are raised only when a field we manage differs (never on whole-object
 * inequality, so fields defaulted or added by others cause no writes), and policies and
 * the deletion guard are small filters over the changes.
 */
import { createHash } from 'node:crypto';
import type { Policy } from '../api/types.ts';
import { isAdoptable, SCOPE_ANNOTATION } from './ownership.ts';
import { effectiveLabels, workloadKey } from './twins.ts';
import type { DesiredEntry } from './types.ts';
import type { WorkloadEntry, WorkloadEntrySpec } from '../api/istio.ts';

/** Hash of everything we apply for an entry; stored on the object to notice fields we stopped setting. */
export const APPLIED_HASH_ANNOTATION = 'vmregistry.io/applied-hash';

export interface DeletionGuard {
  readonly enabled: boolean;
  readonly maxDeletePercent: number;
}

export interface PlanInput {
  readonly desired: readonly DesiredEntry[];
  /** Entries this source owns now (see ownership.isOwnedBy). */
  readonly owned: readonly WorkloadEntry[];
  readonly policy: Policy;
  /** Scopes the provider could not read this time: their entries are kept (providers report no endpoints there). */
  readonly unknownScopes: readonly string[];
  readonly guard: DeletionGuard;
  /** Present when the source adopts (spec.adopt): hand-written twins of its entries are replaced. */
  readonly adoption?: AdoptionInput;
}

export interface AdoptionInput {
  /** Entries of the namespace that nobody owns or manages (one LIST; ownership.isAdoptable is checked again). */
  readonly candidates: readonly WorkloadEntry[];
  /** The label naming an entry's service (twins.serviceLabelOf). */
  readonly serviceLabel: string;
}

/** A hand-written twin deleted because the managed entry `by` now stands for its workload. */
export interface Replacement {
  readonly twin: WorkloadEntry;
  readonly by: string;
}

export interface Update {
  readonly desired: DesiredEntry;
  readonly current: WorkloadEntry;
  /** Which managed fields differ, for logs and events. */
  readonly fields: readonly string[];
}

export const HOLD_REASONS = ['Policy', 'DeletionGuard', 'UnknownScope'] as const;
export type HoldReason = (typeof HOLD_REASONS)[number];

export interface Plan {
  readonly creates: readonly DesiredEntry[];
  readonly updates: readonly Update[];
  readonly deletes: readonly WorkloadEntry[];
  /** Hand-written twins to delete (adoption); held back like deletes by the policy and the guard. */
  readonly replaces: readonly Replacement[];
  /** Deletions not made, and why (the largest reason wins for the status message). */
  readonly heldBack: ReadonlyMap<HoldReason, number>;
  /** Entries whose Healthy condition must be written (Consul's status health mode). */
  readonly healthUpdates: readonly { readonly name: string; readonly healthy: boolean }[];
}

// Desired entries are immutable and reused between reconciles (MappingMemo): hash each once.
const hashes = new WeakMap<DesiredEntry, string>();

/** Stable hash of the desired entry's applied fields. */
export function appliedHash(desired: DesiredEntry): string {
  let hash = hashes.get(desired);
  if (hash === undefined) {
    const canonical = JSON.stringify([sorted(desired.labels), sorted(desired.annotations), canonicalSpec(desired.spec)]);
    hash = createHash('sha256').update(canonical).digest('hex').slice(0, 16);
    hashes.set(desired, hash);
  }
  return hash;
}

function sorted(record: Readonly<Record<string, string | number>> | undefined): [string, string | number][] {
  return Object.entries(record ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function canonicalSpec(spec: WorkloadEntrySpec): unknown[] {
  return [spec.address, sorted(spec.ports), sorted(spec.labels), spec.network, spec.locality, spec.weight, spec.serviceAccount];
}

function subsetDiffers(want: Readonly<Record<string, string | number>> | undefined, have: Readonly<Record<string, string | number>> | undefined): boolean {
  return Object.entries(want ?? {}).some(([k, v]) => have?.[k] !== v);
}

/** Managed fields of current that differ from desired. */
export function changedFields(desired: DesiredEntry, current: WorkloadEntry): string[] {
  const fields: string[] = [];
  const want = desired.spec;
  const have = current.spec ?? ({} as Partial<WorkloadEntrySpec>);
  if (want.address !== have.address) fields.push('spec.address');
  if (subsetDiffers(want.ports, have.ports)) fields.push('spec.ports');
  if (subsetDiffers(want.labels, have.labels)) fields.push('spec.labels');
  for (const key of ['network', 'locality', 'weight', 'serviceAccount'] as const) {
    if (want[key] !== undefined && want[key] !== have[key]) fields.push(`spec.${key}`);
  }
  if (subsetDiffers(desired.labels, current.metadata.labels)) fields.push('metadata.labels');
  if (subsetDiffers(desired.annotations, current.metadata.annotations)) fields.push('metadata.annotations');
  if (current.metadata.annotations?.[APPLIED_HASH_ANNOTATION] !== appliedHash(desired)) fields.push('applied-hash');
  return fields;
}

/** The entry's Healthy condition status ('True', 'False', 'Unknown'), if any. */
export function healthyStatus(entry: WorkloadEntry): string | undefined {
  return entry.status?.conditions?.find((x) => x.type === 'Healthy')?.status;
}

export function plan(input: PlanInput): Plan {
  const ownedByName = new Map(input.owned.map((e) => [e.metadata.name, e]));
  const desiredNames = new Set(input.desired.map((d) => d.name));
  const unknown = new Set(input.unknownScopes);
  const heldBack = new Map<HoldReason, number>();
  const hold = (reason: HoldReason, n: number): void => {
    if (n > 0) heldBack.set(reason, (heldBack.get(reason) ?? 0) + n);
  };

  const creates: DesiredEntry[] = [];
  const updates: Update[] = [];
  const healthUpdates: { name: string; healthy: boolean }[] = [];
  for (const desired of input.desired) {
    const current = ownedByName.get(desired.name);
    if (current === undefined || current.metadata.deletionTimestamp !== undefined) {
      if (current === undefined) creates.push(desired);
      continue;
    }
    if (input.policy !== 'create-only') {
      const fields = changedFields(desired, current);
      if (fields.length > 0) updates.push({ desired, current, fields });
    }
    if (desired.healthy !== undefined && healthyStatus(current) !== (desired.healthy ? 'True' : 'False')) {
      healthUpdates.push({ name: desired.name, healthy: desired.healthy });
    }
  }

  let deletes: WorkloadEntry[] = [];
  for (const current of input.owned) {
    if (desiredNames.has(current.metadata.name) || current.metadata.deletionTimestamp !== undefined) continue;
    const scope = current.metadata.annotations?.[SCOPE_ANNOTATION];
    if (scope !== undefined && unknown.has(scope)) hold('UnknownScope', 1);
    else deletes.push(current);
  }
  let replaces = input.adoption ? twinsToReplace(input.desired, ownedByName, input.adoption) : [];
  // The guard weighs twins with the source's own entries: both are entries the mesh sees.
  const deleting = deletes.length + replaces.length;
  if (input.policy !== 'sync') {
    hold('Policy', deleting);
    deletes = [];
    replaces = [];
  } else if (guardTrips(input.guard, deleting, input.owned.length + replaces.length)) {
    hold('DeletionGuard', deleting);
    deletes = [];
    replaces = [];
  }
  return { creates, updates, deletes, replaces, heldBack, healthUpdates };
}

/**
 * Unowned entries that describe the same workload as a managed entry already in place
 * (owned, not being deleted, and with the desired network, address, service and
 * ports). A twin is replaced only once its successor exists, so the workload is never
 * without an entry; the sync after the create deletes it. An unowned entry with a
 * desired name is not a twin: the applier takes it over by name.
 */
function twinsToReplace(desired: readonly DesiredEntry[], ownedByName: ReadonlyMap<string, WorkloadEntry>, adoption: AdoptionInput): Replacement[] {
  const { serviceLabel } = adoption;
  const inPlace = new Map<string, string>();
  for (const d of desired) {
    const current = ownedByName.get(d.name);
    if (current === undefined || current.metadata.deletionTimestamp !== undefined) continue;
    const key = workloadKey(d.spec, d.labels, serviceLabel);
    if (key !== undefined && key === workloadKey(current.spec, effectiveLabels(current.spec, current.metadata.labels), serviceLabel)) inPlace.set(key, d.name);
  }
  const desiredNames = new Set(desired.map((d) => d.name));
  const replaces: Replacement[] = [];
  for (const twin of adoption.candidates) {
    if (!isAdoptable(twin) || desiredNames.has(twin.metadata.name) || twin.metadata.deletionTimestamp !== undefined) continue;
    const key = workloadKey(twin.spec, effectiveLabels(twin.spec, twin.metadata.labels), serviceLabel);
    const by = key === undefined ? undefined : inPlace.get(key);
    if (by !== undefined) replaces.push({ twin, by });
  }
  return replaces;
}

/**
 * The guard holds back a sync that would delete more than maxDeletePercent of the
 * owned entries at once. A single deletion is always allowed, so a source with one
 * instance can still follow its registry.
 */
export function guardTrips(guard: DeletionGuard, deletes: number, owned: number): boolean {
  if (!guard.enabled || deletes <= 1 || owned === 0) return false;
  return (deletes * 100) / owned > guard.maxDeletePercent;
}

export function isEmptyPlan(p: Plan): boolean {
  return p.creates.length === 0 && p.updates.length === 0 && p.deletes.length === 0 && p.replaces.length === 0 && p.healthUpdates.length === 0;
}
