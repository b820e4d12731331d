import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Conflict } from '../../../src/plan/decide.ts';
import { conflictMessage } from '../../../src/controller/status-messages.ts';

function withConflicts(conflicts: Conflict[]): readonly Conflict[] {
  return conflicts;
}

/** Deepest nesting of parentheses in a text. */
function nesting(text: string): number {
  let depth = 0;
  let max = 0;
  for (const ch of text) {
    if (ch === '(') max = Math.max(max, ++depth);
    if (ch === ')') depth--;
  }
  return max;
}

describe('the Conflict message', () => {
  test('names each entry and why, with no nested parentheses, and gives the advice once', () => {
    const message = conflictMessage(
      withConflicts([
        { name: 'web-a', reason: 'owned by VmRegistrySource other' },
        { name: 'web-b', reason: 'not owned by this source (set spec.adopt to take it over)' },
      ]),
    );
    assert.equal(
      message,
      '2 WorkloadEntries exist but are not owned by this source: web-a: owned by VmRegistrySource other; web-b: not owned by this source. Delete or rename them, or set spec.adopt: true to take over unowned ones',
    );
    assert.equal(nesting(message), 0);
  });

  test('lists five and counts the rest', () => {
    const conflicts = Array.from({ length: 7 }, (_, i) => ({ name: `e${i}`, reason: 'managed by helm' }));
    const message = conflictMessage(withConflicts(conflicts));
    assert.match(message, /^7 WorkloadEntries .*e4: managed by helm; and 2 more\. Delete/);
    assert.doesNotMatch(message, /e5/);
  });
});
