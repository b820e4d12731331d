/**
 * What the container image holds: the compiled output with production dependencies only
 * (the Dockerfile's runtime stage). It must start and run the operator against a real
 * apiserver.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { access, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../src/dev/paths.ts';
import { freePort } from '../../src/dev/process.ts';
import { startLocalCluster, type LocalCluster } from '../../src/dev/cluster.ts';
import { eventually } from '../harness/operator-env.ts';

const execFileP = promisify(execFile);
let dir: string;
let cluster: LocalCluster;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmreg-pkg-'));
  await execFileP(join(REPO_ROOT, 'node_modules/.bin/tsc'), ['-p', join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')]);
  await cp(join(REPO_ROOT, 'package.json'), join(dir, 'package.json'));
  await cp(join(REPO_ROOT, 'package-lock.json'), join(dir, 'package-lock.json'));
  await execFileP('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
  cluster = await startLocalCluster({ controllerManager: false });
});

after(async () => {
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('production install holds no development packages', async () => {
  const { stdout } = await execFileP('npm', ['ls', '--omit=dev', '--depth=0', '--json'], { cwd: dir });
  const deps = Object.keys((JSON.parse(stdout) as { dependencies?: Record<string, unknown> }).dependencies ?? {});
  for (const devOnly of ['typescript', 'fast-check', 'node', '@types/node']) assert.ok(!deps.includes(devOnly), `${devOnly} is not installed`);
  assert.ok(deps.includes('@kubernetes/client-node'));
});

test('the build leaves out the local control plane, the demo and the build scripts', async () => {
  for (const devOnly of ['dist/dev', 'dist/cli/demo.js', 'dist/cli/dev.js']) {
    await assert.rejects(access(join(dir, devOnly)), `${devOnly} is not in the build`);
  }
  await assert.rejects(execFileP(process.execPath, [join(dir, 'dist/cli/main.js'), 'demo'], { cwd: dir }), (e: { code?: number; stderr?: string }) => {
    assert.equal(e.code, 2);
    assert.match(e.stderr ?? '', /available from a source checkout \(make demo\)/);
    return true;
  });
});

test('the built operator starts with production dependencies only, serves probes and metrics, and stops on SIGTERM', async () => {
  const [metricsPort, probePort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [
    join(dir, 'dist/cli/main.js'),
    'run',
    `--kubeconfig=${cluster.cp.kubeconfig}`,
    `--metrics-bind-address=127.0.0.1:${metricsPort}`,
    `--health-probe-bind-address=127.0.0.1:${probePort}`,
    '--log-level=warn',
  ], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    await eventually('/readyz', async () => (await fetch(`http://127.0.0.1:${probePort}/readyz`)).status === 200, 30_000);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /controller_runtime_reconcile_total\{controller="vmregistrysource",result="success"\} 0/);
    assert.match(metrics, /process_resident_memory_bytes/);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, `exit code 0 after SIGTERM; stderr: ${stderr.slice(-500)}`);
});
