/**
 * The alert rules through promtool (built from the Prometheus Go module): they parse and
 * lint clean, and the unit tests in test/fixtures/prometheus fire each alert from input
 * series shaped exactly like the operator's metrics.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ensurePromtool } from '../../src/dev/ops-tools.ts';
import { CHART_RULES_FILE, RULE_TESTS_FILE, RULES_FILE } from '../harness/observability.ts';
import { runTool } from '../harness/tool-run.ts';

let promtool = '';

before(async () => {
  promtool = await ensurePromtool();
});

describe('promtool', () => {
  for (const [what, file] of [
    ['config/prometheus', RULES_FILE],
    ['the Helm chart', CHART_RULES_FILE],
  ] as const) {
    test(`check rules: the rule file of ${what} is valid, with no lint findings`, async () => {
      const r = await runTool(promtool, ['check', 'rules', '--lint=all', '--lint-fatal', file]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /SUCCESS: \d+ rules found/);
    });
  }

  test('test rules: every alert fires from series shaped like the operator exports them, and only then', async () => {
    const r = await runTool(promtool, ['test', 'rules', RULE_TESTS_FILE]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS/);
  });

  test('test rules fails when an expectation is wrong (the tests are able to fail)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmreg-promtool-'));
    try {
      const text = (await readFile(RULE_TESTS_FILE, 'utf8'))
        .replace(/- \.\.\/\.\.\/\.\.\/config\/prometheus\/vm-registry-operator\.rules\.yaml/, `- ${relative(dir, RULES_FILE)}`)
        .replace('source: shop/ec2}', 'source: shop/consul}');
      assert.notEqual(text, await readFile(RULE_TESTS_FILE, 'utf8'));
      const broken = join(dir, 'broken.test.yaml');
      await writeFile(broken, text);
      const r = await runTool(promtool, ['test', 'rules', broken]);
      assert.notEqual(r.code, 0, 'a wrong expected label fails');
      assert.match(r.stdout + r.stderr, /FAILED/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
