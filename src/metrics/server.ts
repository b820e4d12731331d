/** The HTTP endpoints a kubelet and Prometheus read: /metrics, /healthz, /readyz. */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface ProbeServerOptions {
  readonly registry?: Registry;
  readonly ready?: () => boolean;
  readonly healthy?: () => boolean;
}

/** Parses ":8080", "127.0.0.1:8080" or "0" (disabled). */
export function parseBindAddress(addr: string): { host: string; port: number } | undefined {
  if (addr === '0' || addr === '') return undefined;
  const i = addr.lastIndexOf(':');
  const port = Number(addr.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid bind address "${addr}": use host:port or :port`);
  return { host: addr.slice(0, i) || '0.0.0.0', port };
}

export function startProbeServer(bind: { host: string; port: number }, o: ProbeServerOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const text = (code: number, body: string): void => {
      res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(body);
    };
    if (path === '/metrics' && o.registry) {
      const registry = o.registry;
      registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(body);
        },
        (e: unknown) => text(500, String(e)),
      );
    } else if (path === '/healthz' && o.healthy) {
      if (o.healthy()) text(200, 'ok');
      else text(500, 'unhealthy');
    } else if (path === '/readyz' && o.ready) {
      if (o.ready()) text(200, 'ok');
      else text(503, 'caches not synced');
    } else {
      text(404, 'not found');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(bind.port, bind.host, () => resolve(server));
  });
}
