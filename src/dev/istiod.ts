/**
 * istiod (pilot-discovery) for the tests and the demo: built from tools/istio into the
 * cache outside the repo, run outside any cluster against a local control plane with
 * loopback ports, with Istio's full CRD set from the same pinned istio.io/istio module
 * (manifests/charts/base/files/crd-all.gen.yaml, never hand-written). Its debug
 * endpoints show what it computed from WorkloadEntries and ServiceEntries.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensureGoTools } from './gobuild.ts';
import { forgetOnExit, freePorts, ManagedProcess, removeOnExit } from './process.ts';
import { VERSIONS } from './versions.ts';

const execFileP = promisify(execFile);

export class IstiodError extends Error {
  override readonly name = 'IstiodError';
}

export async function ensurePilotDiscovery(log?: (line: string) => void): Promise<string> {
  const dir = await ensureGoTools(
    {
      module: 'istio',
      label: VERSIONS.istio.slice(-12),
      binaries: { 'pilot-discovery': 'istio.io/istio/pilot/cmd/pilot-discovery' },
    },
    log,
  );
  return join(dir, 'pilot-discovery');
}

/** The module cache directory of the pinned istio.io/istio (downloaded once by Go). */
async function istioModuleDir(): Promise<string> {
  try {
    const { stdout } = await execFileP('go', ['mod', 'download', '-json', `istio.io/istio@${VERSIONS.istio}`], { cwd: '/', maxBuffer: 16 * 1024 * 1024 });
    return (JSON.parse(stdout) as { Dir: string }).Dir;
  } catch (e) {
    throw new IstiodError(`cannot download istio.io/istio@${VERSIONS.istio} with Go: ${(e as Error).message}`, { cause: e });
  }
}

/** Istio's complete CRD set, as its base chart installs it. */
export async function istioAllCrdsYaml(): Promise<string> {
  return readFile(join(await istioModuleDir(), 'manifests', 'charts', 'base', 'files', 'crd-all.gen.yaml'), 'utf8');
}

/** What a test needs from a cluster: kubectl and the admin kubeconfig. */
export interface IstiodCluster {
  readonly cp: { readonly kubeconfig: string };
  kubectl(args: string[], options?: { input?: string }): Promise<string>;
}

export interface IstiodOptions {
  /** Mesh networks (meshNetworks), e.g. to see gateways per network. Default: none. */
  readonly networksYaml?: string;
  readonly log?: (line: string) => void;
}

/** One endpoint as /debug/endpointz reports it (model.IstioEndpoint, the fields tests read). */
export interface IstiodEndpoint {
  readonly Labels?: Record<string, string>;
  readonly Addresses?: string[];
  readonly ServicePortName?: string;
  readonly ServiceAccount?: string;
  readonly Network?: string;
  readonly Locality?: { readonly Label?: string; readonly ClusterID?: string };
  readonly EndpointPort?: number;
  readonly LbWeight?: number;
  readonly TLSMode?: string;
  readonly Namespace?: string;
  readonly WorkloadName?: string;
  readonly HealthStatus?: number;
}

/** /debug/endpointz: host → namespace → shards (registry/cluster → endpoints). */
export type Endpointz = Record<string, Record<string, { Shards?: Record<string, IstiodEndpoint[] | null> }>>;

export class Istiod {
  readonly httpUrl: string;
  readonly grpcAddress: string;
  private readonly proc: ManagedProcess;
  private readonly dir: string;

  private constructor(proc: ManagedProcess, dir: string, httpUrl: string, grpcAddress: string) {
    this.proc = proc;
    this.dir = dir;
    this.httpUrl = httpUrl;
    this.grpcAddress = grpcAddress;
  }

  /** Installs Istio's CRDs and the istio-system namespace, starts pilot-discovery and waits for /ready. */
  static async start(cluster: IstiodCluster, options: IstiodOptions = {}): Promise<Istiod> {
    const log = options.log ?? (() => {});
    const [bin, crds] = await Promise.all([ensurePilotDiscovery(log), istioAllCrdsYaml()]);
    await cluster.kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], { input: crds });
    await cluster.kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
    await cluster.kubectl(['apply', '-f', '-'], { input: 'apiVersion: v1\nkind: Namespace\nmetadata: {name: istio-system}\n' });

    const dir = await mkdtemp(join(tmpdir(), 'vmreg-istiod-'));
    removeOnExit(dir);
    const [http, grpc, secureGrpc, https, monitoring, ctrlz] = (await freePorts(6)) as [number, number, number, number, number, number];
    const ports = { http, grpc, secureGrpc, https, monitoring, ctrlz };
    const mesh = join(dir, 'mesh.yaml');
    const networks = join(dir, 'networks.yaml');
    await writeFile(mesh, `trustDomain: cluster.local\ndefaultConfig:\n  discoveryAddress: 127.0.0.1:${ports.grpc}\n`);
    await writeFile(networks, options.networksYaml ?? 'networks: {}\n');
    const args = [
      'discovery',
      `--kubeconfig=${cluster.cp.kubeconfig}`,
      `--meshConfig=${mesh}`,
      `--networksConfig=${networks}`,
      `--httpAddr=127.0.0.1:${ports.http}`,
      `--grpcAddr=127.0.0.1:${ports.grpc}`,
      `--secureGRPCAddr=127.0.0.1:${ports.secureGrpc}`,
      `--httpsAddr=127.0.0.1:${ports.https}`,
      `--monitoringAddr=127.0.0.1:${ports.monitoring}`,
      `--ctrlz_port=${ports.ctrlz}`,
      '--ctrlz_address=127.0.0.1',
    ];
    const env = { ...process.env, POD_NAMESPACE: 'istio-system', POD_NAME: 'istiod-local', REVISION: 'default', HOME: dir };
    // pilot-discovery writes a few files relative to its working directory: run it in its own.
    const proc = ManagedProcess.start('pilot-discovery', '/bin/sh', ['-c', 'cd "$0" && exec "$@"', dir, bin, ...args], join(dir, 'istiod.log'), env);
    const istiod = new Istiod(proc, dir, `http://127.0.0.1:${ports.http}`, `127.0.0.1:${ports.grpc}`);
    try {
      await proc.waitUntil(async () => (await fetch(`${istiod.httpUrl}/ready`)).ok, 120_000, '/ready');
    } catch (e) {
      await istiod.stop();
      throw e;
    }
    return istiod;
  }

  get logFile(): string {
    return this.proc.logFile;
  }

  async debug<T>(path: string): Promise<T> {
    const res = await fetch(`${this.httpUrl}/debug/${path}`);
    if (!res.ok) throw new IstiodError(`istiod /debug/${path}: HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
    return (await res.json()) as T;
  }

  endpointz(): Promise<Endpointz> {
    return this.debug<Endpointz>('endpointz');
  }

  /** Endpoints of one host in one namespace, over every shard. */
  async endpointsOf(host: string, namespace: string): Promise<IstiodEndpoint[]> {
    const shards = (await this.endpointz())[host]?.[namespace]?.Shards ?? {};
    return Object.values(shards).flatMap((s) => s ?? []);
  }

  /** The services istiod knows (/debug/registryz). */
  registryz(): Promise<{ hostname: string; namespace?: string; Attributes?: { Namespace?: string }; ports?: { name: string; port: number; protocol: string }[] }[]> {
    return this.debug('registryz');
  }

  async stop(): Promise<void> {
    await this.proc.stop();
    await rm(this.dir, { recursive: true, force: true });
    forgetOnExit(this.dir);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // `node src/dev/istiod.ts`: build (or find) pilot-discovery and print where it is.
  const started = Date.now();
  const bin = await ensurePilotDiscovery();
  process.stdout.write(`${bin} ready in ${Math.round((Date.now() - started) / 1000)}s\n`);
}
