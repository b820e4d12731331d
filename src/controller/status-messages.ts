/** The words of status conditions and Events: what happened and what the user can do. */
import type { ApplyResult } from '../apply/apply.ts';
import type { Conflict, HoldReason } from '../plan/decide.ts';
import type { Plan } from '../plan/plan.ts';
import { isProviderError } from '../providers/errors.ts';
import type { ConditionInput } from './conditions.ts';
import { ConsentError } from './consent.ts';
import { SecretError } from './provider-slots.ts';

export function syncedCondition(p: Plan, result: Pick<ApplyResult, 'errors'>, desiredCount: number, skipped: number, maxDeletePercent: number): ConditionInput {
  if (result.errors.length > 0) {
    const first = result.errors[0];
    return { type: 'Synced', status: 'False', reason: 'ApplyFailed', message: `${result.errors.length} writes failed; first: ${first?.name}: ${first?.error.message}` };
  }
  if (p.conflicts.length > 0) return { type: 'Synced', status: 'False', reason: 'Conflict', message: conflictMessage(p.conflicts) };
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

/**
 * "N WorkloadEntries exist but are not owned by this source: a: owned by X; b: ...".
 * Each entry is "name: why", separated by semicolons, so a reason that carries its own
 * parentheses never ends up nested inside others; the advice is given once, at the end.
 */
export function conflictMessage(conflicts: readonly Conflict[]): string {
  const shown = conflicts.slice(0, 5).map((c) => `${c.name}: ${withoutHint(c.reason)}`);
  const more = conflicts.length > shown.length ? `; and ${conflicts.length - shown.length} more` : '';
  return `${conflicts.length} WorkloadEntries exist but are not owned by this source: ${shown.join('; ')}${more}. Delete or rename them, or set spec.adopt: true to take over unowned ones`;
}

/** A reason without a trailing "(advice)": the message ends with the advice already. */
function withoutHint(reason: string): string {
  return reason.replace(/\s*\([^()]*\)$/, '');
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
