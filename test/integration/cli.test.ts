/**
 * The vmreg command line as a user runs it: a child process of src/cli/main.ts, with
 * its exit codes, usage texts and error messages; `run` against a real local control
 * plane (probes, metrics, SIGTERM) and `preview` against a real Consul agent.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConsulAgent } from '../../src/dev/consul-agent.ts';
import { LocalControlPlane } from '../../src/dev/controlplane.ts';
import { freePort } from '../../src/dev/process.ts';
import { REPO_ROOT } from '../../src/dev/paths.ts';
import { applyYaml, eventually, getEntries, startLocalCluster } from '../harness/operator-env.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import type { WorkloadEntry } from '../../src/api/istio.ts';

/** The project's pinned Node (the one `npm run` puts first on the PATH). */
const NODE = join(REPO_ROOT, 'node_modules', '.bin', 'node');
const MAIN = join(REPO_ROOT, 'src', 'cli', 'main.ts');

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface Cli {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  stdout(): string;
  stderr(): string;
}

/** Starts `vmreg args...`; env is added to (or, with undefined values, removed from) this process's environment. */
function startCli(args: string[], env: Record<string, string | undefined> = {}): Cli {
  const fullEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete fullEnv[k];
    else fullEnv[k] = v;
  }
  const child = spawn(NODE, [MAIN, ...args], { cwd: REPO_ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<Exit>((resolvePromise) => {
    child.on('close', (code, signal) => resolvePromise({ code, signal, stdout: out, stderr: err }));
  });
  return { child, exited, stdout: () => out, stderr: () => err };
}

/** Runs `vmreg args...` to completion (killed after timeoutMs). */
async function runCli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000): Promise<Exit> {
  const cli = startCli(args, env);
  const timer = setTimeout(() => cli.child.kill('SIGKILL'), timeoutMs);
  try {
    return await cli.exited;
  } finally {
    clearTimeout(timer);
  }
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: await res.text() };
}

let tmp = '';
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'vmreg-cli-test-'));
});
after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('vmreg usage', () => {
  test('--help (and no command) prints the commands and exits 0', async () => {
    for (const args of [['--help'], ['-h'], ['help'], []]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, `vmreg ${args.join(' ')}: ${r.stderr}`);
      for (const command of ['run', 'preview', 'dev', 'demo']) assert.match(r.stdout, new RegExp(`^  ${command}\\s`, 'm'), `vmreg ${args.join(' ')} lists ${command}`);
      assert.match(r.stdout, /vmreg <command> --help/);
      assert.equal(r.stderr, '');
    }
  });

  test('each command has its own --help, exiting 0 without doing anything', async () => {
    const expected: Record<string, RegExp[]> = {
      run: [/^vmreg run/, /--kubeconfig/, /--metrics-bind-address/, /--health-probe-bind-address/, /--leader-elect/, /--namespaces/],
      preview: [/^vmreg preview/, /Usage: vmreg preview -f/, /--secret NAME\/KEY=VALUE/],
      dev: [/^vmreg dev/, /Usage: vmreg dev/],
      demo: [/^vmreg demo/],
    };
    const general = (await runCli(['--help'])).stdout;
    for (const [command, patterns] of Object.entries(expected)) {
      // `run --help` with no reachable cluster: it must print usage, not try to connect.
      const r = await runCli([command, '--help'], { KUBECONFIG: join(tmp, 'missing-kubeconfig') });
      assert.equal(r.code, 0, `vmreg ${command} --help: ${r.stderr}`);
      for (const p of patterns) assert.match(r.stdout, p, `vmreg ${command} --help`);
      assert.notEqual(r.stdout, general, `vmreg ${command} --help is not the general help`);
    }
  });

  test('an unknown command exits 2 with a hint', async () => {
    const r = await runCli(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
    assert.match(r.stderr, /vmreg --help/);
    assert.equal(r.stdout, '');
  });

  test('an unknown option exits 2', async () => {
    const r = await runCli(['run', '--no-such-flag']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--no-such-flag/);
  });
});

describe('vmreg run without credentials', () => {
  test('KUBECONFIG naming a missing file: exit 2 naming the file', async () => {
    const home = await mkdtemp(join(tmp, 'home-'));
    const missing = join(tmp, 'nowhere', 'kubeconfig');
    const r = await runCli(['run', '--metrics-bind-address=0', '--health-probe-bind-address=0'], { KUBECONFIG: missing, HOME: home, KUBERNETES_SERVICE_HOST: undefined });
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`kubeconfig ${missing} does not exist`), r.stderr);
  });

  test('nothing configured at all (no KUBECONFIG, empty HOME, not in a cluster): exit 2 saying what to pass', async () => {
    const home = await mkdtemp(join(tmp, 'home-'));
    const r = await runCli(['run', '--metrics-bind-address=0', '--health-probe-bind-address=0'], { KUBECONFIG: undefined, HOME: home, KUBERNETES_SERVICE_HOST: undefined });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /no cluster credentials: pass --kubeconfig, set KUBECONFIG, or run inside a cluster/);
    assert.doesNotMatch(r.stderr, /localhost:8080/, 'no silent fallback to localhost:8080');
  });
});

describe('vmreg run and preview against real components', () => {
  let cluster: LocalCluster;
  let agent: ConsulAgent;
  const running: Cli[] = [];

  before(async () => {
    [cluster, agent] = await Promise.all([startLocalCluster({ controllerManager: false }), ConsulAgent.start()]);
    await agent.registerService({ ID: 'web-1', Name: 'web', Tags: ['mesh'], Address: '10.40.0.1', Port: 8080 });
    await agent.registerService({ ID: 'web-2', Name: 'web', Tags: ['mesh'], Address: '10.40.0.2', Port: 8081 });
    await agent.registerService({ ID: 'db-1', Name: 'db', Tags: ['mesh'], Address: '10.40.1.1', Port: 5432 });
  });

  after(async () => {
    for (const c of running) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await Promise.allSettled([cluster?.stop(), agent?.stop()]);
  });

  const consulSource = (name: string, namespace: string): string => `apiVersion: vmregistry.io/v1alpha1
kind: VmRegistrySource
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  consul: {address: "${agent.address}", services: [web]}
  interval: 1h
  workloadEntry:
    ports: [{name: http}]
`;

  test('run serves probes and metrics, syncs, and exits 0 promptly on SIGTERM', async () => {
    const [metricsPort, probePort] = [await freePort(), await freePort()];
    await applyYaml(cluster, `apiVersion: v1\nkind: Namespace\nmetadata: {name: cli-run}\n---\n${consulSource('web', 'cli-run')}`);
    const cli = startCli([
      'run',
      '--kubeconfig',
      cluster.cp.kubeconfig,
      `--metrics-bind-address=127.0.0.1:${metricsPort}`,
      `--health-probe-bind-address=127.0.0.1:${probePort}`,
      '--log-level=info',
    ]);
    running.push(cli);

    const healthz = await eventually('/healthz', async () => {
      if (cli.child.exitCode !== null) throw new Error(`vmreg run exited ${cli.child.exitCode}: ${cli.stderr()}`);
      return (await get(`http://127.0.0.1:${probePort}/healthz`)).status === 200 ? true : undefined;
    });
    assert.equal(healthz, true);
    await eventually('/readyz 200 once the caches are synced', async () => ((await get(`http://127.0.0.1:${probePort}/readyz`)).status === 200 ? true : undefined));

    // The process really reconciles: the Consul instances become WorkloadEntries.
    const entries = await eventually('entries from Consul', async () => {
      const items: WorkloadEntry[] = await getEntries(cluster, 'cli-run');
      return items.length === 2 ? items : undefined;
    }, 30_000);
    assert.deepEqual(entries.map((e) => e.spec.address).sort(), ['10.40.0.1', '10.40.0.2']);

    const metrics = await eventually('reconcile counted in /metrics', async () => {
      const m = await get(`http://127.0.0.1:${metricsPort}/metrics`);
      return m.status === 200 && /^controller_runtime_reconcile_total\{[^}]*controller="vmregistrysource"[^}]*\} [1-9]/m.test(m.body) ? m.body : undefined;
    });
    assert.match(metrics, /^# TYPE controller_runtime_reconcile_total counter$/m);
    assert.match(metrics, /^# TYPE workqueue_depth gauge$/m);
    assert.match(metrics, /^workqueue_depth\{name="vmregistrysource"\} \d+$/m);
    assert.match(metrics, /^rest_client_requests_total\{/m);
    assert.equal((await get(`http://127.0.0.1:${probePort}/metrics`)).status, 404, 'metrics are not on the probe port');

    const t0 = Date.now();
    cli.child.kill('SIGTERM');
    const exit = await cli.exited;
    const took = Date.now() - t0;
    assert.equal(exit.signal, null);
    assert.equal(exit.code, 0, exit.stderr);
    assert.ok(took < 10_000, `exited ${took} ms after SIGTERM`);
    assert.match(exit.stderr, /"shutting down"/);
    assert.match(exit.stderr, /"stopped"/);
    await assert.rejects(get(`http://127.0.0.1:${probePort}/healthz`), 'the probe server is closed');
  });

  test('run against a control plane without the CRD exits 1 with an install hint', async () => {
    const bare = await LocalControlPlane.start({ controllerManager: false });
    try {
      const r = await runCli(['run', '--kubeconfig', bare.kubeconfig, '--metrics-bind-address=0', '--health-probe-bind-address=0'], {}, 60_000);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /vmregistrysources\.vmregistry\.io CRD is not installed/);
      assert.match(r.stderr, /kubectl apply -k config\/crd/);
    } finally {
      await bare.stop();
    }
  });

  test('preview prints a WorkloadEntry for each registered instance of the selected services', async () => {
    const file = join(tmp, 'web.yaml');
    await writeFile(file, consulSource('web', 'shop'));
    const r = await runCli(['preview', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^# shop\/web: 2 WorkloadEntries from 2 endpoints/m);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as WorkloadEntry | null).filter((d): d is WorkloadEntry => d !== null);
    assert.equal(docs.length, 2);
    const byAddress = new Map(docs.map((d) => [d.spec.address, d]));
    assert.deepEqual([...byAddress.keys()].sort(), ['10.40.0.1', '10.40.0.2'], 'db is not selected');
    for (const d of docs) {
      assert.equal(d.apiVersion, 'networking.istio.io/v1');
      assert.equal(d.kind, 'WorkloadEntry');
      assert.equal(d.metadata.namespace, 'shop');
      assert.equal(d.metadata.labels?.['vmregistry.io/source'], 'web');
      assert.equal(d.metadata.labels?.['app'], 'web');
      assert.equal(d.metadata.ownerReferences, undefined);
    }
    assert.deepEqual(byAddress.get('10.40.0.1')?.spec.ports, { http: 8080 });
    assert.deepEqual(byAddress.get('10.40.0.2')?.spec.ports, { http: 8081 });
    assert.equal(byAddress.get('10.40.0.1')?.metadata.annotations?.['vmregistry.io/endpoint'], `${agent.node}/web-1`);
  });

  test('preview prints the ServiceEntry of each service when spec.serviceEntries is set', async () => {
    const file = join(tmp, 'web-se.yaml');
    await writeFile(file, `${consulSource('web', 'shop')}  serviceEntries: {exportTo: ["."]}\n`);
    const r = await runCli(['preview', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^# shop\/web: 1 ServiceEntries for 2 WorkloadEntries/m);
    const ses = parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as { kind: string; metadata: { name: string; ownerReferences?: unknown }; spec: Record<string, unknown> } | null)
      .filter((d) => d?.kind === 'ServiceEntry');
    assert.equal(ses.length, 1);
    assert.deepEqual(ses[0]?.spec, {
      hosts: ['web.service.consul'],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }],
      workloadSelector: { labels: { app: 'web', 'vmregistry.io/source': 'web' } },
      exportTo: ['.'],
    });
    assert.equal(ses[0]?.metadata.ownerReferences, undefined);
  });

  test('preview of an invalid source exits 2 listing each field error', async () => {
    const file = join(tmp, 'bad.yaml');
    await writeFile(
      file,
      `apiVersion: vmregistry.io/v1alpha1
kind: VmRegistrySource
metadata: {name: bad, namespace: shop}
spec:
  consul: {address: "${agent.address}"}
  policy: sometimes
  workloadEntry:
    ports: [{name: http, number: 70000}]
`,
    );
    const r = await runCli(['preview', '-f', file]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /invalid VmRegistrySource/);
    assert.match(r.stderr, /^ {2}spec\.policy: Unsupported value: "sometimes"/m);
    assert.match(r.stderr, /^ {2}spec\.workloadEntry\.ports\[0\]\.number: .*65535/m);
  });

  test('preview of a source naming two providers exits 2 with the cross-field rule', async () => {
    const file = join(tmp, 'two.yaml');
    await writeFile(
      file,
      `apiVersion: vmregistry.io/v1alpha1
kind: VmRegistrySource
metadata: {name: two, namespace: shop}
spec:
  consul: {address: "${agent.address}"}
  ec2: {region: eu-west-1}
`,
    );
    const r = await runCli(['preview', '-f', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^ {2}spec: exactly one provider must be set/m);
  });
});
