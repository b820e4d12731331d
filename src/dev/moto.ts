/**
 * A local EC2 API for tests and the demo: moto's server (PyPI `moto[server]`, pinned in
 * tools/moto/requirements.txt), installed once into a Python virtual environment in the
 * cache, keyed by the requirements file and the Python version. Every server listens on
 * 127.0.0.1 and a free port; state lives in memory until reset() or stop().
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { EC2Client, RunInstancesCommand, type _InstanceType } from '@aws-sdk/client-ec2';
import { cacheRoot, toolsDir } from './paths.ts';
import { ManagedProcess, freePort } from './process.ts';

const execFileP = promisify(execFile);

export class MotoSetupError extends Error {
  override readonly name = 'MotoSetupError';
}

type Log = (line: string) => void;
const stderrLog: Log = (l) => process.stderr.write(l + '\n');

/** The Python that creates the environment: $VMREG_PYTHON or python3 (3.10 or newer, moto's minimum). */
async function pythonVersion(python: string): Promise<string> {
  try {
    const { stdout } = await execFileP(python, ['-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])']);
    const version = stdout.trim();
    const [major = 0, minor = 0] = version.split('.').map(Number);
    if (major < 3 || (major === 3 && minor < 10)) throw new MotoSetupError(`moto needs Python 3.10 or newer; ${python} is ${version}`);
    return version;
  } catch (e) {
    if (e instanceof MotoSetupError) throw e;
    throw new MotoSetupError(`Python 3.10+ is required for the local EC2 server; set VMREG_PYTHON or put python3 on PATH`, { cause: e });
  }
}

/** Serialises installs across processes (parallel test files) with an atomic mkdir. */
async function withLock<T>(lockDir: string, fn: () => Promise<T>, timeoutMs = 600_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(lockDir);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (Date.now() > deadline) throw new MotoSetupError(`timed out waiting for ${lockDir}; remove it if no install is running`);
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

/** Returns the path of moto_server, creating the virtual environment on first use. */
export async function ensureMoto(log: Log = stderrLog): Promise<string> {
  const python = process.env['VMREG_PYTHON'] ?? 'python3';
  const requirements = join(toolsDir('moto'), 'requirements.txt');
  const hash = createHash('sha256');
  hash.update(await readFile(requirements));
  hash.update(await pythonVersion(python));
  const venv = join(cacheRoot(), `moto-${hash.digest('hex').slice(0, 12)}`);
  const server = join(venv, 'bin', 'moto_server');
  // The marker is written last, so a half-finished install is never taken for a good one.
  const marker = join(venv, '.installed');
  if (existsSync(marker)) return server;

  await mkdir(cacheRoot(), { recursive: true });
  return withLock(`${venv}.lock`, async () => {
    if (existsSync(marker)) return server;
    log(`Installing moto into ${venv} (once; takes a minute or two).`);
    await rm(venv, { recursive: true, force: true });
    try {
      await execFileP(python, ['-m', 'venv', venv]);
      const pip = join(venv, 'bin', 'pip');
      await execFileP(pip, ['install', '--quiet', '--disable-pip-version-check', '-r', requirements], { maxBuffer: 16 << 20 });
    } catch (e) {
      const err = e as { stderr?: string; message?: string };
      throw new MotoSetupError(`installing moto failed: ${(err.stderr ?? err.message ?? '').slice(-3000)}`, { cause: e });
    }
    await writeFile(marker, new Date().toISOString() + '\n');
    return server;
  });
}

export interface MotoOptions {
  /** Port to listen on; default: a free one. */
  readonly port?: number;
  /** Extra environment for the server, e.g. {INITIAL_NO_AUTH_ACTION_COUNT: '5'}. */
  readonly env?: Readonly<Record<string, string>>;
  readonly log?: Log;
  /** Readiness timeout (ms). */
  readonly startTimeoutMs?: number;
}

/** A running moto server. Credentials: any access key works unless IAM auth is on (enableAuth). */
export class MotoServer {
  readonly port: number;
  /** http://127.0.0.1:<port>: the endpoint for every AWS client of the tests. */
  readonly endpoint: string;
  private readonly bin: string;
  private readonly options: MotoOptions;
  private proc: ManagedProcess | undefined;

  private constructor(bin: string, port: number, options: MotoOptions) {
    this.bin = bin;
    this.port = port;
    this.endpoint = `http://127.0.0.1:${port}`;
    this.options = options;
  }

  static async start(options: MotoOptions = {}): Promise<MotoServer> {
    const bin = await ensureMoto(options.log);
    const server = new MotoServer(bin, options.port ?? (await freePort()), options);
    await server.launch();
    return server;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  private async launch(): Promise<void> {
    const logDir = join(cacheRoot(), 'logs');
    await mkdir(logDir, { recursive: true });
    const env = { ...process.env, ...this.options.env };
    this.proc = ManagedProcess.start('moto_server', this.bin, ['-H', '127.0.0.1', '-p', String(this.port)], join(logDir, `moto-${this.port}.log`), env);
    // /moto-api/data.json answers only once the Flask app serves requests.
    await this.proc.waitUntil(
      async () => (await fetch(`${this.endpoint}/moto-api/data.json`, { signal: AbortSignal.timeout(1000) })).ok,
      this.options.startTimeoutMs ?? 30_000,
      `listening on ${this.endpoint}`,
    );
  }

  /** Forgets every resource (instances, VPCs, IAM users) of every region. */
  async reset(): Promise<void> {
    await this.post('/moto-api/reset', undefined);
  }

  /**
   * Turns IAM authentication on: after `freeRequests` more requests, every request must be
   * signed with an access key of an IAM user created in this server and allowed by its
   * policies. Unknown keys are rejected as real AWS does. reset() does not turn it off.
   */
  async enableAuth(freeRequests = 0): Promise<void> {
    // moto reads the body as a bare number.
    await this.post('/moto-api/reset-auth', String(freeRequests));
  }

  /** Turns IAM authentication off again (any credentials accepted). */
  async disableAuth(): Promise<void> {
    await this.post('/moto-api/reset-auth', 'inf');
  }

  /** Stops the server (state is lost). Clients then get "connection refused". */
  async stop(): Promise<void> {
    await this.proc?.stop();
  }

  /** Starts again on the same port, empty. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  private async post(path: string, body: string | undefined): Promise<void> {
    const res = await fetch(`${this.endpoint}${path}`, { method: 'POST', body, signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new MotoSetupError(`POST ${path} answered ${res.status}: ${(await res.text()).slice(0, 500)}`);
  }
}

/** Starts a moto server: the entry point for tests and the demo. */
export function startMoto(options: MotoOptions = {}): Promise<MotoServer> {
  return MotoServer.start(options);
}

/** Credentials any moto server accepts while IAM auth is off. */
export const MOTO_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' } as const;

/** An EC2 client for seeding a moto server (the operator under test builds its own). */
export function motoEc2Client(server: MotoServer, region: string, credentials: { accessKeyId: string; secretAccessKey: string } = MOTO_CREDENTIALS): EC2Client {
  return new EC2Client({ region, endpoint: server.endpoint, credentials, maxAttempts: 1 });
}

export interface LaunchOptions {
  readonly count: number;
  readonly tags?: Readonly<Record<string, string>>;
  readonly instanceType?: string;
  readonly subnetId?: string;
}

/**
 * Launches instances in one RunInstances call, i.e. one reservation (moto pages
 * DescribeInstances by reservation: launch in several calls to get several pages).
 * moto answers "pending" here but describes them as running at once.
 */
export async function launchInstances(client: EC2Client, options: LaunchOptions): Promise<string[]> {
  const tags = Object.entries(options.tags ?? {}).map(([Key, Value]) => ({ Key, Value }));
  const out = await client.send(
    new RunInstancesCommand({
      ImageId: 'ami-12345678',
      MinCount: options.count,
      MaxCount: options.count,
      InstanceType: (options.instanceType ?? 't3.micro') as _InstanceType,
      ...(options.subnetId !== undefined ? { SubnetId: options.subnetId } : {}),
      ...(tags.length > 0 ? { TagSpecifications: [{ ResourceType: 'instance', Tags: tags }] } : {}),
    }),
  );
  return (out.Instances ?? []).map((i) => i.InstanceId ?? '').filter((id) => id !== '');
}

/**
 * Creates an IAM user with an inline policy allowing `actions` and returns an access key
 * for it, through moto's IAM Query API. Call it while auth is off (or within the free
 * requests of enableAuth): it sends three requests that moto does not verify then.
 */
export async function createIamUser(server: MotoServer, userName: string, actions: readonly string[] = ['ec2:Describe*']): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const call = async (params: Record<string, string>): Promise<string> => {
    const res = await fetch(server.endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
        // moto routes by the credential scope; the signature is not checked before auth is on.
        authorization: `AWS4-HMAC-SHA256 Credential=${MOTO_CREDENTIALS.accessKeyId}/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0`,
      },
      body: new URLSearchParams({ Version: '2010-05-08', ...params }).toString(),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new MotoSetupError(`IAM ${params['Action'] ?? ''} answered ${res.status}: ${text.slice(0, 500)}`);
    return text;
  };
  await call({ Action: 'CreateUser', UserName: userName });
  const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: '*' }] });
  await call({ Action: 'PutUserPolicy', UserName: userName, PolicyName: 'allow', PolicyDocument: policy });
  const xml = await call({ Action: 'CreateAccessKey', UserName: userName });
  const accessKeyId = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(xml)?.[1];
  const secretAccessKey = /<SecretAccessKey>([^<]+)<\/SecretAccessKey>/.exec(xml)?.[1];
  if (accessKeyId === undefined || secretAccessKey === undefined) throw new MotoSetupError('IAM CreateAccessKey answer has no key');
  return { accessKeyId, secretAccessKey };
}
