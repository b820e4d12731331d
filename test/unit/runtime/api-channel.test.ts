/**
 * The channel of every request, against a loopback HTTP server: one pool and one set of
 * credentials serve every request until the renewal period ends or the server answers
 * 401; watch streams are split into events wherever the chunks break; a silent watch
 * ends; the server's Status (an answer or an ERROR event) comes back as a KubeApiError.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiChannel } from '../../../src/runtime/api-channel.ts';
import { sendApiRequest } from '../../../src/runtime/api-request.ts';
import { streamWatch, type WatchEvent } from '../../../src/runtime/api-watch.ts';
import { KubeApiError } from '../../../src/runtime/api-error.ts';
import { startLoopbackServer, type LoopbackServer } from '../../fixtures/loopback-server.ts';

let loopback: LoopbackServer;
let handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => void res.end('{}');
const seen: { url: string; authorization: string | undefined; socket: unknown }[] = [];

before(async () => {
  loopback = await startLoopbackServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization, socket: req.socket });
    handle(req, res);
  });
});

after(() => loopback.close());

const kubeConfig = (token: string, path?: string): KubeConfig => loopback.kubeConfig({ token, ...(path !== undefined ? { path } : {}) });

const GET = { method: 'GET', path: '/api/v1/namespaces/ns/secrets/s', operation: 'get secret ns/s' } as const;

describe('ApiChannel', () => {
  test('one pool and one set of credentials until the renewal period ends; then fresh ones', async () => {
    let now = 0;
    const channel = new ApiChannel(kubeConfig('first'), { renewMs: 1000, now: () => now });
    handle = (_req, res) => void res.end('{"kind":"Secret"}');
    seen.length = 0;
    const first = await channel.get();
    assert.deepEqual(await sendApiRequest(first, GET, AbortSignal.timeout(5000), true), { kind: 'Secret' });
    for (let i = 0; i < 5; i++) {
      assert.equal(await channel.get(), first);
      await sendApiRequest(await channel.get(), GET, AbortSignal.timeout(5000), i % 2 === 0);
    }
    assert.equal(channel.renewals, 1);
    assert.deepEqual(new Set(seen.map((s) => s.authorization)), new Set(['Bearer first']));
    // A connection goes back to the pool a moment after its answer is read, so the next
    // request may open a second one; but not one per request.
    assert.ok(new Set(seen.map((s) => s.socket)).size <= 2, 'six requests over kept-alive connections');
    now = 1000;
    assert.notEqual(await channel.get(), first, 'fresh credentials and pool after the renewal period');
    assert.equal(channel.renewals, 2);
    await channel.close();
  });

  test('a server under a path prefix gets it on every request; invalidate() renews at once', async () => {
    const channel = new ApiChannel(kubeConfig('t', '/proxy/k8s/'));
    handle = (_req, res) => void res.end('{}');
    seen.length = 0;
    await sendApiRequest(await channel.get(), GET, AbortSignal.timeout(5000), true);
    assert.equal(seen[0]?.url, '/proxy/k8s/api/v1/namespaces/ns/secrets/s');
    const before = await channel.get();
    channel.invalidate();
    assert.notEqual(await channel.get(), before);
    await channel.close();
  });

  test("an error answer is the apiserver's Status; a refused connection is code 0", async () => {
    const channel = new ApiChannel(kubeConfig('t'));
    handle = (_req, res) => {
      res.writeHead(409, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', reason: 'Conflict', message: 'the object has been modified' }));
    };
    await assert.rejects(sendApiRequest(await channel.get(), GET, AbortSignal.timeout(5000), false), (e: unknown) => e instanceof KubeApiError && e.code === 409 && e.reason === 'Conflict' && /get secret ns\/s: 409 Conflict: the object has been modified/.test(e.message));
    await channel.close();
    const nobody = new KubeConfig();
    nobody.loadFromOptions({ clusters: [{ name: 'c', server: 'http://127.0.0.1:1', skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    const refused = new ApiChannel(nobody);
    await assert.rejects(sendApiRequest(await refused.get(), GET, AbortSignal.timeout(5000), false), (e: unknown) => e instanceof KubeApiError && e.code === 0 && e.reason === 'ECONNREFUSED');
    await refused.close();
  });
});

describe('streamWatch', () => {
  const WATCH = { resourceVersion: '7', timeoutSeconds: 300, idleMs: 60_000, labelSelector: 'a=b' };

  test('events split across chunks (a multi-byte character included) arrive whole, in order; the query asks for bookmarks', async () => {
    const lines = [
      { type: 'ADDED', object: { metadata: { name: 'é-1', resourceVersion: '8' } } },
      { type: 'BOOKMARK', object: { metadata: { resourceVersion: '9' } } },
      { type: 'DELETED', object: { metadata: { name: 'ü-2', resourceVersion: '10' } } },
    ];
    const bytes = Buffer.from(lines.map((l) => JSON.stringify(l) + '\n').join(''));
    handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // One byte at a time splits every line and every multi-byte character.
      let i = 0;
      const next = (): void => {
        if (i >= bytes.length) return void res.end();
        res.write(bytes.subarray(i, ++i), next);
      };
      next();
    };
    seen.length = 0;
    const channel = new ApiChannel(kubeConfig('t'));
    const events: WatchEvent[] = [];
    await streamWatch(await channel.get(), '/apis/g/v/namespaces/ns/things', WATCH, (e) => void events.push(e), AbortSignal.timeout(10_000));
    assert.deepEqual(events, lines);
    const query = new URL(seen[0]?.url ?? '', 'http://x').searchParams;
    assert.deepEqual(Object.fromEntries(query), { watch: '1', resourceVersion: '7', allowWatchBookmarks: 'true', timeoutSeconds: '300', labelSelector: 'a=b' });
    await channel.close();
  });

  test('a stream silent for idleMs ends like one the server ended; an error answer rejects with its Status', async () => {
    const channel = new ApiChannel(kubeConfig('t'));
    handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a' } } }) + '\n'); // then nothing
    };
    const events: WatchEvent[] = [];
    await streamWatch(await channel.get(), '/apis/g/v/things', { ...WATCH, idleMs: 200 }, (e) => void events.push(e), AbortSignal.timeout(10_000));
    assert.equal(events.length, 1);
    handle = (_req, res) => {
      res.writeHead(410, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' }));
    };
    const expired = (e: unknown): boolean => e instanceof KubeApiError && e.code === 410 && e.reason === 'Expired';
    await assert.rejects(streamWatch(await channel.get(), '/apis/g/v/things', WATCH, () => undefined, AbortSignal.timeout(10_000)), expired);
    // The watch cache answers 200 and says it in an ERROR event.
    handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' } }) + '\n');
    };
    await assert.rejects(streamWatch(await channel.get(), '/apis/g/v/things', WATCH, () => undefined, AbortSignal.timeout(10_000)), expired);
    // A line that is no watch event (a proxy's error page) is named as such, not as a broken connection.
    handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('<html>bad gateway</html>\n');
    };
    await assert.rejects(streamWatch(await channel.get(), '/apis/g/v/things', WATCH, () => undefined, AbortSignal.timeout(10_000)), (e: unknown) => e instanceof KubeApiError && e.reason === 'BadWatchEvent' && /<html>bad gateway/.test(e.message));
    await channel.close();
  });
});
