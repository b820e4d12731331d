/**
 * The provider's wiring over real sockets, against a small loopback stand-in for
 * Consul's HTTP API (blocking queries included): sources share one pool and, per read
 * scope, one feed; the token travels with each request; the pool never holds more
 * sockets than its cap; a check-less add is pushed with the service that changed; an
 * endpoint that stops answering fails snapshots with the liveness error.
 * (The same properties against the real agent: test/integration/consul-shared.test.ts.)
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Registry } from 'prom-client';
import { silentLogger } from '../../../src/metrics/logger.ts';
import { ProviderMetrics } from '../../../src/metrics/provider-metrics.ts';
import { createConsulProviderFactory } from '../../../src/providers/consul/index.ts';
import { isProviderError } from '../../../src/providers/errors.ts';
import type { Provider } from '../../../src/providers/provider.ts';
import { source } from '../../fixtures/builders.ts';

class StandIn {
  index = 100;
  frozen = false;
  readonly tokens = new Set<string>();
  readonly services = new Map<string, { index: number; ids: string[] }>();
  private readonly waiting = new Set<() => void>();
  private readonly sockets = new Set<Socket>();
  maxSockets = 0;
  readonly server = http.createServer((req, res) => void this.handle(req, res));

  constructor(count: number) {
    for (let i = 0; i < count; i++) this.services.set(`svc-${i}`, { index: 100, ids: [`svc-${i}-1`] });
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      this.maxSockets = Math.max(this.maxSockets, this.sockets.size);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  add(service: string, id: string): void {
    this.index += 1;
    const s = this.services.get(service);
    assert.ok(s);
    s.ids.push(id);
    s.index = this.index;
    for (const w of [...this.waiting]) w();
  }

  /** Blocking queries waiting for a change. */
  get blocked(): number {
    return this.waiting.size;
  }

  close(): void {
    for (const w of [...this.waiting]) w();
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.frozen) return; // a frozen agent: the request is never answered
    const url = new URL(req.url ?? '/', 'http://x');
    const token = req.headers['x-consul-token'];
    if (typeof token === 'string') this.tokens.add(token);
    const wantIndex = Number(url.searchParams.get('index') ?? '0');
    const answer = (): { index: number; body: unknown } => {
      if (url.pathname === '/v1/status/leader') return { index: 0, body: '127.0.0.1:8300' };
      if (url.pathname === '/v1/catalog/services') return { index: this.index, body: Object.fromEntries([...this.services.keys()].map((n) => [n, []])) };
      if (url.pathname === '/v1/catalog/nodes') return { index: 100, body: [] };
      if (url.pathname === '/v1/health/state/any') return { index: 100, body: [] };
      if (url.pathname === '/v1/internal/ui/services') {
        const summary = [...this.services].map(([Name, svc]) => ({ Name, Tags: [], Nodes: ['n1'], InstanceCount: svc.ids.length, ChecksPassing: 0, ChecksWarning: 0, ChecksCritical: 0 }));
        return { index: this.index, body: summary };
      }
      const name = decodeURIComponent(url.pathname.replace('/v1/health/service/', ''));
      const svc = this.services.get(name) ?? { index: 1, ids: [] };
      const body = url.searchParams.has('filter')
        ? []
        : svc.ids.map((id) => ({ Node: { Node: 'n1', Address: '10.0.0.1', Datacenter: 'dc1', Meta: {}, TaggedAddresses: {} }, Service: { ID: id, Service: name, Tags: [], Address: '', Port: 80, Meta: {} }, Checks: [] }));
      return { index: svc.index, body };
    };
    let a = answer();
    while (wantIndex > 0 && a.index === wantIndex && !this.frozen) {
      await new Promise<void>((resolve) => {
        const w = (): void => {
          this.waiting.delete(w);
          resolve();
        };
        this.waiting.add(w);
        res.once('close', w); // the client went away
      });
      if (res.destroyed) return;
      a = answer();
    }
    if (this.frozen) return;
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('X-Consul-Index', String(a.index));
    res.end(JSON.stringify(a.body));
  }
}

const open: Array<{ close(): Promise<void> } | { close(): void }> = [];
after(async () => {
  for (const o of open.reverse()) await o.close();
});

function makeProvider(factory: ReturnType<typeof createConsulProviderFactory>, address: string, token: string, onChange?: () => void): Provider {
  const spec = source('s').consul({ address, tokenSecretRef: { name: 'tok', key: 'token' } }).build().spec;
  const p = factory.create({ source: `default/${token}`, spec, secrets: new Map([['tok/token', token]]), metrics: new ProviderMetrics(new Registry()), log: silentLogger });
  if (onChange) p.watch?.(onChange);
  open.push(p);
  return p;
}

test('sources share one pool and a feed per token; the pool stays under its cap; an add is pushed with its service', async () => {
  const consul = new StandIn(40);
  const address = await consul.listen();
  open.push(consul);
  const factory = createConsulProviderFactory({ maxConnections: 10, livenessBoundMs: 60_000 });
  let pushed = 0;
  const a1 = makeProvider(factory, address, 'token-a', () => (pushed += 1));
  const a2 = makeProvider(factory, address, 'token-a', () => undefined);
  const b = makeProvider(factory, address, 'token-b', () => undefined);
  assert.equal(factory.hub.poolCount, 1, 'one pool for the endpoint');
  assert.equal(factory.hub.feedCount, 2, 'one feed per token');
  for (const p of [a1, a2, b]) assert.equal((await p.snapshot(AbortSignal.timeout(10_000))).endpoints.length, 40);
  assert.deepEqual([...consul.tokens].sort(), ['token-a', 'token-b'], 'each request carries its own source token');

  // Wait for the blocking queries to be in place, then add an instance without a check.
  for (let i = 0; i < 500 && consul.blocked < 6; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(consul.blocked, 6, 'three blocking queries per feed');
  await new Promise((r) => setImmediate(r)); // the notifications of the first answers go out on the next turn
  const before = pushed;
  consul.add('svc-17', 'svc-17-2');
  for (let i = 0; i < 500 && pushed === before; i++) await new Promise((r) => setTimeout(r, 10));
  let snap = await a1.snapshot(AbortSignal.timeout(10_000));
  for (let i = 0; i < 500 && snap.endpoints.length === 40; i++) {
    await new Promise((r) => setTimeout(r, 10));
    snap = await a1.snapshot(AbortSignal.timeout(10_000));
  }
  assert.equal(snap.endpoints.length, 41);
  assert.ok(pushed > before, 'the change was pushed');
  assert.ok(consul.maxSockets <= 10, `at most 10 sockets, the stand-in saw ${consul.maxSockets}`);
});

test('an endpoint that stops answering fails snapshots with the liveness error, and comes back by itself', async () => {
  const consul = new StandIn(3);
  const address = await consul.listen();
  open.push(consul);
  const factory = createConsulProviderFactory({ maxConnections: 8, livenessBoundMs: 1_500 });
  let pushes = 0;
  const p = makeProvider(factory, address, 't', () => (pushes += 1));
  assert.equal((await p.snapshot(AbortSignal.timeout(10_000))).endpoints.length, 3);
  consul.frozen = true;
  // Snapshots keep coming from the cache until the endpoint is judged down.
  let failure: unknown;
  for (let i = 0; i < 1000 && failure === undefined; i++) {
    await p.snapshot(AbortSignal.timeout(10_000)).then(
      () => new Promise((r) => setTimeout(r, 10)),
      (e: unknown) => (failure = e),
    );
  }
  assert.ok(isProviderError(failure) && failure.kind === 'Timeout' && /liveness bound 2 s/.test(failure.message), String(failure));
  assert.ok(pushes > 0, 'sources were told');
  consul.frozen = false;
  let back: number | undefined;
  for (let i = 0; i < 1000 && back === undefined; i++) {
    await p.snapshot(AbortSignal.timeout(10_000)).then(
      (s) => (back = s.endpoints.length),
      () => new Promise((r) => setTimeout(r, 10)),
    );
  }
  assert.equal(back, 3, 'back by itself');
});
