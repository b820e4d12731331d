/** The words of status conditions and Events: what happened and what the user can do. */
import type { ApplyResult } from '../reconcile/apply.ts';
import type { HoldReason, Plan } from '../reconcile/plan.ts';
import { isProviderError } from '../providers/errors.ts';
import type { ConditionInput } from './conditions.ts';
import { ConsentError } from './consent.ts';
import { SecretError } from './provider-slots.ts';

export function syncedCondition(p: Plan, result: ApplyResult, desiredCount: number, skipped: number, maxDeletePercent: number): ConditionInput {
  if (result.errors.length > 0) {
    const first = result.errors[0];
    return { type: 'Synced', status: 'False', reason: 'ApplyFailed', message: `${result.errors.length} writes failed; first: ${first?.name}: ${first?.error.message}` };
  }
  if (result.conflicts.length > 0) return { type: 'Synced', status: 'False', reason: 'Conflict', message: conflictMessage(result) };
  const guard = p.heldBack.get('DeletionGuard');
  if (guard) return { type: 'Synced', status: 'False', reason: 'DeletionGuard', message: guardMessage(guard, maxDeletePercent) };
  const held = heldText(p.heldBack);
  const skippedText = skipped > 0 ? `; ${skipped} endpoints skipped as invalid (see Events)` : '';
  return { type: 'Synced', status: 'True', reason: 'InSync', message: `${desiredCount} WorkloadEntries match the registry${held}${skippedText}` };
}

function heldText(held: ReadonlyMap<HoldReason, number>): string {
  const parts: string[] = [];
  const policy = held.get('Policy');
  if (policy) parts.push(`${policy} deletions not made because of the policy`);
  const scope = held.get('UnknownScope');
  if (scope) parts.push(`${scope} entries kept in unreadable scopes`);
  return parts.length > 0 ? ` (${parts.join('; ')})` : '';
}

export function conflictMessage(result: ApplyResult): string {
  const list = result.conflicts.slice(0, 5).map((c) => `${c.name} (${c.reason})`).join(', ');
  return `${result.conflicts.length} WorkloadEntries exist but are not owned by this source: ${list}. Delete or rename them, or set spec.adopt: true to take over unowned ones`;
}

export function guardMessage(count: number, maxDeletePercent: number): string {
  return `held back ${count} deletions: more than ${maxDeletePercent}% of this source's entries would go at once. If the registry really shrank, raise spec.deletionGuard.maxDeletePercent or set spec.deletionGuard.enabled: false for one sync`;
}

export function describeProviderFailure(e: unknown): { reason: string; message: string } {
  if (isProviderError(e)) return { reason: e.reason, message: e.message };
  if (e instanceof ConsentError) return { reason: e.reason, message: e.message };
  if (e instanceof SecretError) return { reason: 'SecretUnavailable', message: e.message };
  return { reason: 'ProviderFailed', message: (e as Error).message ?? String(e) };
}
