/**
 * The local control plane as a test component: it starts from cached binaries, and an
 * interrupted owner leaves no process and no temporary directory behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/dev/paths.ts';
import { eventually } from '../harness/operator-env.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('Ctrl-C during use kills etcd, kube-apiserver and kube-controller-manager and removes the working directory', async () => {
  const script = `
    import { LocalControlPlane } from ${JSON.stringify(join(REPO_ROOT, 'src/dev/controlplane.ts'))};
    const cp = await LocalControlPlane.start();
    const pids = (await import('node:child_process')).execFileSync('pgrep', ['-f', cp.dir]).toString().trim().split('\\n').map(Number);
    console.log(JSON.stringify({ dir: cp.dir, pids }));
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const started = await eventually('the child to report its control plane', async () => {
    const line = out.split('\n').find((l) => l.startsWith('{'));
    return line ? (JSON.parse(line) as { dir: string; pids: number[] }) : undefined;
  }, 120_000);
  assert.ok(existsSync(started.dir));
  assert.ok(started.pids.length >= 3, `etcd, kube-apiserver and kube-controller-manager run (${started.pids.length} processes)`);
  assert.ok(started.pids.every(alive));

  child.kill('SIGINT');
  await new Promise((resolve) => child.once('exit', resolve));
  await eventually('every process to be gone', async () => started.pids.every((p) => !alive(p)), 10_000);
  assert.equal(existsSync(started.dir), false, 'the working directory is removed');
});
