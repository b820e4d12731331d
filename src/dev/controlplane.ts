/**
 * A real local Kubernetes control plane on loopback, the way controller-runtime's
 * envtest runs one: etcd, kube-apiserver (RBAC, client certificates, service-account
 * signing keys) and, for ownerReference garbage collection, kube-controller-manager
 * with only the garbage-collector and namespace controllers.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ensureKubeBinaries, type KubeBinaries } from './kube-binaries.ts';
import { makeCa, makeLeaf, makeServiceAccountKey, type CertPair } from './pki.ts';
import { forgetOnExit, freePorts, ManagedProcess, removeOnExit } from './process.ts';


export interface ControlPlaneOptions {
  /** Start kube-controller-manager (garbage collection). Default true. */
  readonly controllerManager?: boolean;
  readonly log?: (line: string) => void;
  /** Keep the working directory after stop (for debugging). */
  readonly keepDir?: boolean;
}

export class LocalControlPlane {
  readonly dir: string;
  readonly bins: KubeBinaries;
  readonly server: string;
  readonly kubeconfig: string;
  readonly etcdUrl: string;
  private readonly ca: CertPair;
  private readonly admin: CertPair;
  private readonly apiserverArgs: string[];
  private etcd: ManagedProcess;
  private apiserver: ManagedProcess;
  private controllerManager: ManagedProcess | undefined;
  private readonly keepDir: boolean;

  private constructor(init: {
    dir: string;
    bins: KubeBinaries;
    server: string;
    kubeconfig: string;
    ca: CertPair;
    admin: CertPair;
    apiserverArgs: string[];
    etcd: ManagedProcess;
    apiserver: ManagedProcess;
    etcdUrl: string;
    keepDir: boolean;
  }) {
    this.etcdUrl = init.etcdUrl;
    this.dir = init.dir;
    this.bins = init.bins;
    this.server = init.server;
    this.kubeconfig = init.kubeconfig;
    this.ca = init.ca;
    this.admin = init.admin;
    this.apiserverArgs = init.apiserverArgs;
    this.etcd = init.etcd;
    this.apiserver = init.apiserver;
    this.keepDir = init.keepDir;
  }

  static async start(options: ControlPlaneOptions = {}): Promise<LocalControlPlane> {
    const log = options.log ?? (() => {});
    const bins = await ensureKubeBinaries(log);
    const dir = await mkdtemp(join(tmpdir(), 'vmreg-cp-'));
    let etcdProc: ManagedProcess | undefined;
    let apiserverProc: ManagedProcess | undefined;
    if (!options.keepDir) removeOnExit(dir);
    try {
      const ca = await makeCa(dir, 'ca');
      const [etcdPort, peerPort, apiPort] = (await freePorts(3)) as [number, number, number];
      const serving = await makeLeaf(dir, ca, 'apiserver', '/CN=kube-apiserver', 'server', [
        'IP:127.0.0.1',
        'DNS:localhost',
        'DNS:kubernetes.default.svc',
      ]);
      const admin = await makeLeaf(dir, ca, 'admin', '/CN=admin/O=system:masters', 'client');
      const saKey = await makeServiceAccountKey(dir);

      etcdProc = ManagedProcess.start('etcd', bins.etcd, [
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
      ], join(dir, 'etcd.log'));
      const etcd = etcdProc;
      await etcd.waitUntil(async () => (await fetch(`http://127.0.0.1:${etcdPort}/health`)).ok, 30_000, 'etcd /health');

      const apiserverArgs = [
        `--etcd-servers=http://127.0.0.1:${etcdPort}`,
        `--secure-port=${apiPort}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        '--endpoint-reconciler-type=none',
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        '--disable-admission-plugins=ServiceAccount',
        '--authorization-mode=RBAC',
        `--cert-dir=${dir}`,
        `--tls-cert-file=${serving.cert}`,
        `--tls-private-key-file=${serving.key}`,
        `--client-ca-file=${ca.cert}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${saKey}`,
        `--service-account-signing-key-file=${saKey}`,
        '--api-audiences=https://kubernetes.default.svc.cluster.local',
      ];
      apiserverProc = ManagedProcess.start('kube-apiserver', bins.apiserver, apiserverArgs, join(dir, 'kube-apiserver.log'));
      const apiserver = apiserverProc;
      const server = `https://127.0.0.1:${apiPort}`;
      const kubeconfig = join(dir, 'kubeconfig');
      await writeFile(kubeconfig, await kubeconfigYaml(server, ca.cert, admin, 'admin'));
      const cp = new LocalControlPlane({ dir, bins, server, kubeconfig, ca, admin, apiserverArgs, etcd, apiserver, etcdUrl: `http://127.0.0.1:${etcdPort}`, keepDir: options.keepDir ?? false });
      await cp.waitReady();
      if (options.controllerManager ?? true) await cp.startControllerManager();
      return cp;
    } catch (e) {
      await Promise.all([etcdProc?.stop(), apiserverProc?.stop()]);
      if (!options.keepDir) {
        await rm(dir, { recursive: true, force: true });
        forgetOnExit(dir);
      }
      throw e;
    }
  }

  private async waitReady(): Promise<void> {
    await this.apiserver.waitUntil(async () => (await this.rawGet('/readyz')).status === 200, 60_000, 'kube-apiserver /readyz');
    // The default namespace is created by a bootstrap controller shortly after readiness.
    await this.apiserver.waitUntil(async () => (await this.rawGet('/api/v1/namespaces/default')).status === 200, 30_000, 'namespace default');
  }

  /** A GET with the admin's client certificate. */
  async rawGet(path: string): Promise<{ status: number; body: string }> {
    const [ca, cert, key] = await Promise.all([readFile(this.ca.cert), readFile(this.admin.cert), readFile(this.admin.key)]);
    return new Promise((resolvePromise, reject) => {
      const req = request(`${this.server}${path}`, { ca, cert, key, method: 'GET', timeout: 5000 }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });
  }

  private async startControllerManager(): Promise<void> {
    const kcm = ManagedProcess.start('kube-controller-manager', this.bins.controllerManager, [
      `--kubeconfig=${this.kubeconfig}`,
      '--controllers=garbagecollector,namespace',
      '--leader-elect=false',
      '--secure-port=0',
    ], join(this.dir, 'kube-controller-manager.log'));
    this.controllerManager = kcm;
    // Running for a moment means flags and kubeconfig were accepted.
    const started = Date.now();
    await kcm.waitUntil(async () => Date.now() - started > 1000, 10_000, 'start-up');
  }

  /** Restarts kube-controller-manager, e.g. after CRDs were installed, so its garbage collector knows them at once. */
  async restartControllerManager(): Promise<void> {
    await this.controllerManager?.stop();
    await this.startControllerManager();
  }

  /** Stops kube-apiserver (etcd keeps the data) to test clients across an outage. */
  async stopApiserver(): Promise<void> {
    await this.apiserver.stop();
  }

  async startApiserver(): Promise<void> {
    if (this.apiserver.running) return;
    this.apiserver = ManagedProcess.start('kube-apiserver', this.bins.apiserver, this.apiserverArgs, join(this.dir, 'kube-apiserver.log'));
    await this.waitReady();
  }

  /** Writes a kubeconfig for another user (client certificate with CN=user, O=groups). */
  async userKubeconfig(user: string, groups: string[] = []): Promise<string> {
    const safe = user.replace(/[^a-zA-Z0-9-]/g, '-');
    const subject = `/CN=${user}${groups.map((g) => `/O=${g}`).join('')}`;
    const pair = await makeLeaf(this.dir, this.ca, `user-${safe}`, subject, 'client');
    const path = join(this.dir, `kubeconfig-${safe}`);
    await writeFile(path, await kubeconfigYaml(this.server, this.ca.cert, pair, safe));
    return path;
  }

  /** Writes a kubeconfig that authenticates with a bearer token (e.g. a ServiceAccount token). */
  async tokenKubeconfig(name: string, token: string): Promise<string> {
    const path = join(this.dir, `kubeconfig-token-${name}`);
    const ca = (await readFile(this.ca.cert)).toString('base64');
    await writeFile(
      path,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'local', cluster: { server: this.server, 'certificate-authority-data': ca } }],
        users: [{ name, user: { token } }],
        contexts: [{ name: 'local', context: { cluster: 'local', user: name } }],
        'current-context': 'local',
      }),
    );
    return path;
  }

  /** Runs kubectl against this control plane as the admin (or with another kubeconfig). */
  async kubectl(args: string[], options: { input?: string; kubeconfig?: string } = {}): Promise<string> {
    return runKubectl(this.bins.kubectl, options.kubeconfig ?? this.kubeconfig, args, options.input);
  }

  async stop(): Promise<void> {
    await this.controllerManager?.stop();
    await this.apiserver.stop();
    await this.etcd.stop();
    if (!this.keepDir) {
      await rm(this.dir, { recursive: true, force: true });
      forgetOnExit(this.dir);
    }
  }

  /**
   * Writes a key straight to etcd and compacts its history up to that revision, so a
   * watch resuming from an older resourceVersion gets 410 Gone (for tests of relisting).
   */
  async compactEtcd(): Promise<number> {
    const post = async (path: string, body: unknown): Promise<{ header?: { revision?: string } }> => {
      const res = await fetch(`${this.etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as { header?: { revision?: string } };
    };
    const put = await post('/v3/kv/put', { key: Buffer.from('/vmreg-test/compact').toString('base64'), value: Buffer.from(String(Date.now())).toString('base64') });
    const revision = Number(put.header?.revision ?? 0);
    await post('/v3/kv/compaction', { revision: String(revision), physical: true });
    return revision;
  }
}

export class KubectlError extends Error {
  override readonly name = 'KubectlError';
  readonly stderr: string;
  constructor(message: string, stderr: string) {
    super(message);
    this.stderr = stderr;
  }
}

export function runKubectl(bin: string, kubeconfig: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(bin, [`--kubeconfig=${kubeconfig}`, ...args], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new KubectlError(`kubectl ${args.join(' ')}: ${stderr.trim() || err.message}`, stderr));
      else resolvePromise(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function kubeconfigYaml(server: string, caFile: string, user: CertPair, userName: string): Promise<string> {
  const b64 = async (f: string): Promise<string> => (await readFile(f)).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server, 'certificate-authority-data': await b64(caFile) } }],
    users: [{ name: userName, user: { 'client-certificate-data': await b64(user.cert), 'client-key-data': await b64(user.key) } }],
    contexts: [{ name: 'local', context: { cluster: 'local', user: userName, namespace: 'default' } }],
    'current-context': 'local',
  });
}

