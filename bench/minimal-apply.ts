/**
 * The yardstick's client: as little as a client can be. One HTTP/2 connection to the
 * apiserver (the operator's connection pool also speaks HTTP/2 over one connection),
 * TLS and credentials from the kubeconfig, and for each object a server-side apply
 * PATCH of its JSON body with the operator's field manager and force — the request the
 * operator's applier sends — plus, for an entry with a health verdict (Consul's status
 * mode), the status apply the applier sends after it. No client library, no retries.
 */
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import type { RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export interface ApplyRequest {
  /** API path of the object, e.g. /apis/networking.istio.io/v1/namespaces/ns/workloadentries/name */
  readonly path: string;
  readonly body: unknown;
}

export class MinimalApplyClient {
  private readonly session: ClientHttp2Session;
  private readonly headers: Record<string, string>;
  private readonly fieldManager: string;

  private constructor(session: ClientHttp2Session, headers: Record<string, string>, fieldManager: string) {
    this.session = session;
    this.headers = headers;
    this.fieldManager = fieldManager;
  }

  static async connect(kc: KubeConfig, fieldManager: string): Promise<MinimalApplyClient> {
    const server = kc.getCurrentCluster()?.server;
    if (!server) throw new Error('the kubeconfig names no server');
    const opts: RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = String(v);
    if (opts.auth) headers['authorization'] = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    const session = connect(server, {
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
      ...(opts.cert !== undefined ? { cert: opts.cert } : {}),
      ...(opts.key !== undefined ? { key: opts.key } : {}),
      ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
      ...(opts.servername !== undefined ? { servername: opts.servername } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', reject);
    });
    return new MinimalApplyClient(session, headers, fieldManager);
  }

  /** One server-side apply; rejects unless the apiserver answers 200 or 201. */
  apply(r: ApplyRequest): Promise<void> {
    const query = `?fieldManager=${encodeURIComponent(this.fieldManager)}&force=true`;
    return new Promise((resolve, reject) => {
      const req = this.session.request({
        ...this.headers,
        [constants.HTTP2_HEADER_METHOD]: 'PATCH',
        [constants.HTTP2_HEADER_PATH]: r.path + query,
        'content-type': 'application/apply-patch+yaml',
        accept: 'application/json',
      });
      let status = 0;
      const chunks: Buffer[] = [];
      req.on('response', (h) => void (status = Number(h[constants.HTTP2_HEADER_STATUS])));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', reject);
      req.on('end', () => {
        if (status === 200 || status === 201) resolve();
        else reject(new Error(`apply ${r.path}: ${status} ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`));
      });
      req.end(JSON.stringify(r.body));
    });
  }

  close(): void {
    this.session.close();
  }
}
