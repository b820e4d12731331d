/** The version stamped into promtool follows the Prometheus module's numbering. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prometheusRelease } from '../../../src/dev/ops-tools.ts';
import { ToolBuildError } from '../../../src/dev/gobuild.ts';

test('module v0.MNN.P is Prometheus M.NN.P', () => {
  assert.equal(prometheusRelease('v0.316.0'), '3.16.0');
  assert.equal(prometheusRelease('v0.305.2'), '3.5.2');
  assert.throws(() => prometheusRelease('v3.16.0'), ToolBuildError);
});
