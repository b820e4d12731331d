/** When a sync may plan only what changed, and what it leaves for the next one. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ownedAfter, partialScope, type ScopeInput } from '../../../src/controller/partial-sync.ts';
import type { WorkloadEntry } from '../../../src/api/istio.ts';

const base: ScopeInput = {
  ledger: { specKey: 'uid/1', pending: new Set(['left-over']) },
  owned: new Set(['a', 'b']),
  cacheByName: true,
  specKey: 'uid/1',
  changed: new Set(['changed']),
  touched: new Set(['touched']),
  wholeSourceDecisions: false,
  directListDue: false,
};

test('a partial sync plans the changed names, the entries the informer reported and what the last sync left', () => {
  assert.deepEqual([...(partialScope(base) ?? [])].sort(), ['changed', 'left-over', 'touched']);
});

test('every reason for a whole sync makes one', () => {
  const whole: Array<[string, Partial<ScopeInput>]> = [
    ['the first sync, or after a failure (no ledger)', { ledger: undefined }],
    ['nothing known of what is owned', { owned: undefined }],
    ['no cache to read by name', { cacheByName: false }],
    ['a mapping that cannot say what changed', { changed: undefined }],
    ['a new spec', { specKey: 'uid/2' }],
    ['a direct LIST is due (every 10 minutes)', { directListDue: true }],
    ['twins or unreadable scopes', { wholeSourceDecisions: true }],
  ];
  for (const [why, change] of whole) assert.equal(partialScope({ ...base, ...change }), undefined, why);
});

test('after a partial sync the owned names change only for the names it planned', () => {
  const entry = { metadata: { name: 'c' } } as WorkloadEntry;
  const before = new Set(['a', 'b']);
  assert.deepEqual([...ownedAfter(new Map([['c', entry]]), { names: new Set(['b', 'c']), before })].sort(), ['a', 'c']);
  assert.deepEqual([...ownedAfter(new Map([['c', entry]]))], ['c'], 'a whole sync takes the inventory as it is');
});
