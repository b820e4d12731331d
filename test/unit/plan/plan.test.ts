/**
 * The planner, case by case: idempotency, the three kinds of change, which differences
 * raise an update (managed fields only), policies, unknown scopes, the deletion guard,
 * entries being deleted, and Healthy condition writes.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Policy } from '../../../src/api/types.ts';
import { toAppliedObject } from '../../../src/apply/apply.ts';
import { ENDPOINT_ANNOTATION, SCOPE_ANNOTATION } from '../../../src/api/ownership.ts';
import {
  APPLIED_HASH_ANNOTATION,
  appliedHash,
  changedFields,
  guardTrips,
  plan,
  type DeletionGuard,
  type Plan,
  type PlanInput,
} from '../../../src/plan/plan.ts';
import type { DesiredEntry } from '../../../src/mapping/types.ts';
import type { WorkloadEntry, WorkloadEntrySpec } from '../../../src/api/istio.ts';
import { source } from '../../fixtures/builders.ts';
import { isEmptyPlan } from '../../fixtures/plans.ts';

const src = source('web').namespace('apps').consul({ address: 'http://127.0.0.1:8500' }).build();
const NO_GUARD: DeletionGuard = { enabled: false, maxDeletePercent: 50 };
const GUARD_50: DeletionGuard = { enabled: true, maxDeletePercent: 50 };

interface EntryOptions {
  address?: string;
  scope?: string;
  labels?: Record<string, string>;
  spec?: Partial<WorkloadEntrySpec>;
  healthy?: boolean;
}

/** A desired entry shaped like the mapping engine's output. */
function entry(name: string, o: EntryOptions = {}): DesiredEntry {
  const scope = o.scope ?? 'web';
  const labels = o.labels ?? { app: 'web' };
  return {
    name,
    endpointId: `ep-${name}`,
    scope,
    labels,
    annotations: { [ENDPOINT_ANNOTATION]: `ep-${name}`, [SCOPE_ANNOTATION]: scope },
    spec: { address: o.address ?? '10.0.0.1', ports: { http: 8080 }, labels, ...o.spec },
    ...(o.healthy === undefined ? {} : { healthy: o.healthy }),
  };
}

/** What the apiserver holds after we applied d. */
const applied = (d: DesiredEntry): WorkloadEntry => structuredClone(toAppliedObject(d, src));

/** The object as applied, then changed by someone else (or by us, earlier). */
function withChange(d: DesiredEntry, change: (we: WorkloadEntry) => void): WorkloadEntry {
  const we = applied(d);
  change(we);
  return we;
}

function run(desired: DesiredEntry[], owned: WorkloadEntry[], more: Partial<PlanInput> = {}): Plan {
  return plan({ desired, owned, policy: 'sync', unknownScopes: [], guard: NO_GUARD, ...more });
}

const names = (xs: readonly { name: string }[]): string[] => xs.map((x) => x.name).sort();
const deleteNames = (p: Plan): string[] => p.deletes.map((d) => d.metadata.name).sort();
const updateNames = (p: Plan): string[] => p.updates.map((u) => u.desired.name).sort();

describe('plan: idempotency', () => {
  const desired = [
    entry('web-a', { address: '10.0.0.1' }),
    entry('web-b', { address: '10.0.0.2', spec: { network: 'net-1', locality: 'eu/west', weight: 5, serviceAccount: 'web-sa' } }),
    entry('web-c', { address: '10.0.0.3', labels: {}, spec: { ports: {} } }),
  ];

  for (const policy of ['sync', 'upsert-only', 'create-only'] as const satisfies readonly Policy[]) {
    test(`desired == current applied objects → empty plan (${policy})`, () => {
      const p = run(desired, desired.map(applied), { policy, guard: GUARD_50 });
      assert.deepEqual(p.creates, []);
      assert.deepEqual(p.updates, []);
      assert.deepEqual(p.deletes, []);
      assert.deepEqual(p.healthUpdates, []);
      assert.equal(p.heldBack.size, 0);
      assert.ok(isEmptyPlan(p));
    });
  }

  test('nothing desired and nothing owned → empty plan', () => {
    assert.ok(isEmptyPlan(run([], [])));
  });

  test('changedFields of an applied object is empty', () => {
    for (const d of desired) assert.deepEqual(changedFields(d, applied(d)), []);
  });
});

describe('plan: creates, updates and deletes', () => {
  test('a desired entry not owned is created', () => {
    const a = entry('web-a');
    const b = entry('web-b', { address: '10.0.0.2' });
    const p = run([a, b], [applied(a)]);
    assert.deepEqual(p.creates, [b]);
    assert.deepEqual(p.updates, []);
    assert.deepEqual(p.deletes, []);
    assert.ok(!isEmptyPlan(p));
  });

  test('an owned entry no longer desired is deleted', () => {
    const a = entry('web-a');
    const gone = applied(entry('web-gone', { address: '10.0.0.9' }));
    const p = run([a], [applied(a), gone]);
    assert.deepEqual(p.deletes, [gone]);
    assert.deepEqual(p.creates, []);
    assert.deepEqual(p.updates, []);
    assert.equal(p.heldBack.size, 0);
  });

  test('an owned entry whose managed field differs is updated, with current and the field named', () => {
    const old = entry('web-a', { address: '10.0.0.1' });
    const now = entry('web-a', { address: '10.0.0.7' });
    const current = applied(old);
    const p = run([now], [current]);
    assert.equal(p.updates.length, 1);
    const [u] = p.updates;
    assert.equal(u?.desired, now);
    assert.equal(u?.current, current);
    assert.deepEqual(u?.fields, ['spec.address', 'applied-hash']);
    assert.deepEqual(p.creates, []);
    assert.deepEqual(p.deletes, []);
  });

  test('create, update and delete in one plan', () => {
    const keep = entry('keep');
    const change = entry('change', { address: '10.0.0.2' });
    const add = entry('add', { address: '10.0.0.3' });
    const drop = entry('drop', { address: '10.0.0.4' });
    const p = run([keep, change, add], [applied(keep), applied(entry('change', { address: '10.9.9.9' })), applied(drop)]);
    assert.deepEqual(names(p.creates), ['add']);
    assert.deepEqual(updateNames(p), ['change']);
    assert.deepEqual(deleteNames(p), ['drop']);
  });
});

describe('plan: updates only on managed-field differences', () => {
  const d = entry('web-a', {
    labels: { app: 'web', version: 'v1' },
    spec: { network: 'net-1', locality: 'eu/west/a', weight: 3, serviceAccount: 'web-sa', ports: { http: 8080, grpc: 9090 } },
  });

  const noUpdate: Array<[string, (we: WorkloadEntry) => void]> = [
    ['an extra metadata label added by someone else', (we) => void (we.metadata.labels = { ...we.metadata.labels, 'team.example.com/owner': 'ops' })],
    ['an extra annotation (kubectl, Argo CD)', (we) => void (we.metadata.annotations = { ...we.metadata.annotations, 'argocd.argoproj.io/tracking-id': 'x' })],
    ['an extra spec label', (we) => void (we.spec.labels = { ...we.spec.labels, extra: 'yes' })],
    ['an extra port', (we) => void (we.spec.ports = { ...we.spec.ports, metrics: 9100 })],
    ['server-set metadata (uid, resourceVersion)', (we) => Object.assign(we.metadata, { uid: 'u-1', resourceVersion: '42', generation: 3, creationTimestamp: '2026-01-01T00:00:00Z' })],
    ['a status written by Istio', (we) => void (we.status = { conditions: [{ type: 'Healthy', status: 'True' }] })],
    ['a second ownerReference (not a controller)', (we) => void we.metadata.ownerReferences?.push({ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'u-2' })],
    ['the same maps in another key order', (we) => {
      we.spec.ports = { grpc: 9090, http: 8080 };
      we.spec.labels = { version: 'v1', app: 'web' };
      we.metadata.labels = Object.fromEntries(Object.entries(we.metadata.labels ?? {}).reverse());
    }],
  ];
  for (const [what, change] of noUpdate) {
    test(`no update for ${what}`, () => {
      const current = withChange(d, change);
      assert.deepEqual(changedFields(d, current), []);
      assert.ok(isEmptyPlan(run([d], [current])));
    });
  }

  // A desired entry that leaves optional fields to the server: values defaulted there are not ours.
  test('no update for fields the server defaults when we do not set them', () => {
    const bare = entry('web-b', { spec: { ports: { http: 8080 } } });
    const current = withChange(bare, (we) => Object.assign(we.spec, { weight: 1, network: '', locality: 'default', serviceAccount: 'default' }));
    assert.deepEqual(changedFields(bare, current), []);
    assert.ok(isEmptyPlan(run([bare], [current])));
  });

  const update: Array<[string, (we: WorkloadEntry) => void, string]> = [
    ['address', (we) => void (we.spec.address = '10.1.1.1'), 'spec.address'],
    ['a port number', (we) => void (we.spec.ports = { http: 8081, grpc: 9090 }), 'spec.ports'],
    ['a missing port', (we) => void (we.spec.ports = { http: 8080 }), 'spec.ports'],
    ['a spec label value', (we) => void (we.spec.labels = { app: 'web', version: 'v0' }), 'spec.labels'],
    ['network', (we) => void (we.spec.network = 'net-2'), 'spec.network'],
    ['locality', (we) => void delete we.spec.locality, 'spec.locality'],
    ['weight', (we) => void (we.spec.weight = 4), 'spec.weight'],
    ['serviceAccount', (we) => void (we.spec.serviceAccount = 'other'), 'spec.serviceAccount'],
    ['a metadata label removed', (we) => void delete we.metadata.labels?.['version'], 'metadata.labels'],
    ['an annotation of ours changed', (we) => void (we.metadata.annotations = { ...we.metadata.annotations, [ENDPOINT_ANNOTATION]: 'other' }), 'metadata.annotations'],
    ['the applied hash removed', (we) => void delete we.metadata.annotations?.[APPLIED_HASH_ANNOTATION], 'applied-hash'],
  ];
  for (const [what, change, field] of update) {
    test(`update when ${what} differs (${field})`, () => {
      const current = withChange(d, change);
      const p = run([d], [current]);
      assert.equal(p.updates.length, 1);
      assert.ok(p.updates[0]?.fields.includes(field), `fields ${JSON.stringify(p.updates[0]?.fields)} include ${field}`);
      assert.deepEqual(p.creates, []);
      assert.deepEqual(p.deletes, []);
    });
  }

  test('a field we stopped setting → update through the applied hash alone', () => {
    const before = entry('web-a', { spec: { weight: 3, network: 'net-1' } });
    const after = entry('web-a');
    const current = applied(before);
    // Every field we still set matches; only the hash tells the weight and network are stale.
    assert.deepEqual(changedFields(after, current), ['applied-hash']);
    const p = run([after], [current]);
    assert.deepEqual(updateNames(p), ['web-a']);
    assert.deepEqual(p.updates[0]?.fields, ['applied-hash']);
  });

  test('a port or label we stopped setting → update through the applied hash', () => {
    const before = entry('web-a', { labels: { app: 'web', tier: 'front' }, spec: { ports: { http: 8080, admin: 9000 } } });
    const after = entry('web-a');
    assert.deepEqual(changedFields(after, applied(before)), ['applied-hash']);
  });

  test('appliedHash ignores key order and sees every applied field', () => {
    const a = entry('x', { labels: { a: '1', b: '2' }, spec: { ports: { p: 1, q: 2 } } });
    const b: DesiredEntry = { ...a, labels: { b: '2', a: '1' }, spec: { ...a.spec, ports: { q: 2, p: 1 }, labels: { b: '2', a: '1' } } };
    assert.equal(appliedHash(a), appliedHash(b));
    const variants: DesiredEntry[] = [
      { ...a, labels: { ...a.labels, c: '3' } },
      { ...a, annotations: { ...a.annotations, n: 'v' } },
      { ...a, spec: { ...a.spec, address: '10.0.0.2' } },
      { ...a, spec: { ...a.spec, ports: { p: 1 } } },
      { ...a, spec: { ...a.spec, labels: {} } },
      { ...a, spec: { ...a.spec, network: 'n' } },
      { ...a, spec: { ...a.spec, locality: 'l' } },
      { ...a, spec: { ...a.spec, weight: 2 } },
      { ...a, spec: { ...a.spec, serviceAccount: 's' } },
    ];
    const hashes = new Set([appliedHash(a), ...variants.map(appliedHash)]);
    assert.equal(hashes.size, variants.length + 1);
    assert.match(appliedHash(a), /^[0-9a-f]{16}$/);
  });
});

describe('plan: policies', () => {
  const keep = entry('keep');
  const change = entry('change', { address: '10.0.0.2' });
  const add = entry('add', { address: '10.0.0.3' });
  const owned = () => [applied(keep), applied(entry('change', { address: '10.9.9.9' })), applied(entry('drop-1')), applied(entry('drop-2'))];

  test('sync creates, updates and deletes', () => {
    const p = run([keep, change, add], owned(), { policy: 'sync' });
    assert.deepEqual(names(p.creates), ['add']);
    assert.deepEqual(updateNames(p), ['change']);
    assert.deepEqual(deleteNames(p), ['drop-1', 'drop-2']);
    assert.equal(p.heldBack.size, 0);
  });

  test('upsert-only creates and updates, holds deletes back as Policy', () => {
    const p = run([keep, change, add], owned(), { policy: 'upsert-only' });
    assert.deepEqual(names(p.creates), ['add']);
    assert.deepEqual(updateNames(p), ['change']);
    assert.deepEqual(p.deletes, []);
    assert.deepEqual([...p.heldBack], [['Policy', 2]]);
  });

  test('create-only creates only: no updates, deletes held back as Policy', () => {
    const p = run([keep, change, add], owned(), { policy: 'create-only' });
    assert.deepEqual(names(p.creates), ['add']);
    assert.deepEqual(p.updates, []);
    assert.deepEqual(p.deletes, []);
    assert.deepEqual([...p.heldBack], [['Policy', 2]]);
  });

  test('a policy that holds nothing back records nothing', () => {
    for (const policy of ['upsert-only', 'create-only'] as const) {
      assert.equal(run([keep], [applied(keep)], { policy }).heldBack.size, 0);
    }
  });

  test('policy hold comes before the deletion guard', () => {
    const p = run([], owned(), { policy: 'upsert-only', guard: { enabled: true, maxDeletePercent: 0 } });
    assert.deepEqual([...p.heldBack], [['Policy', 4]]);
  });
});

describe('plan: unknown scopes', () => {
  const east = (n: string) => applied(entry(n, { scope: 'east' }));
  const west = (n: string) => applied(entry(n, { scope: 'west' }));

  test('entries of a scope the provider could not read are held back as UnknownScope, others deleted', () => {
    const p = run([], [east('e1'), east('e2'), west('w1')], { unknownScopes: ['east'] });
    assert.deepEqual(deleteNames(p), ['w1']);
    assert.deepEqual([...p.heldBack], [['UnknownScope', 2]]);
  });

  test('several unknown scopes', () => {
    const p = run([], [east('e1'), west('w1'), applied(entry('n1', { scope: 'north' }))], { unknownScopes: ['east', 'west'] });
    assert.deepEqual(deleteNames(p), ['n1']);
    assert.equal(p.heldBack.get('UnknownScope'), 2);
  });

  test('an entry without a scope annotation is not protected by an unknown scope', () => {
    const bare = withChange(entry('bare'), (we) => void delete we.metadata.annotations?.[SCOPE_ANNOTATION]);
    const p = run([], [bare], { unknownScopes: ['web', ''] });
    assert.deepEqual(deleteNames(p), ['bare']);
  });

  test('the empty scope is a scope like any other', () => {
    const p = run([], [applied(entry('e', { scope: '' }))], { unknownScopes: [''] });
    assert.deepEqual(p.deletes, []);
    assert.equal(p.heldBack.get('UnknownScope'), 1);
  });

  test('unknown scopes do not stop creates and deletions elsewhere; with upsert-only the rest is held as Policy', () => {
    const p = run([entry('new', { scope: 'west' })], [east('e1'), west('w1')], { unknownScopes: ['east'], policy: 'upsert-only' });
    assert.deepEqual(names(p.creates), ['new']);
    assert.deepEqual(p.deletes, []);
    assert.equal(p.heldBack.get('UnknownScope'), 1);
    assert.equal(p.heldBack.get('Policy'), 1);
  });
});

describe('deletion guard', () => {
  const ownedN = (n: number) => Array.from({ length: n }, (_, i) => applied(entry(`e-${i}`, { address: `10.0.0.${i + 1}` })));

  test('guardTrips: a single deletion is always allowed', () => {
    for (const max of [0, 10, 50, 100]) {
      assert.equal(guardTrips({ enabled: true, maxDeletePercent: max }, 1, 1), false, `1 of 1 at ${max}%`);
      assert.equal(guardTrips({ enabled: true, maxDeletePercent: max }, 1, 10), false, `1 of 10 at ${max}%`);
    }
  });

  test('guardTrips: threshold math at 50%', () => {
    const cases: Array<[deletes: number, owned: number, trips: boolean]> = [
      [0, 4, false],
      [2, 4, false], // exactly 50% is allowed
      [3, 4, true],
      [2, 3, true], // 66%
      [2, 2, true],
      [5, 10, false],
      [6, 10, true],
      [50, 100, false],
      [51, 100, true],
      [2, 0, false], // nothing owned: nothing to protect
    ];
    for (const [deletes, owned, trips] of cases) {
      assert.equal(guardTrips(GUARD_50, deletes, owned), trips, `${deletes} of ${owned}`);
    }
  });

  test('guardTrips: 0% holds any multiple deletion, 100% none', () => {
    assert.equal(guardTrips({ enabled: true, maxDeletePercent: 0 }, 2, 1000), true);
    assert.equal(guardTrips({ enabled: true, maxDeletePercent: 100 }, 10, 10), false);
  });

  test('guardTrips: disabled never trips', () => {
    assert.equal(guardTrips({ enabled: false, maxDeletePercent: 0 }, 100, 100), false);
    assert.equal(guardTrips({ enabled: false, maxDeletePercent: 50 }, 3, 4), false);
  });

  test('plan: a sync deleting more than the limit holds every deletion back as DeletionGuard', () => {
    const owned = ownedN(4);
    const p = run([entry('e-0', { address: '10.0.0.1' })], owned, { guard: GUARD_50 });
    assert.deepEqual(p.deletes, []);
    assert.deepEqual([...p.heldBack], [['DeletionGuard', 3]]);
    assert.ok(isEmptyPlan(p), 'nothing else to do');
  });

  test('plan: at the limit the deletions go ahead', () => {
    const owned = ownedN(4);
    const p = run([entry('e-0', { address: '10.0.0.1' }), entry('e-1', { address: '10.0.0.2' })], owned, { guard: GUARD_50 });
    assert.deepEqual(deleteNames(p), ['e-2', 'e-3']);
    assert.equal(p.heldBack.size, 0);
  });

  test('plan: the last entry of a source can be deleted', () => {
    const p = run([], ownedN(1), { guard: { enabled: true, maxDeletePercent: 0 } });
    assert.deepEqual(deleteNames(p), ['e-0']);
  });

  test('plan: the guard does not hold creates and updates', () => {
    const owned = ownedN(4);
    const p = run([entry('e-0', { address: '10.9.9.9' }), entry('fresh', { address: '10.0.0.99' })], owned, { guard: GUARD_50 });
    assert.deepEqual(names(p.creates), ['fresh']);
    assert.deepEqual(updateNames(p), ['e-0']);
    assert.equal(p.heldBack.get('DeletionGuard'), 3);
  });

  test('plan: disabled guard lets a full wipe through', () => {
    const p = run([], ownedN(5), { guard: NO_GUARD });
    assert.equal(p.deletes.length, 5);
  });

  test('plan: held unknown-scope entries are not counted as deletions by the guard', () => {
    const owned = [...ownedN(2), ...['x', 'y'].map((n) => applied(entry(n, { scope: 'east' })))];
    const p = run([], owned, { guard: GUARD_50, unknownScopes: ['east'] });
    assert.deepEqual(deleteNames(p), ['e-0', 'e-1']);
    assert.equal(p.heldBack.get('UnknownScope'), 2);
    assert.equal(p.heldBack.has('DeletionGuard'), false);
  });
});

describe('plan: entries being deleted', () => {
  const deleting = (d: DesiredEntry): WorkloadEntry => withChange(d, (we) => void (we.metadata.deletionTimestamp = '2026-01-01T00:00:00Z'));

  test('an owned entry with a deletionTimestamp is neither deleted again nor counted', () => {
    const p = run([], [deleting(entry('going'))]);
    assert.ok(isEmptyPlan(p));
    assert.equal(p.heldBack.size, 0);
  });

  test('a desired entry whose object is being deleted is neither created nor updated (next run recreates it)', () => {
    const d = entry('back');
    const p = run([d], [deleting(entry('back', { address: '10.9.9.9' }))]);
    assert.ok(isEmptyPlan(p));
  });

  test('no health write to an entry being deleted', () => {
    const p = run([entry('h', { healthy: false })], [deleting(entry('h'))]);
    assert.deepEqual(p.healthUpdates, []);
  });
});

describe('plan: health updates', () => {
  const withHealth = (d: DesiredEntry, status: 'True' | 'False' | 'Unknown' | undefined, type = 'Healthy'): WorkloadEntry =>
    withChange(d, (we) => {
      if (status !== undefined) we.status = { conditions: [{ type, status, lastTransitionTime: '2026-01-01T00:00:00Z' }] };
    });

  const cases: Array<[string, boolean | undefined, 'True' | 'False' | 'Unknown' | undefined, boolean]> = [
    ['healthy and condition True', true, 'True', false],
    ['unhealthy and condition False', false, 'False', false],
    ['healthy and condition False', true, 'False', true],
    ['unhealthy and condition True', false, 'True', true],
    ['healthy and no condition', true, undefined, true],
    ['unhealthy and no condition', false, undefined, true],
    ['healthy and condition Unknown', true, 'Unknown', true],
    ['unhealthy and condition Unknown', false, 'Unknown', true],
    ['no verdict (exclude mode) and condition False', undefined, 'False', false],
    ['no verdict and no condition', undefined, undefined, false],
  ];
  for (const [what, healthy, status, write] of cases) {
    test(`${what} → ${write ? 'write' : 'no write'}`, () => {
      const d = entry('vm', healthy === undefined ? {} : { healthy });
      const p = run([d], [withHealth(d, status)]);
      assert.deepEqual(p.healthUpdates, write ? [{ name: 'vm', healthy }] : []);
      assert.deepEqual(p.updates, [], 'health never raises a spec update');
      assert.equal(isEmptyPlan(p), !write);
    });
  }

  test('other condition types are not the Healthy condition', () => {
    const d = entry('vm', { healthy: true });
    const p = run([d], [withHealth(d, 'True', 'Ready')]);
    assert.deepEqual(p.healthUpdates, [{ name: 'vm', healthy: true }]);
  });

  test('a create carries its health with it, not as a health update', () => {
    const p = run([entry('new', { healthy: false })], []);
    assert.equal(p.creates.length, 1);
    assert.deepEqual(p.healthUpdates, []);
  });

  test('health updates are raised under create-only too (status, not spec)', () => {
    const d = entry('vm', { healthy: false });
    const p = run([d], [withHealth(d, 'True')], { policy: 'create-only' });
    assert.deepEqual(p.healthUpdates, [{ name: 'vm', healthy: false }]);
  });
});
