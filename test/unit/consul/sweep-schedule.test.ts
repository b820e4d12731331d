/** When sweep passes start: after a catalog move, at most once per period, sooner when asked or when the period shrinks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SweepSchedule } from '../../../src/providers/consul/sweep-schedule.ts';

function setup(periodMs: number): { schedule: SweepSchedule; starts: number[]; clock: { at: number }; period: { ms: number } } {
  const clock = { at: 0 };
  const period = { ms: periodMs };
  const starts: number[] = [];
  const schedule = new SweepSchedule({ now: () => clock.at, everyMs: () => period.ms, startPass: () => starts.push(clock.at) });
  return { schedule, starts, clock, period };
}

test('the first move starts a pass at once; moves within the period wait for it, and make one pass', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { schedule, starts, clock } = setup(1000);
  clock.at = 5000;
  schedule.moved();
  assert.deepEqual(starts, [5000]);
  clock.at = 5100;
  schedule.moved();
  schedule.moved();
  assert.equal(schedule.uncoveredSince, 5000, 'the running pass covers the first move');
  schedule.passEnded();
  assert.equal(schedule.uncoveredSince, 5100, 'the later moves wait');
  assert.deepEqual(starts, [5000]);
  clock.at = 6000;
  t.mock.timers.tick(900);
  assert.deepEqual(starts, [5000, 6000], 'one more pass for both moves, a period after the first began');
  schedule.passEnded();
  assert.equal(schedule.uncoveredSince, undefined);
  schedule.stop();
});

test('no move, no pass; an urgent move starts one as soon as the running pass ends', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { schedule, starts, clock } = setup(1000);
  t.mock.timers.tick(10_000);
  assert.deepEqual(starts, []);
  schedule.moved();
  clock.at = 10;
  schedule.moved(true);
  assert.deepEqual(starts, [0]);
  schedule.passEnded();
  assert.deepEqual(starts, [0, 10], 'no wait for the period');
  schedule.stop();
});

test('a shorter period moves a waiting pass up', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { schedule, starts, clock, period } = setup(60_000);
  schedule.moved();
  schedule.passEnded();
  clock.at = 1000;
  schedule.moved();
  period.ms = 8000;
  schedule.periodChanged();
  clock.at = 8000;
  t.mock.timers.tick(7000);
  assert.deepEqual(starts, [0, 8000], 'started 8 s after the last pass, not 60 s');
  schedule.stop();
});
