/**
 * HTTP/2 sessions and the client's multiplexed requests against loopback TLS servers:
 * streams fill a session up to the server's limit before the next opens, requests wait
 * for a free stream beyond the sessions allowed, a session whose pings go unanswered is
 * destroyed (a hung connection fails its streams), and a server that does not offer h2
 * leaves the client on HTTP/1.1.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { makeCa, makeLeaf } from '../../../src/dev/pki.ts';
import { ConsulClient, type ConsulResponse } from '../../../src/providers/consul/client.ts';
import { H2Sessions } from '../../../src/providers/consul/h2-sessions.ts';

let dir: string;
let ca: string;
let cert: { key: string; cert: string };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmreg-h2-'));
  const caPair = await makeCa(dir, 'ca');
  const leaf = await makeLeaf(dir, caPair, 'server', '/CN=127.0.0.1', 'server', ['IP:127.0.0.1']);
  ca = await readFile(caPair.cert, 'utf8');
  cert = { key: await readFile(leaf.key, 'utf8'), cert: await readFile(leaf.cert, 'utf8') };
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** An h2 server taking `streams` streams per connection; each request waits until released. */
async function holdingServer(streams: number): Promise<{ origin: string; held: Array<() => void>; close: () => Promise<void> }> {
  const held: Array<() => void> = [];
  const server = http2.createSecureServer({ ...cert, settings: { maxConcurrentStreams: streams } }, (req, res) => {
    held.push(() => {
      res.setHeader('x-consul-index', '7');
      res.end('[]');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => sessions.add(s));
  return {
    origin,
    held,
    close: async () => {
      for (const s of sessions) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok(), `timed out waiting for ${what}`);
}

test('streams fill a session up to the server’s limit before the next opens; beyond the sessions allowed, requests wait for a free stream', async () => {
  const server = await holdingServer(2);
  const sessions = new H2Sessions({ origin: server.origin, ca, maxSessions: () => 2, connectTimeoutMs: 5000 });
  const signal = AbortSignal.timeout(10_000);
  const responded: number[] = [];
  const streams = await Promise.all([0, 1, 2, 3].map((i) => sessions.request(`/v1/x?i=${i}`, {}, signal)));
  streams.forEach((s, i) => s.once('response', () => responded.push(i)).resume());
  assert.equal(sessions.openSessions, 2, 'four streams on two sessions of two');
  let fifthSent = false;
  const fifth = sessions.request('/v1/x?i=4', {}, signal).then((s) => {
    fifthSent = true;
    s.resume();
    return s;
  });
  await until('the server to hold four', () => server.held.length === 4);
  assert.equal(fifthSent, false, 'the fifth waits for a stream');
  server.held.shift()?.();
  await fifth;
  assert.equal(sessions.openSessions, 2, 'no third session');
  await until('the fifth to reach the server', () => server.held.length === 4);
  for (const release of server.held.splice(0)) release();
  await until('every answer', () => responded.length === 4);
  sessions.close();
  await server.close();
});

test('a session whose pings go unanswered is destroyed, failing its streams', async () => {
  // A TLS server that speaks h2 by ALPN, sends its SETTINGS, acknowledges the client's once
  // they arrive, and then nothing more: a hung peer.
  const server = tls.createServer({ ...cert, ALPNProtocols: ['h2'] }, (socket) => {
    let acked = false;
    socket.on('data', () => {
      if (!acked) socket.write(Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0]));
      acked = true;
    });
    socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sessions = new H2Sessions({ origin, ca, maxSessions: () => 1, connectTimeoutMs: 5000, pingEveryMs: 50, pingTimeoutMs: 100 });
  const stream = await sessions.request('/v1/health/service/web?index=3&wait=300s', {}, AbortSignal.timeout(10_000));
  const failed = await new Promise<Error>((resolve) => stream.once('error', resolve));
  assert.match(failed.message, /ping not answered|session/i);
  await until('the session to be forgotten', () => sessions.openSessions === 0);
  sessions.close();
  await new Promise<void>((r) => server.close(() => r()));
});

test('the client: blocking queries on HTTP/2 streams read the index; an unchanged one is drained, not parsed; a cancelled one reports nothing', async () => {
  const server = await holdingServer(10);
  const client = new ConsulClient({ address: server.origin, ca, maxConnections: 4, maxH2Sessions: () => 1 });
  assert.equal(await client.multiplexing(), 10, 'the server’s stream limit');
  const ask = (index: number): { answer: Promise<ConsulResponse>; cancel: () => void } => {
    let cancel = (): void => {};
    const answer = new Promise<ConsulResponse>((resolve, reject) => {
      cancel = client.stream('/v1/health/service/web', [], { operation: 'watch_health_service', index, waitMs: 1000 }, resolve, reject);
    });
    return { answer, cancel };
  };
  const changed = ask(3);
  const unchanged = ask(7);
  let cancelledReported = false;
  const cancelled = client.stream('/v1/health/service/web', [], { operation: 'watch_health_service', index: 3, waitMs: 1000 }, () => (cancelledReported = true), () => (cancelledReported = true));
  await until('three to wait', () => server.held.length === 3);
  cancelled();
  for (const release of server.held.splice(0)) release();
  assert.deepEqual(await changed.answer, { body: [], index: 7, filteredByAcls: false, knownLeader: true });
  assert.equal((await unchanged.answer).body, null);
  assert.equal(cancelledReported, false, 'a cancelled query calls neither callback');
  client.close();
  await server.close();
});

test('the client: a TLS server that does not offer h2 leaves multiplexed requests on HTTP/1.1', async () => {
  const server = https.createServer(cert, (_req, res) => {
    res.setHeader('x-consul-index', '5');
    res.end('"leader"');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new ConsulClient({ address, ca, maxConnections: 4, maxH2Sessions: () => 1 });
  assert.equal(await client.multiplexing(), 0);
  client.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});
