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
import type { ClientHttp2Stream } from 'node:http2';
import type { Readable } from 'node:stream';
import type { ProviderMetrics } from '../../metrics/provider-metrics.ts';
import { ProviderError } from '../errors.ts';
import { errorForFailure, errorForStatus } from './errors.ts';
import { H2Sessions } from './h2-sessions.ts';
import { parseIndexHeader } from './index-rules.ts';

const MAX_BODY_BYTES = 64 * 1024 * 1024;
const H2_CONNECT_TIMEOUT_MS = 10_000;

export interface ConsulEndpoint {
  readonly address: string;
  readonly ca?: string;
  readonly serverName?: string;
  readonly insecureSkipVerify?: boolean;
}

export interface ConsulClientOptions extends ConsulEndpoint {
  /** Sockets open at once to this endpoint, idle keep-alive ones included. */
  readonly maxConnections: number;
  /** HTTP/2 sessions that may be open now, beside those sockets (https endpoints only; default none). */
  readonly maxH2Sessions?: () => number;
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

/** A blocking query on an HTTP/2 stream (ConsulClient.stream). */
export interface StreamRequest {
  readonly operation: string;
  readonly token?: string;
  readonly index: number;
  readonly waitMs: number;
}

/** Never aborts: a stream's wait for a free slot is not cancelled, its stream is (see stream()). */
const NEVER = new AbortController().signal;

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
  /** HTTP/2 sessions for stream(); only for an https endpoint given maxH2Sessions. */
  private readonly h2: H2Sessions | undefined;
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
    this.h2 =
      this.base.protocol === 'https:' && opts.maxH2Sessions
        ? new H2Sessions({
            origin: this.base.origin,
            ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
            ...(opts.serverName !== undefined ? { serverName: opts.serverName } : {}),
            ...(opts.insecureSkipVerify !== undefined ? { insecureSkipVerify: opts.insecureSkipVerify } : {}),
            maxSessions: opts.maxH2Sessions,
            connectTimeoutMs: H2_CONNECT_TIMEOUT_MS,
          })
        : undefined;
  }

  /**
   * Whether stream() can be used: the streams one HTTP/2 session takes, or 0 (plain http,
   * or a server that does not offer h2).
   */
  async multiplexing(): Promise<number> {
    if (!this.h2) return 0;
    try {
      return await this.h2.probe();
    } catch {
      return 0;
    }
  }

  /**
   * One blocking GET on an HTTP/2 stream (only when multiplexing() found HTTP/2), reported
   * by callback: exactly one of onAnswer and onError runs, unless the returned function
   * cancels it first. It holds no timer or signal of its own: thousands wait at once, and
   * the caller ends those past their deadline (stream-watches.ts).
   */
  stream(path: string, query: Query, req: StreamRequest, onAnswer: (res: ConsulResponse) => void, onError: (e: ProviderError) => void): () => void {
    const what = `GET ${path}`;
    let settled = false;
    let cancelled = false;
    let stream: ClientHttp2Stream | undefined;
    const fail = (e: unknown): void => {
      if (settled || cancelled) return;
      settled = true;
      const err = e instanceof ProviderError ? e : errorForFailure(e, what, this.address);
      this.metrics?.count('consul', req.operation, err.kind);
      onError(err);
    };
    const h2 = this.h2;
    if (!h2) {
      fail(new ProviderError('consul', 'BadConfig', `${what}: HTTP/2 needs an https address`));
      return () => {};
    }
    const params = new URLSearchParams(query.map(([k, v]): [string, string] => [k, v]));
    params.set('index', String(req.index));
    params.set('wait', `${Math.max(1, Math.round(req.waitMs / 1000))}s`);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (req.token) headers['x-consul-token'] = req.token;
    h2.request(`${this.base.pathname.replace(/\/$/, '')}${path}?${params.toString()}`, headers, NEVER).then((s) => {
      if (cancelled) {
        s.destroy();
        return;
      }
      stream = s;
      s.on('error', fail);
      s.once('response', (h) => {
        readAnswer({ status: Number(h[':status'] ?? 0), header: (n) => headerValue(h[n]), body: s }, { blocking: req }, what).then((res) => {
          if (settled || cancelled) return;
          settled = true;
          this.metrics?.count('consul', req.operation, 'success');
          onAnswer(res);
        }, fail);
      });
    }, fail);
    return () => {
      cancelled = true;
      stream?.destroy();
    };
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
    // Strings, not the URL: a blocking request keeps them for minutes.
    const target = { href: url.href, path: `${url.pathname}${url.search}`, what: `GET ${url.pathname}` };
    const run = (): Promise<ConsulResponse> => this.request(target, timeoutMs, req);
    // Blocking waits are counted but not timed: their duration says nothing about Consul.
    return this.metrics ? this.metrics.track('consul', req.operation, run, req.blocking === undefined) : run();
  }

  private request(target: { readonly href: string; readonly path: string; readonly what: string }, timeoutMs: number, req: RequestOptions): Promise<ConsulResponse> {
    const what = target.what;
    const signal = req.signal;
    return new Promise<ConsulResponse>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason as Error);
        return;
      }
      let cancel: (e: Error) => void = () => {};
      const timer = setTimeout(() => {
        const e = Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' });
        cancel(e);
        fail(e);
      }, timeoutMs);
      const fail = (e: unknown): void => {
        clearTimeout(timer);
        if (signal.aborted) reject(signal.reason as Error);
        else reject(e instanceof ProviderError ? e : errorForFailure(e, what, this.address));
      };
      const done = (answer: Promise<ConsulResponse>): void => {
        answer.then(
          (res) => {
            clearTimeout(timer);
            resolve(res);
          },
          (e: unknown) => fail(e),
        );
      };
      const headers: Record<string, string> = { accept: 'application/json' };
      if (req.token) headers['x-consul-token'] = req.token;
      const mod = this.base.protocol === 'https:' ? https : http;
      const r = mod.request(target.href, { method: 'GET', headers, agent: this.agent, signal });
      cancel = (e) => r.destroy(e);
      r.on('error', fail);
      r.on('response', (res) => {
        done(readAnswer({ status: res.statusCode ?? 0, header: (n) => headerValue(res.headers[n]), body: res }, req, what));
      });
      r.end();
    });
  }

  close(): void {
    this.agent.destroy();
    this.h2?.close();
  }
}

/** An answer's status line and headers, and its body still to be read (HTTP/1.1 or HTTP/2 alike). */
interface RawAnswer {
  readonly status: number;
  header(name: string): string | undefined;
  readonly body: Readable;
}

function headerValue(v: string | string[] | number | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v === undefined ? undefined : String(v);
}

function readAnswer(res: RawAnswer, req: Pick<RequestOptions, 'blocking' | 'raw'>, what: string): Promise<ConsulResponse> {
  const index = parseIndexHeader(res.header('x-consul-index'));
  const meta = {
    index,
    filteredByAcls: res.header('x-consul-results-filtered-by-acls') === 'true',
    knownLeader: res.header('x-consul-knownleader') !== 'false',
  };
  const status = res.status;
  return new Promise<ConsulResponse>((resolve, reject) => {
    res.body.on('error', reject);
    // A wait that ran out: Consul sends the whole unchanged answer again (MBs for a large
    // node list); draining it unparsed keeps a quiet fleet's watches almost free.
    if (req.blocking && index === req.blocking.index && status >= 200 && status < 300) {
      res.body.on('end', () => resolve({ body: null, ...meta }));
      res.body.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.body.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        res.body.destroy(new ProviderError('consul', 'BadResponse', `${what}: answer larger than ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(c);
    });
    res.body.on('end', () => {
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
}
