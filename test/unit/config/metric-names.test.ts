/**
 * Every metric an alert, a dashboard query or a promtool input series names is one the
 * operator exports, with labels it has. The exported names come from a real
 * ControllerMetrics registry with prom-client's default process metrics, read now.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { exportedSeries, SCRAPE_LABELS } from '../../harness/exported-metrics.ts';
import { scanExpression, unknownNames } from '../../harness/promql.ts';
import { alertRules, dashboardQueries, readDashboard, readRuleGroups, readRuleTests, RULES_FILE } from '../../harness/observability.ts';

const exported = exportedSeries();

describe('the PromQL scanner', () => {
  test('finds names, matcher labels and grouping labels, and skips functions, strings and durations', () => {
    const r = scanExpression('sum by (provider, le) (rate(foo_bucket{job=~"$job", outcome!~"a|b"}[$__rate_interval])) / on () group_left max(bar) > 0.5 unless absent(baz{x="1"})');
    assert.deepEqual(r.selectors, [
      { name: 'foo_bucket', labels: ['job', 'outcome'] },
      { name: 'bar', labels: [] },
      { name: 'baz', labels: ['x'] },
    ]);
    assert.deepEqual(r.groupingLabels, ['provider', 'le']);
    assert.deepEqual(scanExpression('label_values(vmregistry_last_sync_timestamp_seconds{job=~"$job"}, source)').selectors, [{ name: 'vmregistry_last_sync_timestamp_seconds', labels: ['job'] }]);
  });

  test('reports a misspelt metric, a label a metric lacks, and a grouping label no metric has', () => {
    assert.deepEqual(unknownNames('x', 'rate(vmregistry_drift_correction_total[5m])', exported, SCRAPE_LABELS), ['x: names vmregistry_drift_correction_total, which the operator does not export']);
    assert.deepEqual(unknownNames('x', 'vmregistry_workload_entries{stat="managed"}', exported, SCRAPE_LABELS), ['x: vmregistry_workload_entries has no label stat']);
    assert.deepEqual(unknownNames('x', 'sum by (provider) (vmregistry_workload_entries)', exported, SCRAPE_LABELS), ['x: groups by provider, a label none of its metrics has']);
  });

  test('the exported set is read from the registry, histograms and process metrics included', () => {
    assert.ok(exported.get('vmregistry_provider_request_duration_seconds_bucket')?.has('le'));
    assert.ok(exported.has('process_cpu_seconds_total') && exported.has('process_resident_memory_bytes'));
  });
});

describe('alerts and dashboard name only exported metrics', () => {
  test('every alert expression', async () => {
    const rules = alertRules(await readRuleGroups(RULES_FILE));
    assert.ok(rules.length > 0);
    assert.deepEqual(rules.flatMap((r) => unknownNames(`alert ${r.alert}`, r.expr, exported, SCRAPE_LABELS)), []);
  });

  test('every dashboard query', async () => {
    const queries = dashboardQueries(await readDashboard());
    assert.ok(queries.length > 10);
    assert.deepEqual(queries.flatMap((q) => unknownNames(q.where, q.expr, exported, SCRAPE_LABELS)), []);
  });

  test('promtool input series carry exactly the labels the operator exports (plus scrape labels)', async () => {
    const file = await readRuleTests();
    const problems: string[] = [];
    for (const t of file.tests) {
      for (const s of t.input_series) {
        const [sel, ...more] = scanExpression(s.series).selectors;
        if (!sel || more.length > 0) {
          problems.push(`${s.series}: not one series`);
          continue;
        }
        const labels = exported.get(sel.name);
        if (!labels) {
          problems.push(`${s.series}: the operator does not export ${sel.name}`);
          continue;
        }
        const own = sel.labels.filter((l) => !SCRAPE_LABELS.includes(l)).sort();
        assert.ok(sel.labels.includes('job') && sel.labels.includes('instance'), `${s.series}: scraped series carry job and instance`);
        if (JSON.stringify(own) !== JSON.stringify([...labels].sort())) problems.push(`${s.series}: labels ${own.join(',')} but the operator exports ${[...labels].sort().join(',')}`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
