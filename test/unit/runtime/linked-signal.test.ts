import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { linkSignals, withLinkedSignal } from '../../../src/runtime/linked-signal.ts';

test('a linked signal aborts with the reason of the first source that aborts', () => {
  const a = new AbortController();
  const b = new AbortController();
  const link = linkSignals([a.signal, b.signal]);
  assert.equal(link.signal.aborted, false);
  const reason = new Error('b went away');
  b.abort(reason);
  assert.equal(link.signal.aborted, true);
  assert.equal(link.signal.reason, reason);
  assert.equal(getEventListeners(a.signal, 'abort').length, 0, 'aborting unlinks every source');
});

test('a source aborted already gives an aborted signal, linked to nothing', () => {
  const a = new AbortController();
  a.abort(new Error('closed'));
  const live = new AbortController();
  const link = linkSignals([live.signal, a.signal]);
  assert.equal(link.signal.aborted, true);
  assert.equal((link.signal.reason as Error).message, 'closed');
  assert.equal(getEventListeners(live.signal, 'abort').length, 0);
});

test('released, a linked signal no longer follows its sources, and a long-lived source keeps no trace of the operations', async () => {
  const longLived = new AbortController();
  const link = linkSignals([longLived.signal]);
  link.release();
  for (let i = 0; i < 50; i++) await withLinkedSignal([longLived.signal, new AbortController().signal], async (signal) => assert.equal(signal.aborted, false));
  assert.equal(getEventListeners(longLived.signal, 'abort').length, 0, 'no listener left behind');
  longLived.abort(new Error('shutdown'));
  assert.equal(link.signal.aborted, false, 'released before the abort');
});

test('withLinkedSignal unlinks when the operation fails too, and an abort during it reaches it', async () => {
  const longLived = new AbortController();
  await assert.rejects(
    withLinkedSignal([longLived.signal], () => Promise.reject(new Error('refused'))),
    /refused/,
  );
  assert.equal(getEventListeners(longLived.signal, 'abort').length, 0);
  const during = withLinkedSignal([longLived.signal], (signal) => new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true })));
  const outcome = assert.rejects(during, /shutdown/);
  longLived.abort(new Error('shutdown'));
  await outcome;
});
