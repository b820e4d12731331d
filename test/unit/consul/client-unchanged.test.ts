/** A blocking answer whose index did not move is drained, not parsed: it only says nothing changed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConsulClient } from '../../../src/providers/consul/client.ts';

test('a blocking answer with the index that was sent carries no body; one with a new index is parsed', async () => {
  // The index moves from 7 to 8 on the third request; the body is not JSON while it stays, so parsing it would fail.
  let served = 0;
  const server = http.createServer((req, res) => {
    served += 1;
    const index = served >= 3 ? 8 : 7;
    res.setHeader('X-Consul-Index', String(index));
    res.end(index === 7 && req.url?.includes('index=7') ? 'x'.repeat(1 << 20) : JSON.stringify({ web: [] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = new ConsulClient({ address: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, maxConnections: 2 });
  try {
    const req = { operation: 'watch_catalog_services', signal: AbortSignal.timeout(5000), timeoutMs: 5000 };
    const first = await client.get('/v1/catalog/services', [], { ...req, blocking: { index: 0, waitMs: 1000 } });
    assert.deepEqual(first.body, { web: [] });
    const unchanged = await client.get('/v1/catalog/services', [], { ...req, blocking: { index: 7, waitMs: 1000 } });
    assert.equal(unchanged.body, null);
    assert.equal(unchanged.index, 7);
    const moved = await client.get('/v1/catalog/services', [], { ...req, blocking: { index: 7, waitMs: 1000 } });
    assert.deepEqual(moved.body, { web: [] });
    assert.equal(moved.index, 8);
  } finally {
    client.close();
    server.close();
  }
});
