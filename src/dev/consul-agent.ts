/**
 * A real Consul dev agent for tests and the local demo, built from tools/consul.
 * Every agent listens on free loopback ports only (no DNS, gRPC or WAN listeners), so
 * several can run side by side; restart() brings one back on the same ports.
 * With `tls: true` it also serves the HTTP API over HTTPS, with a certificate for
 * 127.0.0.1 and localhost signed by a CA of its own (see httpsAddress and caPem).
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureGoTools } from './gobuild.ts';
import { makeCa, makeLeaf } from './pki.ts';
import { freePorts, ManagedProcess } from './process.ts';
import { VERSIONS } from './versions.ts';

export const CONSUL_VERSION = VERSIONS.consul;

export class ConsulAgentError extends Error {
  override readonly name = 'ConsulAgentError';
}

/** Builds the consul binary once (cached outside the repo) and returns its path. */
export async function ensureConsulBinary(log?: (line: string) => void): Promise<string> {
  const dir = await ensureGoTools(
    {
      module: 'consul',
      label: CONSUL_VERSION,
      ldflags: `-X github.com/hashicorp/consul/version.GitCommit=${VERSIONS.consulCommit.slice(0, 8)}`,
      binaries: { consul: 'github.com/hashicorp/consul' },
    },
    log,
  );
  return join(dir, 'consul');
}

export interface ConsulAgentOptions {
  /** Node name; default a unique one. */
  readonly node?: string;
  /** Enable ACLs with default-deny and a generated management token. */
  readonly acl?: boolean;
  /**
   * Also serve the HTTP API over HTTPS (client certificates not required), with a server
   * certificate for 127.0.0.1 and localhost from a CA made for this agent. The plain HTTP
   * port stays open, so api() and the helpers keep working.
   */
  readonly tls?: boolean;
  readonly startTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

/** A service definition in the agent API's form (PUT /v1/agent/service/register). */
export interface AgentServiceDefinition {
  readonly ID?: string;
  readonly Name: string;
  readonly Tags?: readonly string[];
  readonly Address?: string;
  readonly Port?: number;
  readonly Meta?: Readonly<Record<string, string>>;
  /** TTL checks, e.g. [{CheckID: 'web-1-ttl', Name: 'ttl', TTL: '10m', Status: 'passing'}]. */
  readonly Checks?: readonly Readonly<Record<string, unknown>>[];
}

/** A service in the catalog API's form: its name is `Service`, not `Name`. */
export interface CatalogServiceDefinition {
  readonly ID?: string;
  readonly Service: string;
  readonly Tags?: readonly string[];
  readonly Address?: string;
  readonly Port?: number;
  readonly Meta?: Readonly<Record<string, string>>;
}

/** A node and service registered directly in the catalog (PUT /v1/catalog/register). */
export interface CatalogRegistration {
  readonly Node: string;
  readonly Address: string;
  readonly NodeMeta?: Readonly<Record<string, string>>;
  readonly Service?: CatalogServiceDefinition;
  readonly Checks?: readonly Readonly<Record<string, unknown>>[];
}

export type TtlStatus = 'pass' | 'warn' | 'fail';

interface Ports {
  readonly http: number;
  readonly serfLan: number;
  readonly server: number;
  /** Only with `tls: true`. */
  readonly https?: number;
}

async function allocatePorts(tls: boolean): Promise<Ports> {
  const [http, serfLan, server, https] = (await freePorts(4)) as [number, number, number, number];
  return tls ? { http, serfLan, server, https } : { http, serfLan, server };
}

/**
 * Makes a CA and a server certificate for 127.0.0.1 and localhost in dir, and an HCL file
 * (tls.hcl) that serves the HTTP API over HTTPS on httpsPort with them; returns the CA's PEM.
 * TLS applies to the HTTPS listener only: internal RPC stays as in any dev agent.
 */
async function writeTlsConfig(dir: string, httpsPort: number): Promise<string> {
  const ca = await makeCa(dir, 'consul-ca');
  const server = await makeLeaf(dir, ca, 'consul-server', '/CN=server.dc1.consul', 'server', [
    'IP:127.0.0.1',
    'DNS:localhost',
    'DNS:server.dc1.consul',
  ]);
  const hcl = [
    'ports {',
    `  https = ${httpsPort}`,
    '}',
    'tls {',
    '  https {',
    `    ca_file = ${JSON.stringify(ca.cert)}`,
    `    cert_file = ${JSON.stringify(server.cert)}`,
    `    key_file = ${JSON.stringify(server.key)}`,
    '    verify_incoming = false',
    '  }',
    '}',
    '',
  ].join('\n');
  await writeFile(join(dir, 'tls.hcl'), hcl, { mode: 0o600 });
  return readFile(ca.cert, 'utf8');
}

export class ConsulAgent {
  readonly node: string;
  readonly ports: Ports;
  /** Management token when ACLs are enabled. */
  readonly managementToken: string | undefined;
  readonly datacenter = 'dc1';
  /** PEM of the CA that signed the HTTPS certificate (only with `tls: true`). */
  readonly caPem: string | undefined;
  private readonly binary: string;
  private readonly workDir: string;
  private readonly startTimeoutMs: number;
  private proc: ManagedProcess | undefined;
  private starts = 0;

  private constructor(
    binary: string,
    workDir: string,
    node: string,
    ports: Ports,
    token: string | undefined,
    timeoutMs: number,
    caPem: string | undefined,
  ) {
    this.binary = binary;
    this.caPem = caPem;
    this.workDir = workDir;
    this.node = node;
    this.ports = ports;
    this.managementToken = token;
    this.startTimeoutMs = timeoutMs;
  }

  /** Builds consul if needed, then starts a dev agent and waits until it has a leader (and its ACLs are ready). */
  static async start(options: ConsulAgentOptions = {}): Promise<ConsulAgent> {
    const binary = await ensureConsulBinary(options.log);
    const workDir = await mkdtemp(join(tmpdir(), 'vmreg-consul-'));
    const node = options.node ?? `vmreg-${randomUUID().slice(0, 8)}`;
    const token = options.acl ? randomUUID() : undefined;
    const ports = await allocatePorts(options.tls ?? false);
    let caPem: string | undefined;
    if (ports.https !== undefined) {
      try {
        caPem = await writeTlsConfig(workDir, ports.https);
      } catch (e) {
        await rm(workDir, { recursive: true, force: true });
        throw e;
      }
    }
    const agent = new ConsulAgent(binary, workDir, node, ports, token, options.startTimeoutMs ?? 60_000, caPem);
    if (token !== undefined) {
      // The agent token lets the agent sync its own node; the tests use the management token.
      const hcl = `acl {\n  enabled = true\n  default_policy = "deny"\n  enable_token_persistence = false\n  tokens {\n    initial_management = "${token}"\n    agent = "${token}"\n  }\n}\n`;
      await writeFile(join(workDir, 'acl.hcl'), hcl, { mode: 0o600 });
    }
    try {
      await agent.launch();
    } catch (e) {
      await agent.stop();
      throw e;
    }
    return agent;
  }

  /** Base URL of the HTTP API. */
  get address(): string {
    return `http://127.0.0.1:${this.ports.http}`;
  }

  /** Base URL of the HTTPS API (only with `tls: true`); its certificate names 127.0.0.1 and localhost. */
  get httpsAddress(): string {
    if (this.ports.https === undefined) throw new ConsulAgentError('this agent was started without tls: true');
    return `https://127.0.0.1:${this.ports.https}`;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  get logFile(): string | undefined {
    return this.proc?.logFile;
  }

  private async launch(): Promise<void> {
    this.starts += 1;
    const args = [
      'agent',
      '-dev',
      '-bind=127.0.0.1',
      '-client=127.0.0.1',
      `-http-port=${this.ports.http}`,
      '-dns-port=-1',
      '-grpc-port=-1',
      '-grpc-tls-port=-1',
      `-serf-lan-port=${this.ports.serfLan}`,
      '-serf-wan-port=-1',
      `-server-port=${this.ports.server}`,
      `-node=${this.node}`,
      '-log-level=warn',
    ];
    if (this.managementToken !== undefined) args.push(`-config-file=${join(this.workDir, 'acl.hcl')}`);
    if (this.ports.https !== undefined) args.push(`-config-file=${join(this.workDir, 'tls.hcl')}`);
    await mkdir(this.workDir, { recursive: true });
    // No CONSUL_HTTP_* variables from the environment may leak into the agent.
    const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: this.workDir };
    const proc = ManagedProcess.start(`consul ${this.node}`, this.binary, args, join(this.workDir, `agent-${this.starts}.log`), env);
    this.proc = proc;
    await proc.waitUntil(() => this.ready(), this.startTimeoutMs, 'leader elected and agent registered');
  }

  private async ready(): Promise<boolean> {
    const leader = await fetch(`${this.address}/v1/status/leader`, { signal: AbortSignal.timeout(2000) });
    if (!leader.ok || (await leader.text()).length <= 2) return false;
    // The agent's own node shows in the catalog once it has synced (needs the ACL tokens to be in place).
    const nodes = await fetch(`${this.address}/v1/catalog/node/${encodeURIComponent(this.node)}`, {
      headers: this.headers(),
      signal: AbortSignal.timeout(2000),
    });
    if (!nodes.ok || (await nodes.text()) === 'null') return false;
    return this.ports.https === undefined || (await this.httpsAnswers());
  }

  /** The HTTPS listener answers, with a certificate that the agent's CA verifies for 127.0.0.1. */
  private httpsAnswers(): Promise<boolean> {
    return new Promise((resolvePromise, reject) => {
      const req = https.get(
        `${this.httpsAddress}/v1/status/leader`,
        { ...(this.caPem !== undefined ? { ca: this.caPem } : {}), agent: false, signal: AbortSignal.timeout(2000) },
        (res) => {
          res.resume();
          res.on('end', () => resolvePromise(res.statusCode === 200));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
    });
  }

  private headers(token = this.managementToken): Record<string, string> {
    return token === undefined ? {} : { 'X-Consul-Token': token };
  }

  /** Calls the HTTP API with the management token (if any); throws on a non-2xx answer. */
  async api(method: 'GET' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${this.address}${path}`, {
      method,
      headers: { ...this.headers(), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new ConsulAgentError(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  }

  /** Registers a service on this agent's own node (its checks are owned by the agent). */
  async registerService(def: AgentServiceDefinition): Promise<void> {
    await this.api('PUT', '/v1/agent/service/register', def);
  }

  async deregisterService(id: string): Promise<void> {
    await this.api('PUT', `/v1/agent/service/deregister/${encodeURIComponent(id)}`);
  }

  /** Moves a TTL check to passing, warning or critical. */
  async setTtl(checkId: string, status: TtlStatus, note = ''): Promise<void> {
    await this.api('PUT', `/v1/agent/check/${status}/${encodeURIComponent(checkId)}?note=${encodeURIComponent(note)}`);
  }

  /** Registers an external node (and optionally a service on it) straight into the catalog. */
  async registerExternal(reg: CatalogRegistration): Promise<void> {
    await this.api('PUT', '/v1/catalog/register', reg);
  }

  async deregisterExternal(node: string, serviceId?: string): Promise<void> {
    await this.api('PUT', '/v1/catalog/deregister', serviceId === undefined ? { Node: node } : { Node: node, ServiceID: serviceId });
  }

  /** Creates an ACL token with the given rules (HCL) and returns its secret. */
  async createToken(rules: string, description = 'test token'): Promise<string> {
    const policy = (await this.api('PUT', '/v1/acl/policy', { Name: `p-${randomUUID().slice(0, 8)}`, Rules: rules })) as { ID: string };
    const token = (await this.api('PUT', '/v1/acl/token', { Description: description, Policies: [{ ID: policy.ID }] })) as {
      SecretID: string;
    };
    return token.SecretID;
  }

  /** Freezes the agent (SIGSTOP): its sockets stay open and nothing answers, as with a hung host. */
  freeze(): void {
    this.signal('SIGSTOP');
  }

  /** Lets a frozen agent run again (SIGCONT). */
  thaw(): void {
    this.signal('SIGCONT');
  }

  private signal(sig: NodeJS.Signals): void {
    const pid = this.proc?.pid;
    if (pid === undefined || !this.running) throw new ConsulAgentError(`agent ${this.node} is not running`);
    process.kill(pid, sig);
  }

  /** Stops the agent (SIGTERM, then SIGKILL), keeping its ports for restart(). */
  async stopProcess(): Promise<void> {
    await this.proc?.stop(5000);
  }

  /** Starts the agent again on the same ports. A dev agent keeps no state: register services again. */
  async restart(): Promise<void> {
    await this.stopProcess();
    await this.launch();
  }

  /** Stops the agent and removes its working directory. */
  async stop(): Promise<void> {
    await this.stopProcess();
    await rm(this.workDir, { recursive: true, force: true });
  }
}
