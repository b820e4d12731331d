/** The alert rules, the dashboard and the Helm chart: where they are and what they hold. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../src/dev/paths.ts';

export const CHART_DIR = join(REPO_ROOT, 'charts', 'vm-registry-operator');
export const RULES_FILE = join(REPO_ROOT, 'config', 'prometheus', 'vm-registry-operator.rules.yaml');
export const PROMETHEUS_RULE_FILE = join(REPO_ROOT, 'config', 'prometheus', 'prometheus_rule.yaml');
export const CHART_RULES_FILE = join(CHART_DIR, 'files', 'vm-registry-operator.rules.yaml');
export const DASHBOARD_FILE = join(REPO_ROOT, 'config', 'grafana', 'vm-registry-operator.json');
export const CHART_DASHBOARD_FILE = join(CHART_DIR, 'files', 'vm-registry-operator.json');
export const RULE_TESTS_FILE = join(REPO_ROOT, 'test', 'fixtures', 'prometheus', 'alerts.test.yaml');
export const ALERTS_DOC = join(REPO_ROOT, 'docs', 'alerts.md');

export interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RuleGroups {
  groups: Array<{ name: string; interval?: string; rules: Rule[] }>;
}

export async function readRuleGroups(path: string): Promise<RuleGroups> {
  return parse(await readFile(path, 'utf8')) as RuleGroups;
}

export function alertRules(groups: RuleGroups): Array<Rule & { alert: string }> {
  return groups.groups.flatMap((g) => g.rules).filter((r): r is Rule & { alert: string } => typeof r.alert === 'string');
}

interface DashboardPanel {
  title?: string;
  targets?: Array<{ expr?: string }>;
  panels?: DashboardPanel[];
}
interface DashboardVariable {
  name: string;
  type: string;
  query?: string | { query?: string };
}
export interface Dashboard {
  title: string;
  uid: string;
  panels: DashboardPanel[];
  templating?: { list: DashboardVariable[] };
}

export async function readDashboard(path: string = DASHBOARD_FILE): Promise<Dashboard> {
  return JSON.parse(await readFile(path, 'utf8')) as Dashboard;
}

/** Every PromQL query of the dashboard (panel targets, nested rows, query variables), with where it is. */
export function dashboardQueries(d: Dashboard): Array<{ where: string; expr: string }> {
  const out: Array<{ where: string; expr: string }> = [];
  const walk = (panels: readonly DashboardPanel[]): void => {
    for (const p of panels) {
      for (const [i, t] of (p.targets ?? []).entries()) if (t.expr) out.push({ where: `panel "${p.title ?? '?'}" target ${i}`, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    if (q) out.push({ where: `variable $${v.name}`, expr: q });
  }
  return out;
}

export interface RuleTestFile {
  rule_files: string[];
  evaluation_interval?: string;
  tests: Array<{
    name?: string;
    interval?: string;
    input_series: Array<{ series: string; values: string }>;
    alert_rule_test?: Array<{ eval_time: string; alertname: string; exp_alerts?: Array<{ exp_labels?: Record<string, string>; exp_annotations?: Record<string, string> }> }>;
  }>;
}

export async function readRuleTests(): Promise<RuleTestFile> {
  return parse(await readFile(RULE_TESTS_FILE, 'utf8')) as RuleTestFile;
}
