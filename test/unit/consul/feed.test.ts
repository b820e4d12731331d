/**
 * The shared feed against an in-memory stand-in for Consul's blocking-query semantics:
 * which services a change makes it read, and what it tells its sources.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { silentLogger } from '../../../src/metrics/logger.ts';
import type { ConsulResponse, Query } from '../../../src/providers/consul/client.ts';
import { CatalogFeed, PROBE_FILTER, type FeedPool, type FeedSubscriber } from '../../../src/providers/consul/feed.ts';
import type { PoolRequest } from '../../../src/providers/consul/pool.ts';

interface Instance {
  readonly id: string;
  readonly address: string;
  readonly check?: string;
}

/** A catalog whose indexes move as Consul's do: the service list on any instance change, a service's own on its changes, checks on check changes. */
class FakeConsul implements FeedPool {
  private raft = 10;
  private catalogIndex = 10;
  private checksIndex = 10;
  private readonly services = new Map<string, { index: number; instances: Instance[] }>();
  private nodesIndex = 10;
  /** External nodes by name: their ModifyIndex and the one service each runs. */
  private readonly nodes = new Map<string, { index: number; service: string }>();
  private readonly wake = new Set<() => void>();
  readonly operations: string[] = [];
  readonly readSlots = 8;
  /** While set, probes wait for it (a slow sweep). */
  probeGate: Promise<void> | undefined;
  probesInFlight = 0;
  maxProbesInFlight = 0;

  constructor(names: readonly string[]) {
    for (const n of names) this.services.set(n, { index: 10, instances: [{ id: `${n}-1`, address: '10.0.0.1' }] });
  }

  upsert(service: string, instance: Instance): void {
    this.raft += 1;
    const svc = this.services.get(service) ?? { index: 0, instances: [] };
    svc.instances = [...svc.instances.filter((i) => i.id !== instance.id), instance];
    svc.index = this.raft;
    this.services.set(service, svc);
    this.catalogIndex = this.raft;
    if (instance.check) this.checksIndex = this.raft;
    for (const w of [...this.wake]) w();
  }

  /** A node re-addressed: the node list's index and its service's own index move, not the service list's. */
  moveNode(node: string, service: string, address: string): void {
    this.raft += 1;
    this.nodes.set(node, { index: this.raft, service });
    const svc = this.services.get(service);
    assert.ok(svc);
    svc.instances = [...svc.instances.filter((i) => i.id !== node), { id: node, address }];
    svc.index = this.raft;
    this.nodesIndex = this.raft;
    for (const w of [...this.wake]) w();
  }

  setCheck(service: string, id: string, status: string): void {
    this.raft += 1;
    const svc = this.services.get(service);
    assert.ok(svc);
    svc.instances = svc.instances.map((i) => (i.id === id ? { ...i, check: status } : i));
    svc.index = this.raft;
    this.checksIndex = this.raft;
    for (const w of [...this.wake]) w();
  }

  count(operation: string): number {
    return this.operations.filter((o) => o === operation).length;
  }

  async read(path: string, query: Query, req: PoolRequest): Promise<ConsulResponse> {
    this.operations.push(req.operation);
    if (req.operation !== 'probe_health_service') return this.answer(path, query);
    this.probesInFlight += 1;
    this.maxProbesInFlight = Math.max(this.maxProbesInFlight, this.probesInFlight);
    try {
      await this.probeGate;
      return this.answer(path, query);
    } finally {
      this.probesInFlight -= 1;
    }
  }

  async block(path: string, query: Query, req: PoolRequest & { index: number }): Promise<ConsulResponse> {
    this.operations.push(req.operation);
    for (;;) {
      const res = this.answer(path, query);
      if (res.index !== req.index) return res;
      await new Promise<void>((resolve, reject) => {
        const w = (): void => {
          this.wake.delete(w);
          resolve();
        };
        this.wake.add(w);
        req.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
      });
    }
  }

  onLiveness(): () => void {
    return () => undefined;
  }

  private answer(path: string, query: Query): ConsulResponse {
    const base = { filteredByAcls: false, knownLeader: true };
    if (path === '/v1/catalog/services') {
      return { ...base, index: this.catalogIndex, body: Object.fromEntries([...this.services.keys()].map((n) => [n, []])) };
    }
    if (path === '/v1/catalog/nodes') {
      const body = [{ Node: 'n1', Address: '10.0.0.9', ModifyIndex: 10 }, ...[...this.nodes].map(([Node, n]) => ({ Node, Address: '10.9.9.9', ModifyIndex: n.index }))];
      return { ...base, index: this.nodesIndex, body };
    }
    if (path.startsWith('/v1/catalog/node-services/')) {
      const node = this.nodes.get(decodeURIComponent(path.replace('/v1/catalog/node-services/', '')));
      return { ...base, index: this.nodesIndex, body: { Node: {}, Services: node ? [{ ID: 'x', Service: node.service }] : null } };
    }
    if (path === '/v1/health/state/any') {
      const body = [...this.services].flatMap(([name, s]) =>
        s.instances.filter((i) => i.check).map((i) => ({ Node: 'n1', CheckID: `${i.id}-check`, Status: i.check, ServiceName: name })),
      );
      return { ...base, index: this.checksIndex, body };
    }
    const name = decodeURIComponent(path.replace('/v1/health/service/', ''));
    const svc = this.services.get(name) ?? { index: 1, instances: [] };
    const probe = query.some(([k, v]) => k === 'filter' && v === PROBE_FILTER);
    const body = probe
      ? []
      : svc.instances.map((i) => ({
          Node: { Node: 'n1', Address: '10.0.0.9', Datacenter: 'dc1', Meta: {}, TaggedAddresses: {} },
          Service: { ID: i.id, Service: name, Tags: [], Address: i.address, Port: 80, Meta: {} },
          Checks: i.check ? [{ CheckID: `${i.id}-check`, Status: i.check, ServiceID: i.id }] : [],
        }));
    return { ...base, index: svc.index, body };
  }
}

function subscriber(): FeedSubscriber & { readonly seen: Array<string[] | 'all'> } {
  const seen: Array<string[] | 'all'> = [];
  return {
    seen,
    watching: true,
    timeoutMs: 1000,
    select: (catalog) => [...catalog.keys()],
    changed: (services) => seen.push(services ? [...services].sort() : 'all'),
  };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !ok(); i++) await tick();
  assert.ok(ok(), `timed out waiting for ${what}`);
}

const tuning = { waitMs: 60_000, backoffBaseMs: 10, backoffMaxMs: 100 };
const names = Array.from({ length: 100 }, (_, i) => `svc-${String(i).padStart(3, '0')}`);

test('an instance added without a check moves only the catalog index: one sweep of probes, one full read of the touched service', async () => {
  const consul = new FakeConsul(names);
  const feed = new CatalogFeed(consul, { nodeMeta: {} }, silentLogger, tuning);
  const sub = subscriber();
  const unsubscribe = feed.subscribe(sub);
  await feed.fullRead(AbortSignal.timeout(5000), sub);
  assert.equal(consul.count('health_service'), 100);
  await until('both blocking queries to wait', () => consul.count('watch_catalog_services') >= 2 && consul.count('watch_health_state') >= 2);
  sub.seen.length = 0;
  const probes = consul.count('probe_health_service');

  consul.upsert('svc-042', { id: 'svc-042-2', address: '10.0.0.2' });
  await until('a change notification', () => sub.seen.length > 0);
  assert.deepEqual(sub.seen, [['svc-042']], 'the sources are told which service changed');
  assert.equal(consul.count('health_service'), 101, 'only the touched service is read in full');
  assert.equal(consul.count('probe_health_service') - probes, 100, 'one cheap probe per service finds it');
  const view = feed.viewFor(sub);
  assert.deepEqual(view?.answers.get('svc-042')?.entries.map((e) => e.Service.ID), ['svc-042-1', 'svc-042-2']);
  unsubscribe();
  feed.close();
});

test('a check flip is read at once from the health-state answer, without a sweep', async () => {
  const consul = new FakeConsul(names);
  consul.upsert('svc-007', { id: 'svc-007-1', address: '10.0.0.1', check: 'passing' });
  const feed = new CatalogFeed(consul, { nodeMeta: {} }, silentLogger, tuning);
  const sub = subscriber();
  feed.subscribe(sub);
  await feed.fullRead(AbortSignal.timeout(5000), sub);
  await until('both blocking queries to wait', () => consul.count('watch_catalog_services') >= 2 && consul.count('watch_health_state') >= 2);
  sub.seen.length = 0;
  const before = { probes: consul.count('probe_health_service'), reads: consul.count('health_service') };
  consul.setCheck('svc-007', 'svc-007-1', 'critical');
  await until('a change notification', () => sub.seen.length > 0);
  assert.deepEqual(sub.seen, [['svc-007']]);
  assert.equal(consul.count('health_service') - before.reads, 1);
  assert.equal(consul.count('probe_health_service') - before.probes, 0, 'no sweep for a check change');
  feed.close();
});

test('the cache counts as current only while younger than the age asked for', async () => {
  const consul = new FakeConsul(names.slice(0, 3));
  const feed = new CatalogFeed(consul, { nodeMeta: {} }, silentLogger, tuning);
  const sub = subscriber();
  feed.subscribe(sub);
  await feed.fullRead(AbortSignal.timeout(5000), sub);
  await until('both blocking queries to answer', () => consul.count('watch_catalog_services') >= 2 && consul.count('watch_health_state') >= 2);
  assert.equal(feed.isCurrent(sub, 60_000), true);
  assert.equal(feed.isCurrent(sub, 0), false, 'an interval tick asks for a younger cache than this one: a full read follows');
  feed.close();
});

test('a source that joins a running feed gets its own services read and a complete view', async () => {
  const consul = new FakeConsul(['web', 'pay']);
  const feed = new CatalogFeed(consul, { nodeMeta: {} }, silentLogger, tuning);
  const first = { ...subscriber(), select: () => ['web'] };
  const unsubscribeFirst = feed.subscribe(first);
  await feed.fullRead(AbortSignal.timeout(5000), first);
  assert.ok(feed.viewFor(first));

  const second = { ...subscriber(), select: () => ['pay'] };
  const unsubscribeSecond = feed.subscribe(second);
  assert.equal(feed.viewFor(second), undefined, 'nothing cached for pay yet');
  await feed.readMissing(second, AbortSignal.timeout(5000));
  const view = feed.viewFor(second);
  assert.deepEqual([...(view?.answers.keys() ?? [])], ['pay']);
  assert.deepEqual(view?.answers.get('pay')?.entries.map((e) => e.Service.ID), ['pay-1']);
  unsubscribeSecond();
  unsubscribeFirst();
  await feed.close();
});

/** A gate that holds every probe until opened. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

async function watchingFeed(consul: FakeConsul): Promise<{ feed: CatalogFeed; sub: ReturnType<typeof subscriber> }> {
  const feed = new CatalogFeed(consul, { nodeMeta: {} }, silentLogger, tuning);
  const sub = subscriber();
  feed.subscribe(sub);
  await feed.fullRead(AbortSignal.timeout(5000), sub);
  await until('the blocking queries to wait', () => consul.count('watch_catalog_services') >= 2 && consul.count('watch_health_state') >= 2);
  sub.seen.length = 0;
  return { feed, sub };
}

test('a check flip is read and told while a sweep is held: health answers never queue behind probes', async () => {
  const consul = new FakeConsul(names);
  consul.upsert('svc-007', { id: 'svc-007-1', address: '10.0.0.1', check: 'passing' });
  const { feed, sub } = await watchingFeed(consul);
  const held = gate();
  consul.probeGate = held.promise;
  consul.upsert('svc-050', { id: 'svc-050-2', address: '10.0.0.2' });
  await until('the sweep to start', () => consul.probesInFlight > 0);
  consul.setCheck('svc-007', 'svc-007-1', 'critical');
  await until('the flip to be told', () => sub.seen.some((s) => s !== 'all' && s.includes('svc-007')));
  assert.ok(feed.sweepQueued > 0, 'the sweep is still under way');
  assert.deepEqual(sub.seen, [['svc-007']], 'only the flip so far');
  held.open();
  consul.probeGate = undefined;
  await until('the add to be told', () => sub.seen.some((s) => s !== 'all' && s.includes('svc-050')));
  await feed.close();
});

test('probes hold at most half the read slots; a change during a sweep re-probes only the services already probed', async () => {
  const consul = new FakeConsul(names);
  const { feed, sub } = await watchingFeed(consul);
  const held = gate();
  consul.probeGate = held.promise;
  const probes = consul.count('probe_health_service');
  consul.upsert('svc-090', { id: 'svc-090-2', address: '10.0.0.2' });
  await until('the sweep to start', () => consul.probesInFlight > 0);
  // Ten more changes while the first probes are held: the queue already holds every other service.
  for (let i = 0; i < 10; i++) consul.upsert('svc-091', { id: `svc-091-${i}`, address: `10.0.1.${i}` });
  await tick();
  assert.equal(feed.sweepQueued, 100, 'each service queued once: the held ones again, the rest kept their place');
  held.open();
  consul.probeGate = undefined;
  await until('both changes told', () => ['svc-090', 'svc-091'].every((n) => sub.seen.some((s) => s !== 'all' && s.includes(n))));
  await until('the sweep to finish', () => feed.sweepQueued === 0 && consul.probesInFlight === 0);
  assert.equal(consul.maxProbesInFlight, consul.readSlots / 2, 'probes leave half the read slots free');
  assert.ok(consul.count('probe_health_service') - probes <= 100 + consul.readSlots / 2 + 2, 'about one pass, not one per change');
  const view = feed.viewFor(sub);
  assert.equal(view?.answers.get('svc-091')?.entries.length, 10, 'the last state of the busy service (svc-091-0 to -9)');
  await feed.close();
});

test('a moved service is read and told as soon as its probe answers, before the pass ends', async () => {
  const consul = new FakeConsul(names);
  const { feed, sub } = await watchingFeed(consul);
  const probed = new Set<string>();
  const inner = consul.read.bind(consul);
  let release = gate();
  // Probes answer one at a time: each waits for the test to let it through.
  consul.read = async (path, query, req) => {
    if (req.operation === 'probe_health_service') {
      probed.add(path);
      await release.promise;
    }
    return inner(path, query, req);
  };
  consul.upsert('svc-003', { id: 'svc-003-2', address: '10.0.0.2' });
  for (let i = 0; i < 50 && !sub.seen.some((s) => s !== 'all' && s.includes('svc-003')); i++) {
    release.open();
    release = gate();
    await until('more probes', () => probed.size > i);
  }
  release.open();
  assert.ok(sub.seen.some((s) => s !== 'all' && s.includes('svc-003')), 'told about svc-003');
  assert.ok(probed.size < 50, `told after ${probed.size} of 100 probes`);
  await feed.close();
});

test('the interval bounds staleness per source: a service left unread longer than the age asked for makes its source read in full', async () => {
  const consul = new FakeConsul(['web', 'pay']);
  const feed = new CatalogFeed(consul, { nodeMeta: {} }, silentLogger, tuning);
  const web = { ...subscriber(), select: () => ['web'] };
  const pay = { ...subscriber(), select: () => ['pay'] };
  feed.subscribe(web);
  feed.subscribe(pay);
  await feed.fullRead(AbortSignal.timeout(5000), web);
  await until('the blocking queries to wait', () => consul.count('watch_catalog_services') >= 2 && consul.count('watch_health_state') >= 2);
  assert.equal(feed.isCurrent(web, 60_000), true);
  assert.equal(feed.isCurrent(pay, 60_000), false, "web's full read read only web's services");
  const reads = consul.count('health_service');
  await feed.fullRead(AbortSignal.timeout(5000), pay);
  assert.equal(consul.count('health_service') - reads, 1, "pay's full read reads pay only");
  assert.equal(feed.isCurrent(pay, 60_000), true);
  await feed.close();
});

test('a changed node is looked up and its services read at once, without waiting for the sweep', async () => {
  const consul = new FakeConsul(names);
  const { feed, sub } = await watchingFeed(consul);
  await until('the node-list query to wait', () => consul.count('watch_catalog_nodes') >= 2);
  const held = gate();
  consul.probeGate = held.promise;
  consul.moveNode('vm-77', 'svc-077', '10.7.7.7');
  await until('the node change to be told', () => sub.seen.some((s) => s !== 'all' && s.includes('svc-077')));
  assert.equal(consul.count('node_services'), 1, 'one lookup for the one changed node');
  assert.ok(feed.sweepQueued > 0, 'the sweep is still held');
  assert.deepEqual(feed.viewFor(sub)?.answers.get('svc-077')?.entries.map((e) => e.Service.Address).sort(), ['10.0.0.1', '10.7.7.7']);
  held.open();
  consul.probeGate = undefined;
  await feed.close();
});

test('a full re-read that finds a service unchanged keeps its entries, so what was made of them is reused', async () => {
  const consul = new FakeConsul(names.slice(0, 3));
  consul.upsert('svc-001', { id: 'svc-001-2', address: '10.0.0.2' });
  const feed = new CatalogFeed(consul, { nodeMeta: {} }, silentLogger, tuning);
  const sub = subscriber();
  feed.subscribe(sub);
  await feed.fullRead(AbortSignal.timeout(5000), sub);
  const before = feed.viewFor(sub)?.answers.get('svc-001');
  const reads = consul.count('health_service');
  await feed.fullRead(AbortSignal.timeout(5000), sub);
  assert.ok(consul.count('health_service') > reads, 'the service was read again');
  const after = feed.viewFor(sub)?.answers.get('svc-001');
  assert.ok(before && after);
  assert.equal(after.entries, before.entries, 'the same entries, not an equal copy');
  assert.equal(after.fingerprint.length < 64, true, 'a digest is kept, not the JSON of the answer');
  await feed.close();
});
