/**
 * Adoption in the planner: a hand-written twin (same network, address, service and
 * ports) of an entry already in place is a planned delete, held back by the policy and
 * weighed by the deletion guard; anything that differs in one of those is left alone.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { toAppliedObject } from '../../../src/apply/apply.ts';
import { ENDPOINT_ANNOTATION, SCOPE_ANNOTATION } from '../../../src/api/ownership.ts';
import { plan, type DeletionGuard, type Plan, type PlanInput } from '../../../src/plan/plan.ts';
import { workloadKey } from '../../../src/plan/twins.ts';
import type { DesiredEntry } from '../../../src/mapping/types.ts';
import type { WorkloadEntry, WorkloadEntrySpec } from '../../../src/api/istio.ts';
import { source } from '../../fixtures/builders.ts';
import { isEmptyPlan } from '../../fixtures/plans.ts';

const src = source('shop').namespace('apps').uid('uid-shop').consul({ address: 'http://127.0.0.1:8500' }).build();
const NO_GUARD: DeletionGuard = { enabled: false, maxDeletePercent: 50 };

/** A desired entry for service `app` on `address`, shaped like the mapping's output. */
function desired(name: string, app: string, spec: Partial<WorkloadEntrySpec> = {}): DesiredEntry {
  const labels = { app };
  return {
    name,
    endpointId: `ep-${name}`,
    scope: 'default',
    labels,
    annotations: { [ENDPOINT_ANNOTATION]: `ep-${name}`, [SCOPE_ANNOTATION]: 'default' },
    spec: { address: '10.0.0.1', ports: { http: 8080 }, labels, ...spec },
  };
}

const inPlace = (d: DesiredEntry): WorkloadEntry => structuredClone(toAppliedObject(d, src));

/** A hand-written entry: no owner, no managed-by label. */
function handWritten(name: string, spec: WorkloadEntrySpec, metadataLabels?: Record<string, string>): WorkloadEntry {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name, namespace: 'apps', uid: `uid-${name}`, ...(metadataLabels ? { labels: metadataLabels } : {}) },
    spec,
  };
}

function run(d: DesiredEntry[], owned: WorkloadEntry[], candidates: WorkloadEntry[], more: Partial<PlanInput> = {}): Plan {
  return plan({ desired: d, owned, policy: 'sync', unknownScopes: [], guard: NO_GUARD, adoption: { candidates, serviceLabel: 'app' }, ...more });
}

const replaced = (p: Plan): string[] => p.replaces.map((r) => r.twin.metadata.name).sort();

describe('plan: adoption of hand-written twins', () => {
  const orders = desired('shop-orders-1', 'orders');

  test('a twin of an entry in place is replaced: a planned delete naming its successor', () => {
    const twin = handWritten('orders-vm1', { address: '10.0.0.1', ports: { http: 8080 }, labels: { app: 'orders' } });
    const p = run([orders], [inPlace(orders)], [twin]);
    assert.deepEqual(p.replaces, [{ twin, by: 'shop-orders-1' }]);
    assert.deepEqual(p.deletes, [], 'owned deletes are a separate list');
    assert.equal(isEmptyPlan(p), false);
  });

  test('another service on the same VM is not a twin (payments survives when orders arrives)', () => {
    const payments = handWritten('payments-vm1', { address: '10.0.0.1', ports: { http: 8080 }, labels: { app: 'payments' } });
    const p = run([orders], [inPlace(orders)], [payments]);
    assert.deepEqual(p.replaces, []);
    assert.equal(isEmptyPlan(p), true);
  });

  const notTwins: [string, WorkloadEntrySpec, Record<string, string>?][] = [
    ['other address', { address: '10.0.0.2', ports: { http: 8080 }, labels: { app: 'orders' } }],
    ['other network', { address: '10.0.0.1', network: 'net-2', ports: { http: 8080 }, labels: { app: 'orders' } }],
    ['other port number', { address: '10.0.0.1', ports: { http: 9090 }, labels: { app: 'orders' } }],
    ['other port name', { address: '10.0.0.1', ports: { grpc: 8080 }, labels: { app: 'orders' } }],
    ['an extra port', { address: '10.0.0.1', ports: { http: 8080, metrics: 9100 }, labels: { app: 'orders' } }],
    ['no service label', { address: '10.0.0.1', ports: { http: 8080 } }],
    ['service only in spec, metadata says otherwise', { address: '10.0.0.1', ports: { http: 8080 }, labels: { app: 'orders' } }, { app: 'payments' }],
  ];
  for (const [what, spec, metadataLabels] of notTwins) {
    test(`not a twin: ${what}`, () => {
      assert.deepEqual(replaced(run([orders], [inPlace(orders)], [handWritten('hand', spec, metadataLabels)])), []);
    });
  }

  test('the service label may be in metadata.labels (istiod merges them with spec.labels)', () => {
    const twin = handWritten('hand', { address: '10.0.0.1', ports: { http: 8080 } }, { app: 'orders' });
    assert.deepEqual(replaced(run([orders], [inPlace(orders)], [twin])), ['hand']);
  });

  test('addresses are compared in canonical form (IPv6)', () => {
    const v6 = desired('shop-orders-6', 'orders', { address: '2001:db8::1' });
    const twin = handWritten('hand', { address: '2001:0db8:0:0:0:0:0:1', ports: { http: 8080 }, labels: { app: 'orders' } });
    assert.deepEqual(replaced(run([v6], [inPlace(v6)], [twin])), ['hand']);
  });

  test('the service label is the source\'s serviceLabel', () => {
    const svc = { ...desired('shop-orders-1', 'x'), labels: { service: 'orders' }, spec: { address: '10.0.0.1', ports: { http: 8080 }, labels: { service: 'orders' } } };
    const twin = handWritten('hand', { address: '10.0.0.1', ports: { http: 8080 }, labels: { service: 'orders', app: 'other' } });
    assert.deepEqual(replaced(run([svc], [inPlace(svc)], [twin], { adoption: { candidates: [twin], serviceLabel: 'service' } })), ['hand']);
    assert.deepEqual(replaced(run([svc], [inPlace(svc)], [twin], { adoption: { candidates: [twin], serviceLabel: 'app' } })), []);
  });

  test('no twin is replaced before its successor is in place (create first, replace in the next sync)', () => {
    const twin = handWritten('hand', { address: '10.0.0.1', ports: { http: 8080 }, labels: { app: 'orders' } });
    const p = run([orders], [], [twin]);
    assert.deepEqual(p.creates.map((c) => c.name), ['shop-orders-1']);
    assert.deepEqual(p.replaces, []);
  });

  test('no twin is replaced while the owned entry differs from what is desired, or is being deleted', () => {
    const twin = handWritten('hand', { address: '10.0.0.1', ports: { http: 8080 }, labels: { app: 'orders' } });
    const stale = inPlace({ ...orders, spec: { ...orders.spec, address: '10.0.0.9' } });
    assert.deepEqual(replaced(run([orders], [stale], [twin])), []);
    const going = inPlace(orders);
    going.metadata.deletionTimestamp = '2026-01-01T00:00:00Z';
    assert.deepEqual(replaced(run([orders], [going], [twin])), []);
  });

  test('owned, managed, controlled or desired-name entries are never twins', () => {
    const spec = { address: '10.0.0.1', ports: { http: 8080 }, labels: { app: 'orders' } };
    const managed = handWritten('managed', spec, { 'app.kubernetes.io/managed-by': 'someone' });
    const controlled = handWritten('controlled', spec);
    controlled.metadata.ownerReferences = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'u', controller: true }];
    const sameName = handWritten('shop-orders-1', spec);
    assert.deepEqual(replaced(run([orders], [inPlace(orders)], [managed, controlled, sameName, inPlace(orders)])), []);
  });

  test('several twins of one workload are all replaced', () => {
    const spec = { address: '10.0.0.1', ports: { http: 8080 }, labels: { app: 'orders' } };
    assert.deepEqual(replaced(run([orders], [inPlace(orders)], [handWritten('a', spec), handWritten('b', spec)])), ['a', 'b']);
  });

  test('without adoption (spec.adopt false) nothing is replaced', () => {
    const p = plan({ desired: [orders], owned: [inPlace(orders)], policy: 'sync', unknownScopes: [], guard: NO_GUARD });
    assert.deepEqual(p.replaces, []);
  });
});

describe('plan: adoption under policies and the deletion guard', () => {
  const orders = desired('shop-orders-1', 'orders');
  const twin = handWritten('hand', { address: '10.0.0.1', ports: { http: 8080 }, labels: { app: 'orders' } });

  for (const policy of ['upsert-only', 'create-only'] as const) {
    test(`${policy} keeps the twin: held back as Policy`, () => {
      const p = run([orders], [inPlace(orders)], [twin], { policy });
      assert.deepEqual(p.replaces, []);
      assert.deepEqual([...p.heldBack], [['Policy', 1]]);
    });
  }

  test('the guard weighs twins with owned deletes: over the limit, both are held back', () => {
    const a = desired('a', 'a', { address: '10.0.1.1' });
    const b = desired('b', 'b', { address: '10.0.1.2' });
    const gone = desired('gone', 'gone', { address: '10.0.1.3' });
    const twins = [a, b].map((d) => handWritten(`hand-${d.name}`, { address: d.spec.address, ports: { http: 8080 }, labels: d.labels }));
    // 1 stale + 2 twins of 3 owned + 2 twins = 60% > 50%.
    const p = run([a, b], [inPlace(a), inPlace(b), inPlace(gone)], twins, { guard: { enabled: true, maxDeletePercent: 50 } });
    assert.deepEqual(p.deletes, []);
    assert.deepEqual(p.replaces, []);
    assert.deepEqual([...p.heldBack], [['DeletionGuard', 3]]);
    const lifted = run([a, b], [inPlace(a), inPlace(b), inPlace(gone)], twins, { guard: { enabled: true, maxDeletePercent: 60 } });
    assert.deepEqual(replaced(lifted), ['hand-a', 'hand-b']);
    assert.deepEqual(lifted.deletes.map((d) => d.metadata.name), ['gone']);
  });

  test('a migration that replaces one twin per entry passes the default guard (half of what the mesh sees)', () => {
    const ds = [1, 2, 3, 4].map((i) => desired(`e${i}`, 'orders', { address: `10.0.2.${i}` }));
    const twins = ds.map((d) => handWritten(`hand-${d.name}`, { address: d.spec.address, ports: { http: 8080 }, labels: d.labels }));
    const p = run(ds, ds.map(inPlace), twins, { guard: { enabled: true, maxDeletePercent: 50 } });
    assert.equal(p.replaces.length, 4);
  });

  test('a single twin is always allowed, like a single delete', () => {
    const p = run([orders], [inPlace(orders)], [twin], { guard: { enabled: true, maxDeletePercent: 0 } });
    assert.deepEqual(replaced(p), ['hand']);
  });
});

describe('twins: workload keys', () => {
  test('an entry without a usable address has no key', () => {
    assert.equal(workloadKey({ address: 'not an address!' }, {}, 'app'), undefined);
    assert.equal(workloadKey(undefined, {}, 'app'), undefined);
  });

  test('port order does not matter', () => {
    assert.equal(workloadKey({ address: '10.0.0.1', ports: { a: 1, b: 2 } }, {}, 'app'), workloadKey({ address: '10.0.0.1', ports: { b: 2, a: 1 } }, {}, 'app'));
  });
});
