/**
 * The shared feed against an in-memory stand-in for Consul's blocking-query semantics:
 * which services a change makes it read, and what it tells its sources.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { silentLogger } from '../../../src/metrics/logger.ts';
import type { ConsulResponse, Query, StreamRequest } from '../../../src/providers/consul/client.ts';
import { NON_PASSING_FILTER } from '../../../src/providers/consul/check-fingerprints.ts';
import { CatalogFeed, NODES_INDEX_ONLY, PROBE_FILTER, type FeedOptions, type FeedPool, type FeedSubscriber } from '../../../src/providers/consul/feed.ts';
import type { PoolRequest } from '../../../src/providers/consul/pool.ts';
import { ProviderError } from '../../../src/providers/errors.ts';

interface Instance {
  readonly id: string;
  readonly address: string;
  readonly check?: string;
  /** The node the instance runs on (n1 unless set). */
  readonly node?: string;
}

const nodeOf = (i: Instance): string => i.node ?? 'n1';

/** A catalog whose indexes move as Consul's do: the service list on any instance change, a service's own on its changes, checks on check changes. */
class FakeConsul implements FeedPool {
  private raft = 10;
  private catalogIndex = 10;
  private checksIndex = 10;
  private readonly services = new Map<string, { index: number; instances: Instance[] }>();
  private nodesIndex = 10;
  /** External nodes by name: their ModifyIndex and the one service each runs. */
  private readonly nodes = new Map<string, { index: number; service: string }>();
  /** Node-level checks (serfHealth) by node. */
  private readonly nodeChecks = new Map<string, string>();
  private readonly wake = new Set<() => void>();
  readonly operations: string[] = [];
  readonly queries: Array<{ path: string; query: Query }> = [];
  readonly readSlots = 8;
  /** While set, probes wait for it (a slow sweep). */
  probeGate: Promise<void> | undefined;
  probesInFlight = 0;
  maxProbesInFlight = 0;
  /** The catalog summary fails (an older Consul, or a token that may not read it). */
  summaryFails = false;
  /** Requests in raw mode get their body as bytes, as the real client gives it. */
  rawBodies = false;

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
    this.changed();
  }

  /** An instance deregistered; its node stays: only the service's and the catalog's index move. */
  remove(service: string, id: string): void {
    this.raft += 1;
    const svc = this.services.get(service);
    assert.ok(svc);
    svc.instances = svc.instances.filter((i) => i.id !== id);
    svc.index = this.raft;
    this.catalogIndex = this.raft;
    this.changed();
  }

  /** A node re-addressed: the node list's index and its service's own index move, not the service list's. */
  moveNode(node: string, service: string, address: string): void {
    this.raft += 1;
    this.nodes.set(node, { index: this.raft, service });
    const svc = this.services.get(service);
    assert.ok(svc);
    svc.instances = [...svc.instances.filter((i) => i.id !== node), { id: node, address, node }];
    svc.index = this.raft;
    this.nodesIndex = this.raft;
    this.changed();
  }

  setCheck(service: string, id: string, status: string): void {
    this.raft += 1;
    const svc = this.services.get(service);
    assert.ok(svc);
    svc.instances = svc.instances.map((i) => (i.id === id ? { ...i, check: status } : i));
    svc.index = this.raft;
    this.checksIndex = this.raft;
    this.changed();
  }

  /** A node-level check: counts for every instance on the node. */
  setNodeCheck(node: string, status: string): void {
    this.raft += 1;
    this.nodeChecks.set(node, status);
    for (const svc of this.services.values()) if (svc.instances.some((i) => nodeOf(i) === node)) svc.index = this.raft;
    this.checksIndex = this.raft;
    this.changed();
  }

  private expiries = 0;

  /** Every blocking query under way returns unchanged, as when its wait runs out. */
  expireWaits(): void {
    this.expiries += 1;
    this.changed();
  }

  count(operation: string): number {
    return this.operations.filter((o) => o === operation).length;
  }

  async read(path: string, query: Query, req: PoolRequest): Promise<ConsulResponse> {
    this.operations.push(req.operation);
    this.queries.push({ path, query });
    if (path === '/v1/internal/ui/services' && this.summaryFails) throw new ProviderError('consul', 'BadResponse', 'GET /v1/internal/ui/services: 403 Permission denied');
    if (req.operation !== 'probe_health_service') return this.shaped(this.answer(path, query), req);
    this.probesInFlight += 1;
    this.maxProbesInFlight = Math.max(this.maxProbesInFlight, this.probesInFlight);
    try {
      await this.probeGate;
      return this.answer(path, query);
    } finally {
      this.probesInFlight -= 1;
    }
  }

  /** The wait each blocking query was sent with, by operation. */
  readonly waits: Array<{ operation: string; waitMs: number }> = [];

  /** Blocking queries (by operation) whose next attempt fails as if the agent were unreachable. */
  readonly failNext = new Set<string>();

  async block(path: string, query: Query, req: PoolRequest & { index: number; waitMs: number }): Promise<ConsulResponse> {
    this.operations.push(req.operation);
    this.queries.push({ path, query });
    if (this.failNext.delete(req.operation)) throw new ProviderError('consul', 'Unreachable', `GET ${path}: connection refused`);
    this.waits.push({ operation: req.operation, waitMs: req.waitMs });
    const generation = this.expiries;
    for (;;) {
      const res = this.shaped(this.answer(path, query), req);
      if (res.index !== req.index || generation !== this.expiries) return res;
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

  /** Blocking slots the pool would grant to service watches (none unless a test gives some). */
  watchSlots = 0;

  /** Whether watches travel as HTTP/2 streams; a test sets it and calls widen(). */
  multiplexed = false;
  private readonly capacity = new Set<() => void>();

  onWatchCapacity(fn: () => void): () => void {
    this.capacity.add(fn);
    return () => this.capacity.delete(fn);
  }

  /** A watch over HTTP/2, as the blocking query it stands for. */
  watchStream(path: string, query: Query, req: StreamRequest, onAnswer: (res: ConsulResponse) => void, onError: (e: ProviderError) => void): () => void {
    const stop = new AbortController();
    this.block(path, query, { ...req, signal: stop.signal, timeoutMs: 1000 }).then(onAnswer, (e: unknown) => {
      if (!stop.signal.aborted) onError(e as ProviderError);
    });
    return () => stop.abort(new Error('cancelled'));
  }

  /** The pool found HTTP/2: room for many more watches. */
  widen(slots: number): void {
    this.multiplexed = true;
    this.watchSlots += slots;
    for (const fn of this.capacity) fn();
  }

  claimWatches(wanted: number): number {
    const granted = Math.min(wanted, this.watchSlots);
    this.watchSlots -= granted;
    return granted;
  }

  releaseWatches(granted: number): void {
    this.watchSlots += granted;
  }

  feedQueries = 0;

  feedQueriesChanged(delta: number): void {
    this.feedQueries += delta;
  }

  private shaped(res: ConsulResponse, req: PoolRequest): ConsulResponse {
    return this.rawBodies && req.raw === true ? { ...res, body: Buffer.from(JSON.stringify(res.body)) } : res;
  }

  private changed(): void {
    for (const w of [...this.wake]) w();
  }

  private checksOf(i: Instance): Array<{ CheckID: string; Status: string; ServiceID: string }> {
    const node = this.nodeChecks.get(nodeOf(i));
    return [...(node ? [{ CheckID: 'serfHealth', Status: node, ServiceID: '' }] : []), ...(i.check ? [{ CheckID: `${i.id}-check`, Status: i.check, ServiceID: i.id }] : [])];
  }

  private answer(path: string, query: Query): ConsulResponse {
    const base = { filteredByAcls: false, knownLeader: true };
    const indexOnly = query.some(([k, v]) => k === 'filter' && v === NODES_INDEX_ONLY);
    if (path === '/v1/catalog/services') {
      return { ...base, index: this.catalogIndex, body: Object.fromEntries([...this.services.keys()].map((n) => [n, []])) };
    }
    if (path === '/v1/internal/ui/services') {
      const body = [...this.services].map(([Name, s]) => {
        const statuses = s.instances.flatMap((i) => this.checksOf(i).map((c) => c.Status));
        const counted = (status: string): number => statuses.filter((x) => x === status).length;
        return { Name, Tags: [], Nodes: [...new Set(s.instances.map(nodeOf))], InstanceCount: s.instances.length, ChecksPassing: counted('passing'), ChecksWarning: counted('warning'), ChecksCritical: counted('critical') };
      });
      return { ...base, index: this.catalogIndex, body };
    }
    if (path === '/v1/catalog/nodes') {
      const body = [{ Node: 'n1', Address: '10.0.0.9', ModifyIndex: 10 }, ...[...this.nodes].map(([Node, n]) => ({ Node, Address: '10.9.9.9', ModifyIndex: n.index }))];
      return { ...base, index: this.nodesIndex, body: indexOnly ? [] : body };
    }
    if (path.startsWith('/v1/catalog/node-services/')) {
      const node = this.nodes.get(decodeURIComponent(path.replace('/v1/catalog/node-services/', '')));
      return { ...base, index: this.nodesIndex, body: { Node: {}, Services: node ? [{ ID: 'x', Service: node.service }] : null } };
    }
    if (path === '/v1/health/state/any') {
      const onlyNonPassing = query.some(([k, v]) => k === 'filter' && v === NON_PASSING_FILTER);
      const serviceChecks = [...this.services].flatMap(([name, s]) =>
        s.instances.filter((i) => i.check).map((i) => ({ Node: nodeOf(i), CheckID: `${i.id}-check`, Status: i.check, ServiceName: name })),
      );
      const nodeChecks = [...this.nodeChecks].map(([Node, Status]) => ({ Node, CheckID: 'serfHealth', Status, ServiceName: '' }));
      const body = [...serviceChecks, ...nodeChecks].filter((c) => !onlyNonPassing || c.Status !== 'passing');
      return { ...base, index: this.checksIndex, body };
    }
    const name = decodeURIComponent(path.replace('/v1/health/service/', ''));
    const svc = this.services.get(name) ?? { index: 1, instances: [] };
    const probe = query.some(([k, v]) => k === 'filter' && v === PROBE_FILTER);
    const body = probe
      ? []
      : svc.instances.map((i) => ({
          Node: { Node: nodeOf(i), Address: '10.0.0.9', Datacenter: 'dc1', Meta: {}, TaggedAddresses: {} },
          Service: { ID: i.id, Service: name, Tags: [], Address: i.address, Port: 80, Meta: {} },
          Checks: this.checksOf(i),
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
    intervalMs: INTERVAL_MS,
    select: (catalog) => [...catalog.keys()],
    changed: (services) => seen.push(services ? [...services].sort() : 'all'),
  };
}

/** Polls at every turn of the event loop (a move's read may wait the feed's short grace timer) for at most 5 s. */
async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = performance.now() + 5000;
  while (!ok() && performance.now() < deadline) await tick();
  assert.ok(ok(), `timed out waiting for ${what}`);
}

/**
 * Waits for the blocking queries to be sent again after their waits ran out: an unchanged
 * answer that came back at once counts as a wait the server did not hold, so the loop
 * pauses for its backoff (a real timer) before it asks again.
 */
async function resent(consul: FakeConsul, atLeast: number): Promise<void> {
  const sent = (): number => consul.count('watch_catalog_services') + consul.count('watch_health_state') + consul.count('watch_catalog_nodes');
  for (let i = 0; i < 1000 && sent() < atLeast; i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(sent() >= atLeast, 'the blocking queries were not sent again');
}

const INTERVAL_MS = 60_000;
/** The sweep period and blocking wait for that interval: 0.4 × 60 s. */
const PERIOD_MS = 24_000;
const tuning = { waitMs: 60_000, backoffBaseMs: 10, backoffMaxMs: 100 };
const names = Array.from({ length: 100 }, (_, i) => `svc-${String(i).padStart(3, '0')}`);

/** A clock the test moves by hand (the feed's ages and the sweep's schedule). */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let at = 1_000_000;
  return { now: () => at, advance: (ms) => (at += ms) };
}

/**
 * A feed with a watching subscriber, past its first full read, its first answers and the
 * sweep that first catalog answer starts (it may follow changes made since the read).
 */
async function watchingFeed(consul: FakeConsul, options: FeedOptions = {}): Promise<{ feed: CatalogFeed; sub: ReturnType<typeof subscriber> }> {
  const feed = new CatalogFeed(consul, { nodeMeta: {} }, silentLogger, tuning, options);
  const sub = subscriber();
  feed.subscribe(sub);
  await feed.fullRead(AbortSignal.timeout(5000), sub);
  await until('the blocking queries to wait', () => ['watch_catalog_services', 'watch_health_state', 'watch_catalog_nodes'].every((op) => consul.count(op) >= 2));
  await until('the first summary and sweep to end', () => consul.count('ui_services') >= 1 && !feed.sweepPassRunning && consul.probesInFlight === 0);
  sub.seen.length = 0;
  return { feed, sub };
}

/** A source of 10 services, each watched one by one (16 watch slots), its watches waiting. */
async function watchedSmallSource(): Promise<{ small: string[]; consul: FakeConsul; feed: CatalogFeed; sub: ReturnType<typeof subscriber> }> {
  const small = names.slice(0, 10);
  const consul = new FakeConsul(small);
  consul.watchSlots = 16;
  const { feed, sub } = await watchingFeed(consul);
  await until('the watches to wait', () => consul.count('watch_health_service') >= 20);
  return { small, consul, feed, sub };
}

const told = (sub: ReturnType<typeof subscriber>, name: string): boolean => sub.seen.some((s) => s !== 'all' && s.includes(name));

test('an instance added without a check is found from the catalog summary: one summary, one read of the touched service, no probes', async () => {
  const consul = new FakeConsul(names);
  const { feed, sub } = await watchingFeed(consul);
  const before = { probes: consul.count('probe_health_service'), reads: consul.count('health_service'), summaries: consul.count('ui_services') };

  consul.upsert('svc-042', { id: 'svc-042-2', address: '10.0.0.2' });
  await until('a change notification', () => sub.seen.length > 0);
  assert.deepEqual(sub.seen, [['svc-042']], 'the sources are told which service changed');
  assert.equal(consul.count('health_service') - before.reads, 1, 'only the touched service is read in full');
  assert.equal(consul.count('ui_services') - before.summaries, 1, 'one summary request for the move');
  assert.equal(consul.count('probe_health_service') - before.probes, 0, 'no service is probed');
  assert.deepEqual(feed.viewFor(sub)?.answers.get('svc-042')?.entries.map((e) => e.Service.ID), ['svc-042-1', 'svc-042-2']);
  await feed.close();
});

test('a removal (the node stays) is found from the summary without probing every service', async () => {
  const consul = new FakeConsul(names);
  consul.upsert('svc-010', { id: 'svc-010-2', address: '10.0.0.2' });
  const { feed, sub } = await watchingFeed(consul);
  const before = { probes: consul.count('probe_health_service'), reads: consul.count('health_service') };

  consul.remove('svc-010', 'svc-010-2');
  await until('the removal to be told', () => told(sub, 'svc-010'));
  assert.deepEqual(feed.viewFor(sub)?.answers.get('svc-010')?.entries.map((e) => e.Service.ID), ['svc-010-1']);
  assert.equal(consul.count('health_service') - before.reads, 1);
  assert.equal(consul.count('probe_health_service') - before.probes, 0, 'no probes: the summary named the service');
  await feed.close();
});

test('a service check flip is read at once from the non-passing checks, without a sweep', async () => {
  const consul = new FakeConsul(names);
  consul.upsert('svc-007', { id: 'svc-007-1', address: '10.0.0.1', check: 'passing' });
  const { feed, sub } = await watchingFeed(consul);
  const before = { probes: consul.count('probe_health_service'), reads: consul.count('health_service') };
  consul.setCheck('svc-007', 'svc-007-1', 'critical');
  await until('a change notification', () => sub.seen.length > 0);
  assert.deepEqual(sub.seen, [['svc-007']]);
  consul.setCheck('svc-007', 'svc-007-1', 'passing');
  await until('the flip back', () => sub.seen.length > 1);
  assert.deepEqual(sub.seen, [['svc-007'], ['svc-007']], 'a check leaving the non-passing set is a change too');
  assert.equal(consul.count('health_service') - before.reads, 2);
  assert.equal(consul.count('probe_health_service') - before.probes, 0, 'no sweep for a check change');
  const watched = consul.queries.filter((q) => q.path === '/v1/health/state/any');
  assert.ok(watched.length > 0 && watched.every((q) => q.query.some(([k, v]) => k === 'filter' && v === NON_PASSING_FILTER)), 'the health watch asks for non-passing checks only');
  await feed.close();
});

test('a node-level check flip reads just the services with an instance on that node', async () => {
  const consul = new FakeConsul(names);
  consul.upsert('svc-005', { id: 'svc-005-2', address: '10.5.0.1', node: 'vm-5' });
  consul.upsert('svc-006', { id: 'svc-006-2', address: '10.6.0.1', node: 'vm-5' });
  const { feed, sub } = await watchingFeed(consul);
  const reads = consul.count('health_service');
  consul.setNodeCheck('vm-5', 'critical');
  await until('both services told', () => told(sub, 'svc-005') && told(sub, 'svc-006'));
  assert.equal(consul.count('health_service') - reads, 2, 'the two services on vm-5, none of the other 98');
  const statuses = feed.viewFor(sub)?.answers.get('svc-005')?.entries.flatMap((e) => e.Checks.map((c) => c.Status));
  assert.deepEqual(statuses, ['critical']);
  await feed.close();
});

test('an in-place edit (same node, same count) is found by the sweep, at most one pass per period', async (t) => {
  const consul = new FakeConsul(names);
  const clock = manualClock();
  const { feed, sub } = await watchingFeed(consul, { now: clock.now });
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const probes = consul.count('probe_health_service');

  consul.upsert('svc-033', { id: 'svc-033-1', address: '10.3.3.3' });
  await until('the summary of the move', () => consul.count('ui_services') >= 2);
  for (let i = 0; i < 10; i++) await tick();
  assert.equal(told(sub, 'svc-033'), false, 'the summary does not show an in-place edit');
  assert.equal(feed.sweepPassRunning, false, 'the last pass began less than a period ago');
  // More edits meanwhile: still one pass.
  consul.upsert('svc-034', { id: 'svc-034-1', address: '10.3.3.4' });
  await until('the second summary', () => consul.count('ui_services') >= 3);

  clock.advance(PERIOD_MS);
  t.mock.timers.tick(PERIOD_MS);
  await until('both edits told', () => told(sub, 'svc-033') && told(sub, 'svc-034'));
  await until('the pass to end', () => !feed.sweepPassRunning && consul.probesInFlight === 0);
  assert.equal(consul.count('probe_health_service') - probes, 100, 'one pass for both edits');
  assert.equal(feed.viewFor(sub)?.answers.get('svc-033')?.entries[0]?.Service.Address, '10.3.3.3');
  await feed.close();
});

test('isCurrent holds in a steady state without reads, and fails when a watch is silent longer than the age asked for', async () => {
  const consul = new FakeConsul(names);
  const clock = manualClock();
  const { feed, sub } = await watchingFeed(consul, { now: clock.now });
  const reads = { all: consul.operations.length, services: consul.count('health_service') + consul.count('probe_health_service') + consul.count('ui_services') };
  clock.advance(PERIOD_MS / 2);
  assert.equal(feed.isCurrent(sub, 0.8 * INTERVAL_MS), true, 'the watches answered within the age');
  assert.equal(consul.operations.length, reads.all, 'nothing was read to say so');
  clock.advance(0.8 * INTERVAL_MS);
  assert.equal(feed.isCurrent(sub, 0.8 * INTERVAL_MS), false, 'no answer for longer than the age: a full read follows');
  // The waits run out with nothing changed: the answers confirm the cache again, still without a read.
  const sent = consul.count('watch_catalog_services') + consul.count('watch_health_state') + consul.count('watch_catalog_nodes');
  consul.expireWaits();
  await resent(consul, sent + 3);
  assert.equal(feed.isCurrent(sub, 0.8 * INTERVAL_MS), true, 'confirmed by answers that say nothing changed');
  assert.equal(consul.count('health_service') + consul.count('probe_health_service') + consul.count('ui_services'), reads.services, 'no service was read or probed');
  clock.advance(0.8 * INTERVAL_MS + 1);
  // A watch answers again (here: a change); the other two are still silent.
  consul.upsert('svc-001', { id: 'svc-001-2', address: '10.0.0.2' });
  await until('the change to be told', () => told(sub, 'svc-001'));
  assert.equal(feed.isCurrent(sub, 0.8 * INTERVAL_MS), false, 'every watch must have answered');
  await feed.close();
});

test('a catalog move not yet swept for longer than the age asked for makes the cache not current', async () => {
  const consul = new FakeConsul(names);
  const clock = manualClock();
  const { feed, sub } = await watchingFeed(consul, { now: clock.now });
  consul.upsert('svc-020', { id: 'svc-020-1', address: '10.2.0.2' });
  await until('the summary of the move', () => consul.count('ui_services') >= 2);
  assert.equal(feed.isCurrent(sub, 5_000), true, 'the move is younger than the age');
  clock.advance(5_001);
  const answers = consul.count('watch_catalog_services') + consul.count('watch_health_state') + consul.count('watch_catalog_nodes');
  consul.expireWaits();
  await resent(consul, answers + 3);
  assert.equal(feed.isCurrent(sub, 5_000), false, 'the watches confirm, but the move waits for a sweep longer than the age');
  await feed.fullRead(AbortSignal.timeout(5000), sub);
  assert.equal(feed.isCurrent(sub, 5_000), true, "the source's own full read covers the move: one full read, not one per snapshot");
  clock.advance(5_001);
  consul.expireWaits();
  await resent(consul, answers + 6);
  assert.equal(feed.isCurrent(sub, 5_000), false, 'until that read is older than the age too');
  await feed.close();
});

test('when the catalog summary fails, catalog moves are swept at once instead', async () => {
  const consul = new FakeConsul(names);
  const { feed, sub } = await watchingFeed(consul);
  consul.summaryFails = true;
  const probes = consul.count('probe_health_service');
  consul.upsert('svc-061', { id: 'svc-061-2', address: '10.0.0.2' });
  await until('the add to be told', () => told(sub, 'svc-061'));
  await until('the pass to end', () => !feed.sweepPassRunning && consul.probesInFlight === 0);
  assert.equal(consul.count('probe_health_service') - probes, 100, 'one sweep of every service');
  // The summary answers again: the first answer is a baseline, so that move is swept too; the next is not.
  consul.summaryFails = false;
  consul.upsert('svc-062', { id: 'svc-062-2', address: '10.0.0.2' });
  await until('the second add to be told', () => told(sub, 'svc-062'));
  await until('the pass to end', () => !feed.sweepPassRunning && consul.probesInFlight === 0);
  const afterBaseline = consul.count('probe_health_service');
  consul.upsert('svc-063', { id: 'svc-063-2', address: '10.0.0.2' });
  await until('the third add to be told', () => told(sub, 'svc-063'));
  assert.equal(consul.count('probe_health_service'), afterBaseline, 'found from the summary again');
  await feed.close();
});

test("a small source's services are watched one by one: a removal reaches it with the summary failing and the sweep held", async () => {
  const { small, consul, feed, sub } = await watchedSmallSource();
  assert.deepEqual([...feed.watchedServices].sort(), small, 'every service of a source of 10');
  assert.equal(consul.watchSlots, 6, 'as many slots claimed as services watched');
  consul.summaryFails = true;
  const held = gate();
  consul.probeGate = held.promise;
  const probes = consul.count('probe_health_service');
  consul.upsert('svc-004', { id: 'svc-004-2', address: '10.0.0.2' });
  await until('the add to be told', () => told(sub, 'svc-004'));
  consul.remove('svc-004', 'svc-004-1');
  const seen = sub.seen.length;
  await until('the removal to be told', () => sub.seen.slice(seen).some((s) => s !== 'all' && s.includes('svc-004')));
  assert.equal(consul.count('probe_health_service'), probes + consul.probesInFlight, 'no probe has answered (held, or none sent): the watch found both');
  held.open();
  consul.probeGate = undefined;
  await feed.close();
  assert.equal(consul.watchSlots, 16, 'closing the feed gives its slots back');
});

test("a watched service's change is taken from its watch's answer: no second read, and the watch waits the whole tuning wait", async () => {
  const { consul, feed, sub } = await watchedSmallSource();
  // An in-place re-address (same node, same count): the summary sees nothing, and the sweep is held.
  const held = gate();
  consul.probeGate = held.promise;
  const reads = consul.count('health_service');
  consul.upsert('svc-004', { id: 'svc-004-1', address: '10.0.0.44' });
  await until('the re-address to be told', () => told(sub, 'svc-004'));
  assert.equal(consul.count('health_service'), reads, 'no read beyond the watch');
  const entry = feed.viewFor(sub)?.answers.get('svc-004')?.entries[0];
  assert.equal(entry?.Service.Address, '10.0.0.44', "the cached answer is the watch's");
  const waits = (operation: string): number[] => [...new Set(consul.waits.filter((w) => w.operation === operation).map((w) => w.waitMs))];
  assert.deepEqual(waits('watch_health_service'), [tuning.waitMs], 'service watches wait the tuning wait');
  assert.deepEqual(waits('watch_catalog_services'), [PERIOD_MS], "the feed's own queries wait the share of the interval");
  held.open();
  consul.probeGate = undefined;
  await feed.close();
});

test('only as many services are watched one by one as the pool grants', async () => {
  const consul = new FakeConsul(names.slice(0, 10));
  consul.watchSlots = 4;
  const { feed } = await watchingFeed(consul);
  assert.equal(feed.watchedServices.size, 4);
  assert.equal(consul.watchSlots, 0);
  await feed.close();
  assert.equal(consul.watchSlots, 4);
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

test('a check flip is read and told while a sweep is held: health answers never queue behind probes', async () => {
  const consul = new FakeConsul(names);
  consul.upsert('svc-007', { id: 'svc-007-1', address: '10.0.0.1', check: 'passing' });
  const { feed, sub } = await watchingFeed(consul);
  consul.summaryFails = true;
  const held = gate();
  consul.probeGate = held.promise;
  consul.upsert('svc-050', { id: 'svc-050-2', address: '10.0.0.2' });
  await until('the sweep to start', () => consul.probesInFlight > 0);
  consul.setCheck('svc-007', 'svc-007-1', 'critical');
  await until('the flip to be told', () => told(sub, 'svc-007'));
  assert.ok(feed.sweepQueued > 0, 'the sweep is still under way');
  assert.deepEqual(sub.seen, [['svc-007']], 'only the flip so far');
  held.open();
  consul.probeGate = undefined;
  await until('the add to be told', () => told(sub, 'svc-050'));
  await feed.close();
});

test('probes hold at most half the read slots; changes during a pass make one more pass, not one per change', async () => {
  const consul = new FakeConsul(names);
  const { feed, sub } = await watchingFeed(consul);
  consul.summaryFails = true;
  const held = gate();
  consul.probeGate = held.promise;
  const probes = consul.count('probe_health_service');
  consul.upsert('svc-090', { id: 'svc-090-2', address: '10.0.0.2' });
  await until('the sweep to start', () => consul.probesInFlight > 0);
  for (let i = 0; i < 10; i++) consul.upsert('svc-091', { id: `svc-091-${i}`, address: `10.0.1.${i}` });
  await until('the summaries of the ten moves', () => consul.count('ui_services') >= 3);
  held.open();
  consul.probeGate = undefined;
  await until('both changes told', () => told(sub, 'svc-090') && told(sub, 'svc-091'));
  await until('the sweeps to finish', () => !feed.sweepPassRunning && feed.sweepQueued === 0 && consul.probesInFlight === 0);
  assert.equal(consul.maxProbesInFlight, consul.readSlots / 2, 'probes leave half the read slots free');
  assert.ok(consul.count('probe_health_service') - probes <= 200, `two passes at most, not one per change (${consul.count('probe_health_service') - probes} probes)`);
  const view = feed.viewFor(sub);
  assert.equal(view?.answers.get('svc-091')?.entries.length, 10, 'the last state of the busy service (svc-091-0 to -9)');
  await feed.close();
});

test('a moved service is read and told as soon as its probe answers, before the pass ends', async () => {
  const consul = new FakeConsul(names);
  const { feed, sub } = await watchingFeed(consul);
  consul.summaryFails = true;
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
  for (let i = 0; i < 50 && !told(sub, 'svc-003'); i++) {
    release.open();
    release = gate();
    await until('more probes', () => probed.size > i);
  }
  release.open();
  assert.ok(told(sub, 'svc-003'), 'told about svc-003');
  assert.ok(probed.size < 50, `told after ${probed.size} of 100 probes`);
  await feed.close();
});

test('every selected service needs an answer: a source whose services were never read is not current', async () => {
  const consul = new FakeConsul(['web', 'pay']);
  const feed = new CatalogFeed(consul, { nodeMeta: {} }, silentLogger, tuning);
  const web = { ...subscriber(), select: () => ['web'] };
  const pay = { ...subscriber(), select: () => ['pay'] };
  feed.subscribe(web);
  feed.subscribe(pay);
  await feed.fullRead(AbortSignal.timeout(5000), web);
  await until('the blocking queries to wait', () => ['watch_catalog_services', 'watch_health_state', 'watch_catalog_nodes'].every((op) => consul.count(op) >= 2));
  assert.equal(feed.isCurrent(web, 60_000), true);
  assert.equal(feed.isCurrent(pay, 60_000), false, "web's full read read only web's services");
  const reads = consul.count('health_service');
  await feed.fullRead(AbortSignal.timeout(5000), pay);
  assert.equal(consul.count('health_service') - reads, 1, "pay's full read reads pay only");
  assert.equal(feed.isCurrent(pay, 60_000), true);
  await feed.close();
});

test('a changed node is looked up and its services read at once, without a sweep', async () => {
  const consul = new FakeConsul(names);
  const { feed, sub } = await watchingFeed(consul);
  const probes = consul.count('probe_health_service');
  consul.moveNode('vm-77', 'svc-077', '10.7.7.7');
  await until('the node change to be told', () => told(sub, 'svc-077'));
  assert.equal(consul.count('node_services'), 1, 'one lookup for the one changed node');
  assert.equal(consul.count('probe_health_service'), probes, 'no probes');
  assert.deepEqual(feed.viewFor(sub)?.answers.get('svc-077')?.entries.map((e) => e.Service.Address).sort(), ['10.0.0.1', '10.7.7.7']);
  await feed.close();
});

test('the node list is read once per move, never for a wait that ran out: its watch asks for the index only', async () => {
  const consul = new FakeConsul(names);
  const { feed, sub } = await watchingFeed(consul);
  const watched = consul.queries.filter((_, i) => consul.operations[i] === 'watch_catalog_nodes');
  assert.ok(watched.length > 0 && watched.every((q) => q.query.some(([k, v]) => k === 'filter' && v === NODES_INDEX_ONLY)), 'the node-list watch asks with a filter that matches nothing');
  const sent = consul.count('watch_catalog_services') + consul.count('watch_health_state') + consul.count('watch_catalog_nodes');
  consul.expireWaits();
  await resent(consul, sent + 3);
  assert.equal(consul.count('catalog_nodes'), 0, 'waits that ran out unchanged read no list');

  consul.moveNode('vm-12', 'svc-012', '10.1.2.3');
  await until('the node change to be told', () => told(sub, 'svc-012'));
  assert.equal(consul.count('catalog_nodes'), 1, 'one read of the node list for the move');
  assert.equal(consul.count('node_services'), 1, 'and one lookup of the node it shows changed');
  await feed.close();
});

test('answers read as bytes: an unchanged service list is not parsed again; the summary and the node list scanned as bytes find what changed', async () => {
  const consul = new FakeConsul(names);
  consul.rawBodies = true;
  const feed = new CatalogFeed(consul, { nodeMeta: {} }, silentLogger, tuning);
  const sub = subscriber();
  let selections = 0;
  feed.subscribe({ ...sub, select: (catalog) => (selections++, sub.select(catalog)) });
  await feed.fullRead(AbortSignal.timeout(5000), sub);
  await until('the first summary and sweep to end', () => consul.count('ui_services') >= 1 && !feed.sweepPassRunning && consul.probesInFlight === 0);
  const before = selections;

  consul.upsert('svc-042', { id: 'svc-042-2', address: '10.0.0.2' });
  await until('the add to be told', () => told(sub, 'svc-042'));
  assert.equal(selections, before, 'the same list (as bytes) selects nothing again');
  consul.upsert('svc-new', { id: 'svc-new-1', address: '10.0.0.3' });
  await until('the new service to be told', () => told(sub, 'svc-new'));
  assert.equal(selections, before + 1, 'a changed list is parsed and selects again');
  consul.moveNode('vm-9', 'svc-009', '10.9.0.9');
  await until('the node change to be told', () => told(sub, 'svc-009'));
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

test('blocking waits are 0.4 x the smallest interval; a source with a shorter one cuts the waits under way without an error', async () => {
  const consul = new FakeConsul(names.slice(0, 5));
  const { feed, sub } = await watchingFeed(consul);
  assert.ok(consul.waits.length >= 6 && consul.waits.every((w) => w.waitMs === PERIOD_MS), 'waits of 0.4 x 60 s');
  const fast = { ...subscriber(), intervalMs: 5_000 };
  consul.waits.length = 0;
  feed.subscribe(fast);
  const ops = ['watch_catalog_services', 'watch_health_state', 'watch_catalog_nodes'];
  await until('the three queries sent again', () => ops.every((op) => consul.waits.some((w) => w.operation === op)));
  assert.ok(consul.waits.every((w) => w.waitMs === 2_000), `waits of 0.4 x 5 s: ${JSON.stringify(consul.waits)}`);
  assert.deepEqual(sub.seen, [], 'no error was told to the sources');
  await feed.close();
});

test('each blocking query that failed tells sources again when it answers, even when the others never failed', async () => {
  // An agent restarted within one wait: the catalog and node-list queries may see the same index
  // before and after, and only the health query failed. Its recovery alone must send sources to look.
  for (const operation of ['watch_health_state', 'watch_catalog_nodes']) {
    const consul = new FakeConsul(names);
    const { feed, sub } = await watchingFeed(consul);
    const probes = consul.count('probe_health_service');
    consul.failNext.add(operation);
    consul.expireWaits();
    // The retry waits for the loop's backoff, a real timer.
    for (let i = 0; i < 400 && sub.seen.filter((s) => s === 'all').length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(sub.seen, ['all', 'all'], `${operation}: told once when it failed and once when it answered again`);
    if (operation === 'watch_catalog_nodes') await until('a sweep for the nodes changed while the list was down', () => consul.count('probe_health_service') > probes);
    await feed.close();
  }
});

test("a change the watches saw whole (its nodes run watched services only) needs no summary or node-list read", async () => {
  const { consul, feed, sub } = await watchedSmallSource();
  const before = { summaries: consul.count('ui_services'), lists: consul.count('catalog_nodes'), reads: consul.count('health_service') };
  // An instance on a new node: the service list moves, and the service's own watch answers at the same index.
  consul.upsert('svc-004', { id: 'svc-004-2', address: '10.0.0.2', node: 'vm-4' });
  await until('the add to be told and its move found explained', () => told(sub, 'svc-004') && feed.readsSpared >= 1);
  // A node re-addressed: the node list moves.
  consul.moveNode('vm-5', 'svc-005', '10.5.5.5');
  await until('the re-address to be told and its move found explained', () => told(sub, 'svc-005') && feed.readsSpared >= 2);
  assert.deepEqual(
    { summaries: consul.count('ui_services'), lists: consul.count('catalog_nodes'), reads: consul.count('health_service') },
    before,
    'neither list read, nor the services: their watches answered',
  );
  await feed.close();
});

test('a change on a node that also runs an unwatched service reads the summary as before', async () => {
  const consul = new FakeConsul(names.slice(0, 10));
  consul.watchSlots = 4;
  const { feed, sub } = await watchingFeed(consul);
  await until('the watches to wait', () => consul.count('watch_health_service') >= 8);
  const watched = [...feed.watchedServices][0] as string;
  const summaries = consul.count('ui_services');
  // Node n1 runs all ten services, six of them not watched: the move may hold their changes too.
  consul.upsert(watched, { id: `${watched}-2`, address: '10.0.0.2' });
  await until('the add to be told', () => told(sub, watched));
  await until('the summary to be read', () => consul.count('ui_services') > summaries);
  assert.equal(feed.readsSpared, 0, 'no read left out');
  await feed.close();
});

test('over HTTP/2 every selected service is watched, also those of a large source, and its change reads neither list nor the service', async () => {
  const consul = new FakeConsul(names);
  consul.watchSlots = 4;
  const { feed, sub } = await watchingFeed(consul);
  assert.equal(feed.watchedServices.size, 0, 'over HTTP/1.1 a source of 100 services is not watched one by one');
  consul.widen(1000);
  await until('every service to be watched', () => feed.watchedServices.size === names.length);
  // Each watch blocks at once from its cached answer's index: one query each, none answered.
  await until('the watches to wait', () => consul.count('watch_health_service') >= names.length);
  const before = { summaries: consul.count('ui_services'), lists: consul.count('catalog_nodes'), reads: consul.count('health_service') };
  consul.upsert('svc-077', { id: 'svc-077-2', address: '10.0.0.2', node: 'vm-77' });
  await until('the add to be told', () => told(sub, 'svc-077') && feed.readsSpared >= 1);
  assert.deepEqual({ summaries: consul.count('ui_services'), lists: consul.count('catalog_nodes'), reads: consul.count('health_service') }, before, 'the watch answered');
  const waits = [...new Set(consul.waits.filter((w) => w.operation === 'watch_health_service').map((w) => w.waitMs))];
  assert.deepEqual(waits, [300_000], 'HTTP/2 watches wait five minutes');
  await feed.close();
  assert.equal(consul.watchSlots, 1004, 'every stream given back');
});
