/** `vmreg run --kube-api-qps/--kube-api-burst`: parsed, validated before any connection, documented with their defaults. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../../src/cli/errors.ts';
import { parseClientLimit, RUN_HELP, runOperator } from '../../../src/cli/run.ts';
import { DEFAULT_KUBE_API_BURST, DEFAULT_KUBE_API_QPS } from '../../../src/runtime/kube-client.ts';

test('the flags give the client limit; fractions of a request per second are allowed', () => {
  assert.deepEqual(parseClientLimit('200', '400'), { qps: 200, burst: 400 });
  assert.deepEqual(parseClientLimit('0.5', '1'), { qps: 0.5, burst: 1 });
  assert.deepEqual(parseClientLimit(String(DEFAULT_KUBE_API_QPS), String(DEFAULT_KUBE_API_BURST)), { qps: 50, burst: 100 });
});

test('bad values are usage errors naming the flag', () => {
  for (const [qps, burst, flag] of [
    ['0', '10', '--kube-api-qps'],
    ['-1', '10', '--kube-api-qps'],
    ['fast', '10', '--kube-api-qps'],
    ['', '10', '--kube-api-qps'],
    ['Infinity', '10', '--kube-api-qps'],
    ['10', '0', '--kube-api-burst'],
    ['10', '1.5', '--kube-api-burst'],
    ['10', 'lots', '--kube-api-burst'],
  ] as const) {
    assert.throws(() => parseClientLimit(qps, burst), (e: unknown) => e instanceof UsageError && e.message.startsWith(flag), `${qps}/${burst}`);
  }
});

test('vmreg run rejects a bad limit before it looks for a cluster', async () => {
  await assert.rejects(runOperator(['--kube-api-qps=0', '--kubeconfig=/nonexistent/kubeconfig']), UsageError);
  await assert.rejects(runOperator(['--kube-api-burst=-3', '--kubeconfig=/nonexistent/kubeconfig']), UsageError);
});

test('the help text names both flags with their defaults', () => {
  assert.match(RUN_HELP, new RegExp(`--kube-api-qps N .*\\(default ${DEFAULT_KUBE_API_QPS}\\)`));
  assert.match(RUN_HELP, new RegExp(`--kube-api-burst N .*\\(default ${DEFAULT_KUBE_API_BURST}\\)`));
});
