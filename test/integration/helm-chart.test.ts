/**
 * The Helm chart with helm built from its Go module, no cluster needed: `helm lint
 * --strict` passes, and values.schema.json rejects typos and bad values at render time.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureHelm } from '../../src/dev/ops-tools.ts';
import { parseDocs, type DeploymentObject } from '../harness/manifests.ts';
import { CHART_DIR } from '../harness/observability.ts';
import { runTool, runToolOk } from '../harness/tool-run.ts';

const NS = 'vm-registry-system';
const RELEASE = 'vm-registry-operator';
let helm = '';

before(async () => {
  helm = await ensureHelm();
});

describe('helm lint', () => {
  test('passes with the default values and with every option turned on', async () => {
    for (const sets of [[], ['--set', 'serviceMonitor.enabled=true,prometheusRule.enabled=true,dashboard.enabled=true,watchNamespaces={team-a,team-b},workers=8,leaderElection.leaseName=other']]) {
      const r = await runTool(helm, ['lint', '--strict', CHART_DIR, ...sets]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });
});

describe('values.schema.json', () => {
  const rejected: Array<[string, string[], RegExp]> = [
    ['an unknown top-level key (a typo)', ['--set', 'replicas=3'], /replicas/],
    ['an unknown nested key', ['--set', 'resources.request.cpu=1'], /request/],
    ['a string for a number', ['--set-string', 'replicaCount=two'], /replicaCount/],
    ['an unknown log level', ['--set', 'logLevel=verbose'], /logLevel/],
    ['an unknown pull policy', ['--set', 'image.pullPolicy=Sometimes'], /pullPolicy/],
    ['a namespace that is not a DNS label', ['--set', 'watchNamespaces={Team_A}'], /watchNamespaces/],
    ['a malformed quantity', ['--set', 'resources.limits.memory=lots'], /memory/],
    ['an extra arg that is not a flag', ['--set', 'extraArgs={leader-elect}'], /extraArgs/],
  ];
  for (const [what, args, key] of rejected) {
    test(`rejects ${what}`, async () => {
      const r = await runTool(helm, ['template', RELEASE, CHART_DIR, '--namespace', NS, ...args]);
      assert.notEqual(r.code, 0, `helm template ${args.join(' ')} must fail`);
      assert.match(r.stderr, /values don't meet the specifications of the schema/);
      assert.match(r.stderr, key);
    });
  }

  test('accepts a valid override', async () => {
    const docs = parseDocs(await runToolOk(helm, ['template', RELEASE, CHART_DIR, '--namespace', NS, '--set', 'replicaCount=3,logLevel=debug,resources.limits.memory=1Gi']));
    const d = docs.find((x) => x.kind === 'Deployment') as DeploymentObject;
    assert.equal(d.spec.replicas, 3);
    assert.ok(d.spec.template.spec.containers[0]?.args?.includes('--log-level=debug'));
  });
});
