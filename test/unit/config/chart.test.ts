/**
 * The Helm chart, config/prometheus and config/grafana hold copies of each other where
 * kustomize or Helm cannot reach across directories: the copies stay equal. Every alert
 * has its runbook, and every promtool test names an alert that exists.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../../src/dev/paths.ts';
import { CRD_FILE } from '../../../src/api/crd-yaml.ts';
import { readDocs } from '../../harness/manifests.ts';
import {
  ALERTS_DOC,
  alertRules,
  CHART_DASHBOARD_FILE,
  CHART_DIR,
  CHART_RULES_FILE,
  DASHBOARD_FILE,
  PROMETHEUS_RULE_FILE,
  readRuleGroups,
  readRuleTests,
  RULES_FILE,
} from '../../harness/observability.ts';

describe('copies kept equal', () => {
  test('the chart CRD is the generated one in crds/ (copy it after `make manifests`)', async () => {
    const [chart, generated] = await Promise.all([readFile(join(CHART_DIR, 'crds', 'vmregistry.io_vmregistrysources.yaml'), 'utf8'), readFile(join(REPO_ROOT, CRD_FILE), 'utf8')]);
    assert.equal(chart, generated);
  });

  test('the PrometheusRule and the chart hold the rule groups of the plain rule file', async () => {
    const plain = await readRuleGroups(RULES_FILE);
    assert.deepEqual(await readRuleGroups(CHART_RULES_FILE), plain);
    const [pr] = await readDocs(PROMETHEUS_RULE_FILE);
    assert.equal(pr?.kind, 'PrometheusRule');
    assert.deepEqual((pr as unknown as { spec: unknown }).spec, plain);
  });

  test('the chart dashboard is config/grafana byte for byte', async () => {
    assert.equal(await readFile(CHART_DASHBOARD_FILE, 'utf8'), await readFile(DASHBOARD_FILE, 'utf8'));
  });
});

describe('Chart.yaml', () => {
  test('version and appVersion follow package.json, and the image tag of config/manager', async () => {
    const chart = parse(await readFile(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { version: string; appVersion: string };
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const [kustomization] = await readDocs(join(REPO_ROOT, 'config', 'manager', 'kustomization.yaml'));
    const images = (kustomization as unknown as { images: Array<{ name: string; newTag: string }> }).images;
    assert.equal(chart.version, pkg.version);
    assert.equal(chart.appVersion, pkg.version);
    assert.equal(images.find((i) => i.name === 'vm-registry-operator')?.newTag, pkg.version);
  });
});

describe('alerts', () => {
  test('each has a severity, a for duration, a summary, a description and a runbook section in docs/alerts.md', async () => {
    const doc = await readFile(ALERTS_DOC, 'utf8');
    const rules = alertRules(await readRuleGroups(RULES_FILE));
    assert.equal(new Set(rules.map((r) => r.alert)).size, rules.length, 'alert names are unique');
    for (const r of rules) {
      assert.match(r.labels?.['severity'] ?? '', /^(critical|warning|info)$/, r.alert);
      assert.match(r.for ?? '', /^\d+[smh]$/, r.alert);
      assert.ok(r.annotations?.['summary'] && r.annotations['description'], r.alert);
      assert.equal(r.annotations['runbook'], `docs/alerts.md#${r.alert.toLowerCase()}`);
      assert.ok(doc.includes(`\n## ${r.alert}\n`), `docs/alerts.md has a section "## ${r.alert}"`);
    }
  });

  test('promtool tests fire every alert at least once, and name only alerts that exist', async () => {
    const names = new Set(alertRules(await readRuleGroups(RULES_FILE)).map((r) => r.alert));
    const fired = new Set<string>();
    for (const t of (await readRuleTests()).tests) {
      for (const a of t.alert_rule_test ?? []) {
        assert.ok(names.has(a.alertname), `unknown alert ${a.alertname} in a promtool test`);
        if ((a.exp_alerts ?? []).length > 0) fired.add(a.alertname);
      }
    }
    assert.deepEqual([...names].filter((n) => !fired.has(n)), []);
  });
});

describe('values.schema.json', () => {
  interface Schema {
    type?: string | string[];
    properties?: Record<string, Schema>;
    additionalProperties?: boolean | Schema;
    $ref?: string;
    definitions?: Record<string, Schema>;
  }
  test('closes every object of values.yaml (no key outside the schema; a typo fails)', async () => {
    const schema = JSON.parse(await readFile(join(CHART_DIR, 'values.schema.json'), 'utf8')) as Schema;
    const values = parse(await readFile(join(CHART_DIR, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    const resolve = (s: Schema): Schema => (s.$ref ? (schema.definitions?.[s.$ref.replace('#/definitions/', '')] ?? {}) : s);
    const problems: string[] = [];
    const walk = (path: string, v: unknown, s: Schema): void => {
      const r = resolve(s);
      if (v === null || typeof v !== 'object' || Array.isArray(v) || !r.properties) return;
      if (r.additionalProperties !== false) problems.push(`${path || '(root)'} is open: set additionalProperties: false`);
      for (const [k, child] of Object.entries(v)) {
        const cs = r.properties[k];
        if (!cs) problems.push(`${path}${k} is not in the schema`);
        else walk(`${path}${k}.`, child, cs);
      }
    };
    walk('', values, schema);
    assert.deepEqual(problems, []);
  });
});
