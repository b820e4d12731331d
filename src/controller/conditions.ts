/**
 * Status conditions in metav1.Condition form. lastTransitionTime changes only when a
 * condition's status flips; status is compared without timestamps, so an unchanged
 * outcome writes nothing.
 */
import { canonicalJson } from '../plan/canonical-json.ts';
import type { Condition, VmRegistrySourceStatus } from '../api/types.ts';

export type ConditionType = 'Ready' | 'ProviderReady' | 'Synced';

export interface ConditionInput {
  readonly type: ConditionType;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
}

export function mergeConditions(previous: readonly Condition[] | undefined, next: readonly ConditionInput[], generation: number, now: string): Condition[] {
  return next.map((c) => {
    const old = previous?.find((p) => p.type === c.type);
    return {
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message.slice(0, 32_000),
      observedGeneration: generation,
      lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : now,
    };
  });
}

/** Ready summarises the others: True only when all are True; otherwise the first that is not. */
export function readyFrom(conditions: readonly ConditionInput[]): ConditionInput {
  const failing = conditions.find((c) => c.status !== 'True');
  if (failing) return { type: 'Ready', status: failing.status === 'Unknown' ? 'Unknown' : 'False', reason: failing.reason, message: failing.message };
  return { type: 'Ready', status: 'True', reason: 'Synced', message: conditions.map((c) => c.message).join('; ') };
}

function withoutTimes(status: VmRegistrySourceStatus | undefined): unknown {
  if (!status) return undefined;
  const { lastSyncTime: _ignored, conditions, ...rest } = status;
  return { ...rest, conditions: (conditions ?? []).map(({ lastTransitionTime: _t, ...c }) => c).sort((a, b) => a.type.localeCompare(b.type)) };
}

export function statusEqual(a: VmRegistrySourceStatus | undefined, b: VmRegistrySourceStatus | undefined): boolean {
  return canonicalJson(withoutTimes(a)) === canonicalJson(withoutTimes(b));
}
