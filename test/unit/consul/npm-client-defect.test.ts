/**
 * Why the provider does not use the `consul` npm package's client (docs/decisions.md):
 * it builds each request's query from a fixed list of options and silently drops the
 * Enterprise namespace (`ns`), so a source with spec.consul.namespace would read the
 * default namespace with no error. The package is a dev dependency for this test only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

interface NpmConsul {
  health: { service(opts: Record<string, unknown>): Promise<unknown> };
  destroy(): void;
}
type NpmConsulModule = { default: { Consul?: new (opts: Record<string, unknown>) => NpmConsul } & (new (opts: Record<string, unknown>) => NpmConsul) };

test('the consul npm client drops the namespace parameter (ns) without an error', async () => {
  const mod = (await import('consul')) as unknown as NpmConsulModule;
  const urls: string[] = [];
  const server = http.createServer((req, res) => {
    urls.push(req.url ?? '');
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('X-Consul-Index', '7');
    res.end('[]');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  try {
    const Ctor = mod.default.Consul ?? mod.default;
    const client = new Ctor({ host: '127.0.0.1', port });
    await client.health.service({ service: 'web', ns: 'team-a', dc: 'dc1' });
    client.destroy();
    assert.equal(urls.length, 1);
    const url = new URL(urls[0] ?? '', 'http://x');
    assert.equal(url.searchParams.get('dc'), 'dc1', 'known options are sent');
    assert.equal(url.searchParams.get('ns'), null, 'the namespace is dropped: the default namespace would be read');
  } finally {
    server.close();
  }
});
