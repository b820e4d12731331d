/**
 * A small Consul HTTP client on node:http/https. Not the `consul` npm package: its watch
 * helper stops for good on a 400, its option types are wrong in places, and it hides
 * X-Consul-Index handling that the blocking-query rules need; node:https also gives
 * direct control over the CA bundle, server name and keep-alive sockets.
 */
import http from 'node:http';
import https from 'node:https';
import type { ProviderMetrics } from '../../metrics/provider-metrics.ts';
import { ProviderError } from '../errors.ts';
import { errorForFailure, errorForStatus } from './errors.ts';
import { parseIndexHeader } from './index-rules.ts';

const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface ConsulClientOptions {
  readonly address: string;
  readonly token?: string;
  readonly ca?: string;
  readonly serverName?: string;
  readonly insecureSkipVerify?: boolean;
  /** Timeout of a non-blocking request. */
  readonly timeoutMs: number;
  readonly datacenter?: string;
  readonly namespace?: string;
  readonly partition?: string;
  readonly metrics?: ProviderMetrics;
  /** Sockets kept per host; at least the number of concurrent watches. */
  readonly maxSockets?: number;
}

export interface RequestOptions {
  /** Metric label: a fixed operation name, never a service name. */
  readonly operation: string;
  readonly signal: AbortSignal;
  readonly blocking?: { readonly index: number; readonly waitMs: number };
}

export interface ConsulResponse {
  readonly body: unknown;
  readonly index: number;
  /** Consul hid part of the answer because the token may not read it (X-Consul-Results-Filtered-By-ACLs). */
  readonly filteredByAcls: boolean;
}

export class ConsulClient {
  readonly address: string;
  private readonly base: URL;
  private readonly opts: ConsulClientOptions;
  private readonly agent: http.Agent;

  constructor(opts: ConsulClientOptions) {
    let base: URL;
    try {
      base = new URL(opts.address);
    } catch (e) {
      throw new ProviderError('consul', 'BadConfig', `spec.consul.address is not a URL`, { cause: e });
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new ProviderError('consul', 'BadConfig', `spec.consul.address must be http or https, not ${base.protocol}`);
    }
    this.base = base;
    this.opts = opts;
    // The address without credentials or query, for messages.
    this.address = `${base.protocol}//${base.host}${base.pathname.replace(/\/$/, '')}`;
    const common = { keepAlive: true, maxSockets: opts.maxSockets ?? 80 };
    this.agent =
      base.protocol === 'https:'
        ? new https.Agent({
            ...common,
            ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
            ...(opts.serverName !== undefined ? { servername: opts.serverName } : {}),
            rejectUnauthorized: !opts.insecureSkipVerify,
          })
        : new http.Agent(common);
  }

  /** GET path with query; adds dc/ns/partition only when configured (community edition rejects ns/partition). */
  async get(path: string, query: ReadonlyArray<readonly [string, string]>, req: RequestOptions): Promise<ConsulResponse> {
    const url = new URL(this.base.toString());
    url.pathname = `${this.base.pathname.replace(/\/$/, '')}${path}`;
    url.search = '';
    for (const [k, v] of query) url.searchParams.append(k, v);
    if (this.opts.datacenter) url.searchParams.set('dc', this.opts.datacenter);
    if (this.opts.namespace) url.searchParams.set('ns', this.opts.namespace);
    if (this.opts.partition) url.searchParams.set('partition', this.opts.partition);
    let timeoutMs = this.opts.timeoutMs;
    if (req.blocking) {
      url.searchParams.set('index', String(req.blocking.index));
      url.searchParams.set('wait', `${Math.max(1, Math.round(req.blocking.waitMs / 1000))}s`);
      // Consul adds up to wait/16 of jitter before answering.
      timeoutMs = req.blocking.waitMs + req.blocking.waitMs / 16 + this.opts.timeoutMs;
    }
    const run = (): Promise<ConsulResponse> => this.request(url, timeoutMs, req.signal);
    const metrics = this.opts.metrics;
    // Blocking waits are counted but not timed: their duration says nothing about Consul.
    return metrics ? metrics.track('consul', req.operation, run, req.blocking === undefined) : run();
  }

  private request(url: URL, timeoutMs: number, signal: AbortSignal): Promise<ConsulResponse> {
    const what = `GET ${url.pathname}`;
    return new Promise<ConsulResponse>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const headers: Record<string, string> = { Accept: 'application/json' };
      if (this.opts.token) headers['X-Consul-Token'] = this.opts.token;
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
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            reject(errorForStatus(status, text, what));
            return;
          }
          try {
            resolve({
              body: JSON.parse(text) as unknown,
              index: parseIndexHeader(res.headers['x-consul-index']),
              filteredByAcls: res.headers['x-consul-results-filtered-by-acls'] === 'true',
            });
          } catch (e) {
            reject(new ProviderError('consul', 'BadResponse', `${what}: answer is not JSON`, { cause: e }));
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
