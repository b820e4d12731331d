/**
 * A small Consul HTTP client on node:http/https, one per registry endpoint (address and
 * TLS settings), shared by every source that reads that endpoint. Its keep-alive agent
 * never opens more than `maxConnections` sockets; the ACL token travels with each
 * request, because sources with different tokens share the client.
 * Not the `consul` npm package: see docs/decisions.md (it cannot send an Enterprise
 * namespace, and drops Consul's error text).
 */
import http from 'node:http';
import https from 'node:https';
import type { ProviderMetrics } from '../../metrics/provider-metrics.ts';
import { ProviderError } from '../errors.ts';
import { errorForFailure, errorForStatus } from './errors.ts';
import { parseIndexHeader } from './index-rules.ts';

const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface ConsulEndpoint {
  readonly address: string;
  readonly ca?: string;
  readonly serverName?: string;
  readonly insecureSkipVerify?: boolean;
}

export interface ConsulClientOptions extends ConsulEndpoint {
  /** Sockets open at once to this endpoint, idle keep-alive ones included. */
  readonly maxConnections: number;
  readonly metrics?: ProviderMetrics;
}

export type Query = ReadonlyArray<readonly [string, string]>;

export interface RequestOptions {
  /** Metric label: a fixed operation name, never a service name. */
  readonly operation: string;
  readonly signal: AbortSignal;
  /** Deadline of a non-blocking request; a blocking one adds its wait and Consul's jitter. */
  readonly timeoutMs: number;
  readonly token?: string;
  readonly blocking?: { readonly index: number; readonly waitMs: number };
  /** The body as the bytes Consul sent (a Buffer), not parsed: for MB-sized answers read by a scan. */
  readonly raw?: boolean;
}

export interface ConsulResponse {
  /**
   * The parsed JSON; the bytes (a Buffer) for a raw request; null for a blocking answer
   * whose index did not move: it only says nothing changed, so its body is not read.
   */
  readonly body: unknown;
  readonly index: number;
  /** Consul hid part of the answer because the token may not read it (X-Consul-Results-Filtered-By-ACLs). */
  readonly filteredByAcls: boolean;
  /** X-Consul-KnownLeader: false when the agent's servers have no leader. */
  readonly knownLeader: boolean;
}

/** Parses an address into a base URL; a typed BadConfig when it is not http(s). */
export function parseAddress(address: string): URL {
  let base: URL;
  try {
    base = new URL(address);
  } catch (e) {
    throw new ProviderError('consul', 'BadConfig', `spec.consul.address is not a URL`, { cause: e });
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new ProviderError('consul', 'BadConfig', `spec.consul.address must be http or https, not ${base.protocol}`);
  }
  return base;
}

/** The JSON of an answer's bytes; a BadResponse when it is not JSON. `what` names the request. */
export function parseJsonBytes(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (e) {
    throw new ProviderError('consul', 'BadResponse', `${what}: answer is not JSON`, { cause: e });
  }
}

export class ConsulClient {
  /** The address without credentials or query, for messages. */
  readonly address: string;
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly metrics: ProviderMetrics | undefined;

  constructor(opts: ConsulClientOptions) {
    this.base = parseAddress(opts.address);
    this.address = `${this.base.protocol}//${this.base.host}${this.base.pathname.replace(/\/$/, '')}`;
    this.metrics = opts.metrics;
    // maxSockets counts idle keep-alive sockets too: the cap holds for everything open.
    const common = { keepAlive: true, maxSockets: opts.maxConnections, maxTotalSockets: opts.maxConnections, maxFreeSockets: opts.maxConnections };
    this.agent =
      this.base.protocol === 'https:'
        ? new https.Agent({
            ...common,
            ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
            ...(opts.serverName !== undefined ? { servername: opts.serverName } : {}),
            rejectUnauthorized: !opts.insecureSkipVerify,
          })
        : new http.Agent(common);
  }

  /** Sockets this client holds open now (busy and idle). */
  openSockets(): number {
    const count = (m: NodeJS.ReadOnlyDict<unknown[]>): number => Object.values(m).reduce((n, list) => n + (list?.length ?? 0), 0);
    return count(this.agent.sockets) + count(this.agent.freeSockets);
  }

  async get(path: string, query: Query, req: RequestOptions): Promise<ConsulResponse> {
    const url = new URL(this.base.toString());
    url.pathname = `${this.base.pathname.replace(/\/$/, '')}${path}`;
    url.search = '';
    for (const [k, v] of query) url.searchParams.append(k, v);
    let timeoutMs = req.timeoutMs;
    if (req.blocking) {
      url.searchParams.set('index', String(req.blocking.index));
      url.searchParams.set('wait', `${Math.max(1, Math.round(req.blocking.waitMs / 1000))}s`);
      // Consul adds up to wait/16 of jitter before answering.
      timeoutMs = req.blocking.waitMs + req.blocking.waitMs / 16 + req.timeoutMs;
    }
    const run = (): Promise<ConsulResponse> => this.request(url, timeoutMs, req);
    // Blocking waits are counted but not timed: their duration says nothing about Consul.
    return this.metrics ? this.metrics.track('consul', req.operation, run, req.blocking === undefined) : run();
  }

  private request(url: URL, timeoutMs: number, req: RequestOptions): Promise<ConsulResponse> {
    const what = `GET ${url.pathname}`;
    const signal = req.signal;
    return new Promise<ConsulResponse>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const headers: Record<string, string> = { Accept: 'application/json' };
      if (req.token) headers['X-Consul-Token'] = req.token;
      const mod = url.protocol === 'https:' ? https : http;
      const r = mod.request(url, { method: 'GET', headers, agent: this.agent, signal });
      const timer = setTimeout(() => {
        r.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      const fail = (e: unknown): void => {
        clearTimeout(timer);
        if (signal.aborted) reject(signal.reason as Error);
        else reject(e instanceof ProviderError ? e : errorForFailure(e, what, this.address));
      };
      r.on('error', fail);
      r.on('response', (res) => {
        const index = parseIndexHeader(res.headers['x-consul-index']);
        const meta = {
          index,
          filteredByAcls: res.headers['x-consul-results-filtered-by-acls'] === 'true',
          knownLeader: res.headers['x-consul-knownleader'] !== 'false',
        };
        const status = res.statusCode ?? 0;
        // A wait that ran out: Consul sends the whole unchanged answer again (MBs for a large
        // node list); draining it unparsed keeps a quiet fleet's watches almost free.
        if (req.blocking && index === req.blocking.index && status >= 200 && status < 300) {
          res.on('error', fail);
          res.on('end', () => {
            clearTimeout(timer);
            resolve({ body: null, ...meta });
          });
          res.resume();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) {
            res.destroy(new ProviderError('consul', 'BadResponse', `${what}: answer larger than ${MAX_BODY_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('error', fail);
        res.on('end', () => {
          clearTimeout(timer);
          const bytes = Buffer.concat(chunks);
          if (status < 200 || status >= 300) {
            reject(errorForStatus(status, bytes.toString('utf8'), what));
            return;
          }
          if (req.raw === true) {
            resolve({ body: bytes, ...meta });
            return;
          }
          try {
            resolve({ body: parseJsonBytes(bytes, what), ...meta });
          } catch (e) {
            reject(e as Error);
          }
        });
      });
      r.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
