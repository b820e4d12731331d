/** Status conditions: transition times, the Ready summary, and status comparison without timestamps. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Condition, VmRegistrySourceStatus } from '../../../src/api/types.ts';
import { canonicalJson } from '../../../src/plan/canonical-json.ts';
import { mergeConditions, readyFrom, statusEqual, type ConditionInput } from '../../../src/controller/conditions.ts';

const T0 = '2026-03-01T10:00:00Z';
const T1 = '2026-03-01T10:05:00Z';

const providerReady = (status: ConditionInput['status'], reason = 'Connected', message = 'consul answered'): ConditionInput => ({ type: 'ProviderReady', status, reason, message });
const synced = (status: ConditionInput['status'], reason = 'Synced', message = '3 entries in sync'): ConditionInput => ({ type: 'Synced', status, reason, message });

describe('mergeConditions', () => {
  test('first write: every condition gets now as its transition time and the generation', () => {
    const merged = mergeConditions(undefined, [providerReady('True'), synced('False', 'ApplyFailed', 'boom')], 4, T0);
    assert.deepEqual(merged, [
      { type: 'ProviderReady', status: 'True', reason: 'Connected', message: 'consul answered', observedGeneration: 4, lastTransitionTime: T0 },
      { type: 'Synced', status: 'False', reason: 'ApplyFailed', message: 'boom', observedGeneration: 4, lastTransitionTime: T0 },
    ]);
  });

  test('status unchanged: lastTransitionTime is kept, even when reason, message and generation change', () => {
    const first = mergeConditions(undefined, [providerReady('True'), synced('False', 'ApplyFailed', 'boom')], 1, T0);
    const second = mergeConditions(first, [providerReady('True', 'Connected', 'consul answered again'), synced('False', 'Conflicts', '2 conflicts')], 2, T1);
    assert.deepEqual(
      second.map((c) => [c.type, c.lastTransitionTime, c.reason, c.message, c.observedGeneration]),
      [
        ['ProviderReady', T0, 'Connected', 'consul answered again', 2],
        ['Synced', T0, 'Conflicts', '2 conflicts', 2],
      ],
    );
  });

  test('status flipped: lastTransitionTime moves to now, for the flipped condition only', () => {
    const first = mergeConditions(undefined, [providerReady('True'), synced('False')], 1, T0);
    const second = mergeConditions(first, [providerReady('True'), synced('True')], 1, T1);
    assert.equal(second.find((c) => c.type === 'ProviderReady')?.lastTransitionTime, T0);
    assert.equal(second.find((c) => c.type === 'Synced')?.lastTransitionTime, T1);
  });

  test('Unknown to False is a flip too', () => {
    const first = mergeConditions(undefined, [synced('Unknown')], 1, T0);
    assert.equal(mergeConditions(first, [synced('False')], 1, T1)[0]?.lastTransitionTime, T1);
  });

  test('a condition new to the list gets now; one no longer reported is dropped', () => {
    const first = mergeConditions(undefined, [providerReady('True')], 1, T0);
    const second = mergeConditions(first, [synced('True')], 1, T1);
    assert.deepEqual(second.map((c) => [c.type, c.lastTransitionTime]), [['Synced', T1]]);
  });

  test('previous conditions are matched by type, not by position', () => {
    const previous: Condition[] = [
      { type: 'Synced', status: 'True', reason: 'Synced', message: '', lastTransitionTime: T0 },
      { type: 'ProviderReady', status: 'False', reason: 'Down', message: '', lastTransitionTime: T0 },
    ];
    const merged = mergeConditions(previous, [providerReady('False'), synced('True')], 1, T1);
    assert.deepEqual(merged.map((c) => c.lastTransitionTime), [T0, T0]);
  });

  test('long messages are cut to the schema limit', () => {
    const [c] = mergeConditions(undefined, [synced('False', 'X', 'm'.repeat(40_000))], 1, T0);
    assert.equal(c?.message.length, 32_000);
  });

  test('the previous list is not modified', () => {
    const previous = mergeConditions(undefined, [synced('False')], 1, T0);
    const copy = structuredClone(previous);
    mergeConditions(previous, [synced('True')], 2, T1);
    assert.deepEqual(previous, copy);
  });
});

describe('readyFrom', () => {
  test('all True → Ready True, reason Synced, messages joined', () => {
    assert.deepEqual(readyFrom([providerReady('True'), synced('True')]), {
      type: 'Ready',
      status: 'True',
      reason: 'Synced',
      message: 'consul answered; 3 entries in sync',
    });
  });

  test('the first condition not True decides, with its reason and message', () => {
    assert.deepEqual(readyFrom([providerReady('False', 'ConnectionRefused', 'no answer'), synced('False', 'Stale', 'old')]), {
      type: 'Ready',
      status: 'False',
      reason: 'ConnectionRefused',
      message: 'no answer',
    });
    assert.deepEqual(readyFrom([providerReady('True'), synced('False', 'DeletionGuard', 'held back')]), {
      type: 'Ready',
      status: 'False',
      reason: 'DeletionGuard',
      message: 'held back',
    });
  });

  test('Unknown stays Unknown', () => {
    const ready = readyFrom([providerReady('Unknown', 'Starting', 'first read pending'), synced('False')]);
    assert.equal(ready.status, 'Unknown');
    assert.equal(ready.reason, 'Starting');
    assert.equal(readyFrom([providerReady('True'), synced('Unknown', 'Waiting', 'w')]).status, 'Unknown');
  });
});

describe('statusEqual', () => {
  const status = (over: Partial<VmRegistrySourceStatus> = {}): VmRegistrySourceStatus => ({
    observedGeneration: 3,
    provider: 'consul',
    conditions: [
      { type: 'ProviderReady', status: 'True', reason: 'Connected', message: 'ok', observedGeneration: 3, lastTransitionTime: T0 },
      { type: 'Synced', status: 'True', reason: 'Synced', message: '3 entries', observedGeneration: 3, lastTransitionTime: T0 },
    ],
    desiredEntries: 3,
    managedEntries: 3,
    conflicts: 0,
    skipped: 0,
    heldBackDeletes: 0,
    lastSyncTime: T0,
    ...over,
  });

  test('equal content is equal', () => {
    assert.ok(statusEqual(status(), status()));
    assert.ok(statusEqual(undefined, undefined));
  });

  test('timestamps are ignored: lastSyncTime and lastTransitionTime', () => {
    const later = status({ lastSyncTime: T1 });
    later.conditions = later.conditions?.map((c) => ({ ...c, lastTransitionTime: T1 }));
    assert.ok(statusEqual(status(), later));
    const noTimes = status();
    delete noTimes.lastSyncTime;
    assert.ok(statusEqual(status(), noTimes));
  });

  test('key order and condition order are ignored', () => {
    const s = status();
    const reordered = Object.fromEntries(Object.entries(s).reverse()) as VmRegistrySourceStatus;
    reordered.conditions = [...(s.conditions ?? [])].reverse().map((c) => Object.fromEntries(Object.entries(c).reverse()) as Condition);
    assert.ok(statusEqual(s, reordered));
  });

  test('a changed condition status, reason, message or generation is a difference', () => {
    const variants: Array<(c: Condition) => Condition> = [
      (c) => ({ ...c, status: 'False' }),
      (c) => ({ ...c, reason: 'Other' }),
      (c) => ({ ...c, message: 'changed' }),
      (c) => ({ ...c, observedGeneration: 4 }),
    ];
    for (const change of variants) {
      const s = status();
      s.conditions = s.conditions?.map((c, i) => (i === 1 ? change(c) : c));
      assert.ok(!statusEqual(status(), s), JSON.stringify(s.conditions?.[1]));
    }
  });

  test('a changed counter, provider or generation is a difference', () => {
    for (const over of [{ managedEntries: 4 }, { conflicts: 1 }, { heldBackDeletes: 2 }, { skipped: 1 }, { desiredEntries: 0 }, { provider: 'ec2' as const }, { observedGeneration: 4 }]) {
      assert.ok(!statusEqual(status(), status(over)), JSON.stringify(over));
    }
  });

  test('a missing or extra condition is a difference; no status differs from a status', () => {
    const fewer = status();
    fewer.conditions = fewer.conditions?.slice(0, 1);
    assert.ok(!statusEqual(status(), fewer));
    assert.ok(!statusEqual(undefined, status()));
    assert.ok(!statusEqual(status(), undefined));
  });
});

describe('canonicalJson', () => {
  test('object keys sorted at every depth; arrays keep their order', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [3, 1], c: null } }), '{"a":{"c":null,"d":[3,1]},"b":1}');
    assert.equal(canonicalJson({ x: [{ z: 1, y: 2 }] }), canonicalJson({ x: [{ y: 2, z: 1 }] }));
    assert.notEqual(canonicalJson([1, 2]), canonicalJson([2, 1]));
  });
});
