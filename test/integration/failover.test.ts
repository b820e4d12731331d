/**
 * Two `vmreg run --leader-elect` processes against the real control plane: when the
 * leader is killed outright (no chance to release its Lease), the standby takes over
 * once the lease expires and reconciles.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/dev/paths.ts';
import { freePort } from '../../src/dev/process.ts';
import { applyYaml, eventually, getSource, startLocalCluster } from '../harness/operator-env.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';

let cluster: LocalCluster;
const children: ChildProcess[] = [];

before(async () => {
  cluster = await startLocalCluster({ controllerManager: false });
  await applyYaml(cluster, `apiVersion: v1
kind: Namespace
metadata: {name: ops}
---
apiVersion: v1
kind: Namespace
metadata: {name: ha}
---
apiVersion: vmregistry.io/v1alpha1
kind: VmRegistrySource
metadata: {name: src, namespace: ha}
spec:
  interval: 1h
  consul: {address: "http://127.0.0.1:${await freePort()}", timeout: 1s}
`);
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await cluster?.stop();
});

async function replica(name: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [
    join(REPO_ROOT, 'src/cli/main.ts'),
    'run',
    `--kubeconfig=${cluster.cp.kubeconfig}`,
    '--leader-elect',
    '--leader-election-namespace=ops',
    `--metrics-bind-address=127.0.0.1:${await freePort()}`,
    `--health-probe-bind-address=127.0.0.1:${await freePort()}`,
    '--log-level=error',
  ], { env: { ...process.env, POD_NAME: name }, stdio: 'ignore' });
  children.push(child);
  return child;
}

async function holder(): Promise<string | undefined> {
  try {
    return (await cluster.kubectl(['get', 'lease', 'vm-registry-operator', '-n', 'ops', '-o', 'jsonpath={.spec.holderIdentity}'])).trim() || undefined;
  } catch {
    return undefined;
  }
}

test('a killed leader is replaced by the standby after the lease expires, and the standby reconciles', { timeout: 120_000 }, async () => {
  const a = await replica('replica-a');
  const first = await eventually('a leader', holder, 30_000);
  assert.equal(first, 'replica-a');
  await replica('replica-b');
  await eventually('the source to be reconciled by the leader', async () => (await getSource(cluster, 'ha', 'src')).status?.observedGeneration === 1, 30_000);

  a.kill('SIGKILL');
  const killedAt = Date.now();
  await eventually('replica-b to hold the lease', async () => (await holder()) === 'replica-b', 40_000);
  const takeover = Date.now() - killedAt;
  // The Lease lasts 15 s; replica-b may take it only after it expired.
  assert.ok(takeover > 5_000, `the lease was not taken while still valid (${takeover} ms)`);

  await cluster.kubectl(['patch', 'vmrs', 'src', '-n', 'ha', '--type=merge', '-p', '{"spec":{"interval":"30m"}}']);
  const s = await eventually('the new leader to observe generation 2', async () => {
    const src = await getSource(cluster, 'ha', 'src');
    return src.status?.observedGeneration === 2 ? src : undefined;
  }, 30_000);
  assert.equal(s.status?.conditions?.find((c) => c.type === 'ProviderReady')?.reason, 'ConsulUnreachable');
});
