/**
 * The connection pool and credentials every request to the apiserver uses. client-node's
 * KubeConfig knows how to authenticate (tokens, token files, exec plugins, client
 * certificates, proxies) and builds an undici Agent for it; building one per request (as
 * client-node's own API classes do) means a TLS handshake per request, which at
 * thousands of writes was most of the operator's CPU. Here one Agent, with the headers
 * KubeConfig computed, serves every request (HTTP keep-alive) and is renewed now and
 * then, so rotated tokens, client certificates and CA bundles are picked up; an answer
 * of 401 renews at once. A replaced Agent is closed after a grace period, once the
 * requests handed it (a watch lasts up to ten minutes) are done.
 */
import { Agent, type Dispatcher } from 'undici';
import type { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { HttpMethod, RequestContext } from '@kubernetes/client-node/dist/gen/http/http.js';

/** Where requests go and with what: the pool, the credentials' headers and the server. */
export interface Channel {
  readonly dispatcher: Dispatcher;
  /** Lower-case header names: Authorization, Impersonate-User and the like. */
  readonly headers: Readonly<Record<string, string>>;
  /** The server's origin, and the path it sits under (a kubeconfig server may be behind a proxy path). */
  readonly origin: string;
  readonly prefix: string;
}

/** How long one pool and its credentials serve before fresh ones take over. */
export const DEFAULT_RENEW_MS = 5 * 60_000;
/** How long a replaced pool stays open for the requests already handed it. */
const CLOSE_GRACE_MS = 11 * 60_000;
/** TCP keep-alive probes as client-go (and client-node) set them. */
const KEEP_ALIVE = { keepAlive: true, keepAliveInitialDelay: 30_000 } as const;

export class ApiChannel {
  private readonly kc: KubeConfig;
  private readonly origin: string;
  private readonly prefix: string;
  /** The server's host and port (the metrics' host label). */
  readonly host: string;
  private readonly renewMs: number;
  private readonly now: () => number;
  private current: Channel | undefined;
  private takenAt = -Infinity;
  private renewing: Promise<Channel> | undefined;
  /** Replaced pools, each closed when its timer fires (or at close()). */
  private readonly retiring = new Map<NodeJS.Timeout, Dispatcher>();
  /** Pools built so far (a test can see that requests share one). */
  renewals = 0;

  constructor(kc: KubeConfig, options: { renewMs?: number; now?: () => number } = {}) {
    const server = kc.getCurrentCluster()?.server;
    if (!server) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(server);
    this.kc = kc;
    this.origin = url.origin;
    this.host = url.host;
    this.prefix = url.pathname.replace(/\/+$/, '');
    this.renewMs = options.renewMs ?? DEFAULT_RENEW_MS;
    this.now = options.now ?? Date.now;
  }

  /** The current channel; fresh credentials (and pool) once the renewal period is over. */
  get(): Promise<Channel> {
    if (this.current !== undefined && this.now() - this.takenAt < this.renewMs) return Promise.resolve(this.current);
    this.renewing ??= this.renew().finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  /** The server refused the credentials (401): the next request asks KubeConfig again. */
  invalidate(): void {
    this.takenAt = -Infinity;
  }

  private async renew(): Promise<Channel> {
    const context = new RequestContext(this.origin + this.prefix, HttpMethod.GET);
    await this.kc.applySecurityAuthentication(context);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(context.getHeaders())) headers[k.toLowerCase()] = v;
    // KubeConfig builds an Agent only when there are TLS options or a proxy; otherwise one of ours.
    const dispatcher: Dispatcher = context.getDispatcher() ?? new Agent({ connect: KEEP_ALIVE });
    const previous = this.current;
    this.current = { dispatcher, headers, origin: this.origin, prefix: this.prefix };
    this.takenAt = this.now();
    this.renewals++;
    if (previous) this.retire(previous.dispatcher);
    return this.current;
  }

  private retire(dispatcher: Dispatcher): void {
    const timer = setTimeout(() => {
      this.retiring.delete(timer);
      void dispatcher.close().catch(() => undefined);
    }, CLOSE_GRACE_MS);
    timer.unref();
    this.retiring.set(timer, dispatcher);
  }

  /**
   * Ends every connection (the caller has stopped its watches and settled its writes)
   * and forgets the credentials.
   */
  async close(): Promise<void> {
    const pools = [...this.retiring.values()];
    if (this.current) pools.push(this.current.dispatcher);
    for (const timer of this.retiring.keys()) clearTimeout(timer);
    this.retiring.clear();
    this.current = undefined;
    this.takenAt = -Infinity;
    await Promise.all(pools.map((d) => d.destroy().catch(() => undefined)));
  }
}
