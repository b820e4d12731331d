/** Whole-list reads run one at a time: requests during a run make one more run, not one each. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { OneAtATime } from '../../../src/providers/consul/one-at-a-time.ts';

function gated(): { runs: number; release: () => void; readonly task: () => Promise<void> } {
  let open: (() => void) | undefined;
  const state = {
    runs: 0,
    release: () => open?.(),
    task: () => {
      state.runs += 1;
      return new Promise<void>((r) => (open = r));
    },
  };
  return state;
}

test('requests while a run is under way make exactly one more run after it', async () => {
  const g = gated();
  let closed = false;
  const once = new OneAtATime({ run: g.task, track: () => undefined, closed: () => closed, now: () => 0 });
  once.request();
  once.request();
  once.request();
  assert.equal(g.runs, 1, 'one run at a time');
  g.release();
  await tick();
  assert.equal(g.runs, 2, 'the requests made during it give one more run');
  g.release();
  await tick();
  assert.equal(g.runs, 2, 'nothing was asked during the second run');
  once.request();
  closed = true;
  once.request();
  g.release();
  await tick();
  assert.equal(g.runs, 3, 'closed: the request made during the run is dropped');
});

test('the next run waits the pause the last run earned; cancel drops it', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const g = gated();
  let now = 0;
  const once = new OneAtATime({ run: g.task, track: () => undefined, closed: () => false, now: () => now, pauseMs: (took) => took });
  once.request();
  now = 300;
  once.request();
  g.release();
  await tick();
  assert.equal(g.runs, 1, 'waiting for the pause');
  t.mock.timers.tick(299);
  assert.equal(g.runs, 1);
  t.mock.timers.tick(1);
  assert.equal(g.runs, 2, 'the pause was as long as the run took');
  once.request();
  now = 500;
  g.release();
  await tick();
  once.cancel();
  t.mock.timers.tick(10_000);
  assert.equal(g.runs, 2, 'a cancelled pause runs nothing');
});

test('a first request waits the delay asked for; requests meanwhile join its run', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const g = gated();
  let delayMs = 30;
  const once = new OneAtATime({ run: g.task, track: () => undefined, closed: () => false, now: () => 0, delayMs: () => delayMs });
  once.request();
  once.request();
  t.mock.timers.tick(29);
  assert.equal(g.runs, 0, 'still waiting');
  t.mock.timers.tick(1);
  assert.equal(g.runs, 1, 'one run after the delay, for both requests');
  g.release();
  await tick();
  assert.equal(g.runs, 1, 'nothing was asked during the run');
  delayMs = 0;
  once.request();
  assert.equal(g.runs, 2, 'no delay asked: the run starts at once');
  g.release();
  await tick();
});
