import { afterEach, beforeEach, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { runBlockingLoop } from '../../../src/providers/consul/blocking-loop.ts';

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 }));
afterEach(() => mock.timers.reset());

test('the blocking loop follows the index rules, backs off after errors and starts over from 0', async () => {
  const sent: number[] = [];
  const answers: Array<{ index: number } | Error> = [{ index: 10 }, { index: 12 }, new Error('reset by peer'), { index: 5 }, { index: 3 }];
  const errors: number[] = [];
  const stop = new AbortController();
  let release: (() => void) | undefined;
  const done = runBlockingLoop({
    signal: stop.signal,
    tuning: { waitMs: 60_000, backoffBaseMs: 1000, backoffMaxMs: 10_000 },
    query: async (index) => {
      sent.push(index);
      const next = answers.shift();
      if (next === undefined) {
        await new Promise<void>((r) => (release = r));
        throw new Error('stopped');
      }
      mock.timers.tick(200); // each answer takes a while: a real block, not a spin
      if (next instanceof Error) throw next;
      return next;
    },
    onAnswer: () => undefined,
    onError: (_e, failures) => errors.push(failures),
  });
  await flush();
  assert.deepEqual(sent, [0, 10, 12], 'the returned index is sent back');
  assert.deepEqual(errors, [1]);
  mock.timers.tick(499);
  await flush();
  assert.equal(sent.length, 3, 'no retry before the backoff (at least half the base after the first error)');
  mock.timers.tick(2_000);
  await flush();
  assert.deepEqual(sent, [0, 10, 12, 0, 5, 0], 'after an error from 0; an index that goes backwards starts over from 0');
  stop.abort();
  release?.();
  await done;
});

test('a server that answers at once with the same index does not make the loop spin', async () => {
  const sent: number[] = [];
  const stop = new AbortController();
  const done = runBlockingLoop({
    signal: stop.signal,
    tuning: { waitMs: 60_000, backoffBaseMs: 1000, backoffMaxMs: 10_000 },
    query: () => {
      sent.push(mock.timers ? Date.now() : 0);
      return Promise.resolve({ index: 7 });
    },
    onAnswer: () => undefined,
    onError: () => assert.fail('no error expected'),
  });
  await flush();
  assert.equal(sent.length, 2, 'the first answer, then one that returned at once');
  mock.timers.tick(1_999);
  await flush();
  assert.ok(sent.length <= 3, `paused between instant answers (${sent.length} queries)`);
  stop.abort();
  await done;
});
