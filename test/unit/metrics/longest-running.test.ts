import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ControllerMetrics } from '../../../src/metrics/controller-metrics.ts';

const GAUGE = 'workqueue_longest_running_processor_seconds';

async function scraped(metrics: ControllerMetrics): Promise<string[]> {
  const text = await metrics.registry.metrics();
  return text.split('\n').filter((l) => l.startsWith(GAUGE));
}

test("the longest-running gauge reads the queue when scraped, and stops once the queue's reader is undone", async () => {
  const metrics = new ControllerMetrics(new Registry(), { defaultMetrics: false });
  let seconds = 1.5;
  const undo = metrics.observeLongestRunning('vmregistrysource', () => seconds);
  assert.deepEqual(await scraped(metrics), [`${GAUGE}{name="vmregistrysource"} 1.5`]);
  seconds = 7;
  assert.deepEqual(await scraped(metrics), [`${GAUGE}{name="vmregistrysource"} 7`], 'read again at the next scrape');
  undo();
  seconds = 99;
  assert.deepEqual(await scraped(metrics), [`${GAUGE}{name="vmregistrysource"} 7`], 'no longer read');
});
