/**
 * The WorkloadEntry planner: desired entries + inventory → changes, by the decision
 * layer (decide.ts) with the WorkloadEntry rules: which fields we manage, which unowned
 * entries block a name or may be taken over, which hand-written twins are replaced,
 * and which Healthy conditions must be written. Pure; no I/O.
 */
import { createHash } from 'node:crypto';
import type { Policy } from '../api/types.ts';
import { decide, type Changes, type DeletionGuard, type KindRules, type Replacement as AnyReplacement, type Update as AnyUpdate } from './decide.ts';
import { inventoryOf, type Inventory } from './inventory.ts';
import { describeForeign, isAdoptable, SCOPE_ANNOTATION } from '../api/ownership.ts';
import { effectiveLabels, workloadKey } from './twins.ts';
import type { DesiredEntry } from '../mapping/types.ts';
import type { WorkloadEntry, WorkloadEntrySpec } from '../api/istio.ts';

export { guardTrips, HOLD_REASONS, type DeletionGuard, type HoldReason } from './decide.ts';

/** Hash of everything we apply for an entry; stored on the object to notice fields we stopped setting. */
export const APPLIED_HASH_ANNOTATION = 'vmregistry.io/applied-hash';

export interface PlanInput {
  readonly desired: readonly DesiredEntry[];
  /** Entries this source owns now (see ownership.isOwnedBy); or, instead of these three, the inventory built of them. */
  readonly owned?: readonly WorkloadEntry[];
  readonly inventory?: Inventory<WorkloadEntry>;
  /** How many entries the source owns in all, when desired and inventory cover only the names that changed. */
  readonly ownedTotal?: number;
  /**
   * Entries this source does not own that hold a name it wants (looked up by the
   * reconciler before planning): each is a conflict, or taken over when the source
   * adopts and the entry is adoptable.
   */
  readonly foreign?: readonly WorkloadEntry[];
  /** Names whose lookup failed: no create of them this sync. */
  readonly unreadable?: ReadonlyMap<string, Error>;
  readonly policy: Policy;
  /** Scopes the provider could not read this time: their entries are kept (providers report no endpoints there). */
  readonly unknownScopes: readonly string[];
  readonly guard: DeletionGuard;
  /** Present when the source adopts (spec.adopt): unowned entries of a desired name are taken over, hand-written twins replaced. */
  readonly adoption?: AdoptionInput;
}

export interface AdoptionInput {
  /** Entries of the namespace that nobody owns or manages (one LIST; ownership.isAdoptable is checked again). */
  readonly candidates: readonly WorkloadEntry[];
  /** The label naming an entry's service (twins.serviceLabelOf). */
  readonly serviceLabel: string;
}

export type Replacement = AnyReplacement<WorkloadEntry>;
export type Update = AnyUpdate<DesiredEntry, WorkloadEntry>;

export interface Plan extends Changes<DesiredEntry, WorkloadEntry> {
  /** Owned entries whose Healthy condition must be written (Consul's status health mode). */
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

/** The WorkloadEntry rules of the decision layer. */
export const WORKLOAD_ENTRY_RULES: KindRules<DesiredEntry, WorkloadEntry> = {
  changedFields,
  clash(desired, foreign) {
    const holder = foreign.get(desired.name);
    return holder === undefined ? undefined : describeForeign(holder, 'not owned by this source (set spec.adopt to take it over)');
  },
  adoptable: isAdoptable,
};

export function plan(input: PlanInput): Plan {
  const inventory: Inventory<WorkloadEntry> = input.inventory ?? inventoryOf(input.owned ?? [], input.foreign, input.unreadable);
  const { adoption } = input;
  const changes = decide(WORKLOAD_ENTRY_RULES, {
    desired: input.desired,
    inventory,
    policy: input.policy,
    guard: input.guard,
    ...(input.ownedTotal !== undefined ? { ownedTotal: input.ownedTotal } : {}),
    adopt: adoption !== undefined,
    unknownScopes: { scopeOf: (e) => e.metadata.annotations?.[SCOPE_ANNOTATION], scopes: input.unknownScopes },
    ...(adoption ? { twins: () => twinsToReplace(input.desired, inventory.owned, adoption) } : {}),
  });
  return { ...changes, healthUpdates: healthUpdatesOf(input.desired, inventory.owned) };
}

/** Owned entries whose Healthy condition differs from the registry's verdict (written whatever the policy). */
function healthUpdatesOf(desired: readonly DesiredEntry[], owned: ReadonlyMap<string, WorkloadEntry>): { name: string; healthy: boolean }[] {
  const updates: { name: string; healthy: boolean }[] = [];
  for (const d of desired) {
    const current = owned.get(d.name);
    if (current === undefined || current.metadata.deletionTimestamp !== undefined || d.healthy === undefined) continue;
    if (healthyStatus(current) !== (d.healthy ? 'True' : 'False')) updates.push({ name: d.name, healthy: d.healthy });
  }
  return updates;
}

/**
 * Unowned entries that describe the same workload as a managed entry already in place
 * (owned, not being deleted, and with the desired network, address, service and
 * ports). A twin is replaced only once its successor exists, so the workload is never
 * without an entry; the sync after the create deletes it. An unowned entry with a
 * desired name is not a twin: the foreign filter takes it over by name.
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
