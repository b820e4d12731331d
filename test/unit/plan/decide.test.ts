/**
 * The decision layer's filters, one decision each: ownership and conflicts, take-over
 * by name, unreadable names, keep, unknown scopes, policy and the deletion guard, for
 * WorkloadEntries and ServiceEntries alike.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceEntry, WorkloadEntry } from '../../../src/api/istio.ts';
import { applyPolicy, decide, diff, guardDeletions, type Changes, type DeletionGuard } from '../../../src/plan/decide.ts';
import { inventoryOf } from '../../../src/plan/inventory.ts';
import { toAppliedObject, toAppliedServiceEntry } from '../../../src/plan/kinds.ts';
import { SERVICE_ENTRY_RULES } from '../../../src/plan/object-plan.ts';
import { ENDPOINT_ANNOTATION, MANAGED_BY_LABEL, SCOPE_ANNOTATION } from '../../../src/api/ownership.ts';
import { WORKLOAD_ENTRY_RULES } from '../../../src/plan/plan.ts';
import type { DesiredServiceEntry } from '../../../src/mapping/service-entries.ts';
import type { DesiredEntry } from '../../../src/mapping/types.ts';
import { source } from '../../fixtures/builders.ts';

const src = source('web').namespace('apps').uid('uid-web').consul({ address: 'http://127.0.0.1:8500' }).build();
const NO_GUARD: DeletionGuard = { enabled: false, maxDeletePercent: 50 };
const GUARD: DeletionGuard = { enabled: true, maxDeletePercent: 50 };

function entry(name: string, address = '10.0.0.1'): DesiredEntry {
  const labels = { app: 'web' };
  return { name, endpointId: name, scope: 'default', labels, annotations: { [ENDPOINT_ANNOTATION]: name, [SCOPE_ANNOTATION]: 'default' }, spec: { address, labels } };
}
const owned = (d: DesiredEntry): WorkloadEntry => ({ ...structuredClone(toAppliedObject(d, src)), metadata: { ...toAppliedObject(d, src).metadata, uid: `uid-${d.name}` } });
function foreign(name: string, labels?: Record<string, string>, controller?: string): WorkloadEntry {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: {
      name,
      namespace: 'apps',
      uid: `uid-${name}`,
      ...(labels ? { labels } : {}),
      ...(controller ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Thing', name: controller, uid: 'x', controller: true }] } : {}),
    },
    spec: { address: '10.9.9.9' },
  };
}
const names = (list: readonly { name: string }[]): string[] => list.map((d) => d.name);

describe('decide: the diff', () => {
  test('desired == current gives no changes (idempotency)', () => {
    const d = [entry('a'), entry('b')];
    const c = decide(WORKLOAD_ENTRY_RULES, { desired: d, inventory: inventoryOf(d.map(owned)), policy: 'sync', guard: GUARD });
    for (const list of [c.creates, c.adopts, c.updates, c.deletes, c.replaces, c.kept, c.conflicts, c.unreadable]) assert.equal(list.length, 0);
    assert.equal(c.heldBack.size, 0);
  });

  test('creates what is not owned, updates what differs in a managed field, deletes what is no longer desired', () => {
    const a = entry('a');
    const b = entry('b');
    const c = diff(WORKLOAD_ENTRY_RULES, [a, { ...b, spec: { ...b.spec, address: '10.0.0.2' } }, entry('new')], inventoryOf([owned(a), owned(b), owned(entry('gone'))]));
    assert.deepEqual(names(c.creates), ['new']);
    assert.deepEqual(c.updates.map((u) => [u.desired.name, u.fields.includes('spec.address')]), [['b', true]]);
    assert.deepEqual(c.deletes.map((e) => e.metadata.name), ['gone']);
  });
});

describe('decide: work in proportion to the change', () => {
  test('a desired object and the cached object it was compared with are not compared again; a new cached object is', () => {
    let compared = 0;
    const counting = { ...WORKLOAD_ENTRY_RULES, changedFields: (d: DesiredEntry, c: WorkloadEntry) => (compared++, WORKLOAD_ENTRY_RULES.changedFields(d, c)) };
    const desired = ['a', 'b', 'c'].map((n) => entry(n));
    const cached = desired.map(owned);
    diff(counting, desired, inventoryOf(cached));
    assert.equal(compared, 3);
    diff(counting, desired, inventoryOf(cached));
    assert.equal(compared, 3, 'the same pairs compare the same');
    const edited: WorkloadEntry = { ...cached[1]!, spec: { ...cached[1]!.spec, address: '10.6.6.6' } };
    const c = diff(counting, desired, inventoryOf([cached[0]!, edited, cached[2]!]));
    assert.equal(compared, 4, 'only the object the API replaced is compared');
    assert.deepEqual(c.updates.map((u) => u.desired.name), ['b']);
  });
});

describe('decide: objects this source does not own', () => {
  test('a create whose name is held by a foreign entry is a conflict, and nothing is written for it', () => {
    const c = decide(WORKLOAD_ENTRY_RULES, { desired: [entry('a'), entry('b')], inventory: inventoryOf([], [foreign('a', {}, 'other')]), policy: 'sync', guard: NO_GUARD });
    assert.deepEqual(names(c.creates), ['b']);
    assert.deepEqual(c.conflicts, [{ name: 'a', reason: 'owned by Thing other' }]);
  });

  test('with adoption, an adoptable entry of a desired name is taken over; one managed by someone else stays a conflict', () => {
    const inventory = inventoryOf([], [foreign('a'), foreign('b', { [MANAGED_BY_LABEL]: 'helm' })]);
    const c = decide(WORKLOAD_ENTRY_RULES, { desired: [entry('a'), entry('b')], inventory, policy: 'sync', guard: NO_GUARD, adopt: true });
    assert.deepEqual(names(c.adopts), ['a']);
    assert.deepEqual(names(c.creates), []);
    assert.deepEqual(c.conflicts, [{ name: 'b', reason: 'managed by helm' }]);
    const without = decide(WORKLOAD_ENTRY_RULES, { desired: [entry('a')], inventory: inventoryOf([], [foreign('a')]), policy: 'sync', guard: NO_GUARD });
    assert.deepEqual(without.conflicts, [{ name: 'a', reason: 'not owned by this source (set spec.adopt to take it over)' }]);
    assert.equal(without.adopts.length, 0);
  });

  test('a name whose lookup failed is not created this sync', () => {
    const inventory = inventoryOf<WorkloadEntry>([], [], new Map([['a', new Error('timeout')]]));
    const c = decide(WORKLOAD_ENTRY_RULES, { desired: [entry('a'), entry('b')], inventory, policy: 'sync', guard: NO_GUARD });
    assert.deepEqual(names(c.creates), ['b']);
    assert.deepEqual(c.unreadable.map((u) => [u.name, u.error.message]), [['a', 'timeout']]);
  });

  test('ServiceEntries: a foreign host blocks the update and is reported for an unchanged one too', () => {
    const se = (name: string, host: string): DesiredServiceEntry => ({
      name,
      service: name,
      labels: {},
      annotations: {},
      spec: { hosts: [host], location: 'MESH_INTERNAL', resolution: 'STATIC', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], workloadSelector: { labels: { app: name } } },
    }) as DesiredServiceEntry;
    const changed = se('web', 'web.example');
    const unchanged = se('api', 'api.example');
    const current: ServiceEntry[] = [{ ...toAppliedServiceEntry({ ...changed, spec: { ...changed.spec, ports: [] } }, src) }, toAppliedServiceEntry(unchanged, src)];
    const theirs: ServiceEntry = { ...toAppliedServiceEntry(se('legacy', 'web.example'), src), metadata: { name: 'legacy', namespace: 'apps' } };
    const theirsApi: ServiceEntry = { ...toAppliedServiceEntry(se('legacy-api', 'api.example'), src), metadata: { name: 'legacy-api', namespace: 'apps' } };
    const c = decide(SERVICE_ENTRY_RULES, { desired: [changed, unchanged], inventory: inventoryOf(current, [theirs, theirsApi]), policy: 'sync', guard: NO_GUARD });
    assert.equal(c.updates.length, 0);
    assert.deepEqual(c.conflicts.map((x) => x.name), ['api', 'web']);
  });
});

describe('decide: keep, unknown scopes, policy and the guard', () => {
  const all = ['a', 'b', 'c', 'd'].map((n) => entry(n));
  const inventory = inventoryOf(all.map(owned));

  test('keep and unknown scopes spare owned entries; only unknown scopes count as held back', () => {
    const c = decide(WORKLOAD_ENTRY_RULES, {
      desired: [],
      inventory,
      policy: 'sync',
      guard: NO_GUARD,
      keep: (e) => e.metadata.name === 'a',
      unknownScopes: { scopeOf: (e) => (e.metadata.name === 'b' ? 'zone-b' : 'default'), scopes: ['zone-b'] },
    });
    assert.deepEqual(c.kept.map((e) => e.metadata.name), ['a']);
    assert.deepEqual(c.deletes.map((e) => e.metadata.name), ['c', 'd']);
    assert.deepEqual([...c.heldBack], [['UnknownScope', 1]]);
  });

  test('upsert-only holds deletions back; create-only also drops updates', () => {
    const base: Changes<DesiredEntry, WorkloadEntry> = { ...diff(WORKLOAD_ENTRY_RULES, [{ ...entry('a'), spec: { address: '10.1.1.1' } }], inventory) };
    const upsert = applyPolicy<DesiredEntry, WorkloadEntry>('upsert-only')(base);
    assert.deepEqual([upsert.updates.length, upsert.deletes.length, upsert.heldBack.get('Policy')], [1, 0, 3]);
    const createOnly = applyPolicy<DesiredEntry, WorkloadEntry>('create-only')(base);
    assert.deepEqual([createOnly.updates.length, createOnly.deletes.length, createOnly.heldBack.get('Policy')], [0, 0, 3]);
    assert.equal(applyPolicy<DesiredEntry, WorkloadEntry>('sync')(base), base, 'sync changes nothing');
  });

  test('the guard holds back every deletion of a sync that would remove too many, unless unguarded', () => {
    const c = decide(WORKLOAD_ENTRY_RULES, { desired: [entry('a')], inventory, policy: 'sync', guard: GUARD });
    assert.deepEqual([c.deletes.length, c.heldBack.get('DeletionGuard')], [0, 3]);
    const base = diff(WORKLOAD_ENTRY_RULES, [entry('a')], inventory);
    assert.equal(guardDeletions<DesiredEntry, WorkloadEntry>(GUARD, false, 4)(base).deletes.length, 3);
    const one = decide(WORKLOAD_ENTRY_RULES, { desired: all.slice(0, 3), inventory, policy: 'sync', guard: { enabled: true, maxDeletePercent: 1 } });
    assert.equal(one.deletes.length, 1, 'a single deletion is always allowed');
  });
});
