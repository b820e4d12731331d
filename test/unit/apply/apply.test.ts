/**
 * The applier against an in-memory writer: it executes a plan (creates, take-overs,
 * updates, deletes, twin replacements, Healthy conditions), records what happened,
 * and reads nothing: every decision was made before.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WORKLOAD_ENTRIES, type WorkloadEntry } from '../../../src/api/istio.ts';
import { applyChanges, applyPlan } from '../../../src/apply/apply.ts';
import { afterApply, inventoryOf } from '../../../src/plan/inventory.ts';
import { SERVICE_ENTRY_KIND, toAppliedObject } from '../../../src/plan/kinds.ts';
import { ENDPOINT_ANNOTATION, isOwnedBy, SCOPE_ANNOTATION } from '../../../src/api/ownership.ts';
import { plan, type Plan, type PlanInput } from '../../../src/plan/plan.ts';
import type { DesiredEntry } from '../../../src/mapping/types.ts';
import { source } from '../../fixtures/builders.ts';
import { conflict, MemoryWriter } from '../../fixtures/memory-writer.ts';

const src = source('web').namespace('apps').uid('uid-web').consul({ address: 'http://127.0.0.1:8500' }).build();
const NOW = () => '2026-01-01T00:00:00Z';

function entry(name: string, address = '10.0.0.1', healthy?: boolean): DesiredEntry {
  const labels = { app: 'web' };
  return {
    name,
    endpointId: name,
    scope: 'default',
    labels,
    annotations: { [ENDPOINT_ANNOTATION]: name, [SCOPE_ANNOTATION]: 'default' },
    spec: { address, labels },
    ...(healthy !== undefined ? { healthy } : {}),
  };
}

function planFor(writer: MemoryWriter, desired: DesiredEntry[], more: Partial<PlanInput> = {}): Plan {
  const all = writer.all<WorkloadEntry>(WORKLOAD_ENTRIES, 'apps');
  const names = new Set(desired.map((d) => d.name));
  return plan({
    desired,
    owned: all.filter((e) => isOwnedBy(e, src)),
    foreign: all.filter((e) => !isOwnedBy(e, src) && names.has(e.metadata.name)),
    policy: 'sync',
    unknownScopes: [],
    guard: { enabled: false, maxDeletePercent: 50 },
    ...more,
  });
}

const handWritten = (name: string): WorkloadEntry => ({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name, namespace: 'apps' }, spec: { address: '10.0.0.1', labels: { app: 'web' } } });

describe('the applier', () => {
  test('creates, updates and deletes what the plan says, and only that', async () => {
    const w = new MemoryWriter();
    w.seed(WORKLOAD_ENTRIES, toAppliedObject(entry('keep'), src));
    w.seed(WORKLOAD_ENTRIES, toAppliedObject(entry('move'), src));
    w.seed(WORKLOAD_ENTRIES, toAppliedObject(entry('gone'), src));
    const result = await applyPlan(w, src, planFor(w, [entry('keep'), entry('move', '10.0.0.2'), entry('new')]), { now: NOW });
    assert.deepEqual([result.created, result.updated, result.deleted, result.errors], [['new'], ['move'], ['gone'], []]);
    assert.deepEqual(w.writes.map((x) => `${x.op} ${x.name}`), ['apply new', 'apply move', 'delete gone']);
    assert.equal(w.calls.filter((c) => c.op === 'get' || c.op === 'list').length, 0, 'the applier reads nothing');
    assert.equal(w.peek<WorkloadEntry>(WORKLOAD_ENTRIES, 'apps', 'move')?.spec.address, '10.0.0.2');
    assert.deepEqual([...result.applied.keys()].sort(), ['move', 'new']);
  });

  test('takes over an adoptable entry by name; a foreign one is left alone (the plan reports the conflict)', async () => {
    const w = new MemoryWriter();
    w.seed(WORKLOAD_ENTRIES, handWritten('mine'));
    const adopting = await applyPlan(w, src, planFor(w, [entry('mine')], { adoption: { candidates: [], serviceLabel: 'app' } }), { now: NOW });
    assert.deepEqual([adopting.adopted, adopting.created], [['mine'], []]);
    assert.ok(isOwnedBy(w.peek<WorkloadEntry>(WORKLOAD_ENTRIES, 'apps', 'mine')!, src));

    const other = new MemoryWriter();
    other.seed(WORKLOAD_ENTRIES, handWritten('mine'));
    const p = planFor(other, [entry('mine')]);
    assert.equal(p.conflicts.length, 1);
    const result = await applyPlan(other, src, p, { now: NOW });
    assert.deepEqual([result.created, result.adopted, other.writes], [[], [], []]);
  });

  test('writes the Healthy condition of created entries and of the plan\'s health updates, not of failed creates', async () => {
    const w = new MemoryWriter();
    w.seed(WORKLOAD_ENTRIES, toAppliedObject(entry('old', '10.0.0.1', true), src));
    w.fail('apply', () => new Error('quota'), { name: 'bad' });
    const result = await applyPlan(w, src, planFor(w, [entry('old', '10.0.0.1', false), entry('ok', '10.0.0.2', true), entry('bad', '10.0.0.3', true)]), { now: NOW });
    assert.deepEqual(result.errors.map((e) => [e.name, e.error.message]), [['bad', 'quota']]);
    assert.deepEqual(w.writesOf('applyStatus').map((x) => x.name).sort(), ['ok', 'old']);
    assert.equal(result.healthWrites, 2);
    const ok = w.peek<WorkloadEntry>(WORKLOAD_ENTRIES, 'apps', 'ok');
    assert.equal(ok?.status?.conditions?.[0]?.status, 'True');
  });

  test('a delete that finds nothing counts as done; a precondition conflict is an error', async () => {
    const w = new MemoryWriter();
    const gone = w.seed(WORKLOAD_ENTRIES, toAppliedObject(entry('gone'), src));
    const racing = w.seed(WORKLOAD_ENTRIES, toAppliedObject(entry('racing'), src));
    const p = planFor(w, []);
    w.remove(WORKLOAD_ENTRIES, 'apps', gone.metadata.name);
    w.fail('delete', () => conflict('delete racing'), { name: racing.metadata.name });
    const result = await applyPlan(w, src, p, { now: NOW });
    assert.deepEqual(result.deleted, ['gone']);
    assert.deepEqual(result.errors.map((e) => e.name), ['racing']);
  });

  test('replaces a hand-written twin once its successor is in place, with the twin\'s uid as precondition', async () => {
    const w = new MemoryWriter();
    w.seed(WORKLOAD_ENTRIES, toAppliedObject(entry('web-1'), src));
    const twin = w.seed(WORKLOAD_ENTRIES, handWritten('vm1'));
    const result = await applyPlan(w, src, planFor(w, [entry('web-1')], { adoption: { candidates: [twin], serviceLabel: 'app' } }), { now: NOW });
    assert.deepEqual(result.replaced, ['vm1']);
    assert.equal(w.peek(WORKLOAD_ENTRIES, 'apps', 'vm1'), undefined);
  });

  test('the same applier writes ServiceEntries, and the inventory after the apply counts what is owned', async () => {
    const w = new MemoryWriter();
    const desired = {
      name: 'web',
      labels: {},
      annotations: {},
      spec: { hosts: ['web.example'], location: 'MESH_INTERNAL', resolution: 'STATIC', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], workloadSelector: { labels: { app: 'web' } } },
    } as unknown as Parameters<typeof SERVICE_ENTRY_KIND.toApplied>[0];
    const changes = { creates: [desired], adopts: [], updates: [], deletes: [], replaces: [], kept: [], conflicts: [], unreadable: [], heldBack: new Map() };
    const result = await applyChanges(w, SERVICE_ENTRY_KIND, src, changes);
    assert.deepEqual(result.created, ['web']);
    assert.deepEqual(w.writes.map((x) => `${x.op} ${x.plural} ${x.name}`), ['apply serviceentries web']);
    assert.equal(afterApply(inventoryOf([]), result).owned.size, 1);
  });
});
