import { strict as assert } from 'node:assert';
import { describe, it, mock } from 'node:test';
import { KubeConfig, RequestContext, HttpMethod } from '@kubernetes/client-node';
import { ConnectionReuse } from '../../../src/runtime/connection-reuse.ts';

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/** A stand-in for the undici Agent client-node builds per request: only close() is used. */
function fakeDispatcher(): Dispatcher & { closed: number } {
  const d = { closed: 0, close: async () => void d.closed++ };
  return d as unknown as Dispatcher & { closed: number };
}

/** A kubeconfig with a TLS server and a token: client-node builds a dispatcher for each of its requests. */
function tlsKubeConfig(token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1', caData: Buffer.from('not a real CA').toString('base64') }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

describe('ConnectionReuse', () => {
  it('hands every request the first dispatcher until the renewal period ends', (t) => {
    t.after(() => mock.timers.reset());
    mock.timers.enable({ apis: ['setTimeout'] });
    let now = 0;
    const reuse = new ConnectionReuse({ renewMs: 1000, now: () => now });
    const first = fakeDispatcher();
    assert.equal(reuse.dispatcherFor(first), first);
    for (let i = 0; i < 5; i++) assert.equal(reuse.dispatcherFor(fakeDispatcher()), first);
    assert.equal(reuse.adopted, 1);
    now = 1000;
    const fresh = fakeDispatcher();
    assert.equal(reuse.dispatcherFor(fresh), fresh, 'a fresh pool (current credentials) takes over');
    assert.equal(first.closed, 0, 'a request handed the previous pool just now can still use it');
    mock.timers.tick(60_000);
    assert.equal(first.closed, 1, 'the previous pool is closed after the grace period');
    assert.equal(reuse.adopted, 2);
  });

  it('replaces the dispatcher client-node builds for each request of a kubeconfig with TLS', async () => {
    const kc = tlsKubeConfig('t');
    const reuse = new ConnectionReuse();
    const seen = new Set<unknown>();
    for (let i = 0; i < 3; i++) {
      const context = new RequestContext('https://127.0.0.1:1/api', HttpMethod.GET);
      await kc.applySecurityAuthentication(context);
      assert.ok(context.getDispatcher(), 'client-node builds a dispatcher per request');
      const after = await reuse.middleware.pre(context).toPromise();
      seen.add(after.getDispatcher());
    }
    assert.equal(seen.size, 1, 'all requests share one pool');
    await reuse.close();
  });

  it("offers the pool with the last request's credentials (not its own headers) until the renewal period ends", async () => {
    const kc = tlsKubeConfig('secret-token');
    let now = 0;
    const reuse = new ConnectionReuse({ renewMs: 1000, now: () => now });
    assert.equal(reuse.channel(), undefined, 'nothing before the first request');
    const context = new RequestContext('https://127.0.0.1:1/api', HttpMethod.PATCH);
    context.setHeaderParam('Content-Type', 'application/apply-patch+yaml');
    await kc.applySecurityAuthentication(context);
    const sent = await reuse.middleware.pre(context).toPromise();
    const channel = reuse.channel();
    assert.equal(channel?.dispatcher, sent.getDispatcher());
    assert.deepEqual(channel?.headers, { authorization: 'Bearer secret-token' });
    now = 999;
    assert.ok(reuse.channel());
    now = 1000;
    assert.equal(reuse.channel(), undefined, 'stale credentials: the next request goes through the library, which renews them');
    await reuse.close();
  });
});
