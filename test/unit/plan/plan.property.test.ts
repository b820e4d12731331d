/**
 * Properties of the planner over arbitrary desired and owned sets (policy sync, guard
 * off, every scope readable): carrying the plan out converges on the desired set in one
 * step, the plan touches only what is owned, a second plan is empty, and input order
 * does not matter.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { toAppliedObject } from '../../../src/apply/apply.ts';
import { ENDPOINT_ANNOTATION, SCOPE_ANNOTATION } from '../../../src/api/ownership.ts';
import { APPLIED_HASH_ANNOTATION, changedFields, healthyStatus, plan, type Plan } from '../../../src/plan/plan.ts';
import type { DesiredEntry } from '../../../src/mapping/types.ts';
import type { WorkloadEntry, WorkloadEntrySpec } from '../../../src/api/istio.ts';
import { source } from '../../fixtures/builders.ts';
import { isEmptyPlan } from '../../fixtures/plans.ts';

const src = source('props').namespace('apps').consul({ address: 'http://127.0.0.1:8500' }).build();

// Small pools, so desired and owned overlap often and values collide.
const nameArb = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'web-1', 'web-2', 'db-0', 'x-9');
const keyArb = fc.constantFrom('app', 'version', 'tier', 'example.com/team', 'zone');
const valueArb = fc.constantFrom('', 'web', 'v1', 'v2', 'front', 'eu-1');
const mapArb = fc.dictionary(keyArb, valueArb, { maxKeys: 4 });
const portsArb = fc.dictionary(fc.constantFrom('http', 'grpc', 'tcp-db', 'admin'), fc.integer({ min: 1, max: 65535 }), { maxKeys: 3 });
const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const specArb: fc.Arbitrary<WorkloadEntrySpec> = fc
  .record({
    address: fc.constantFrom('10.0.0.1', '10.0.0.2', '10.0.0.3', 'fd00::1', 'vm.example.com'),
    ports: opt(portsArb),
    network: opt(fc.constantFrom('net-1', 'net-2')),
    locality: opt(fc.constantFrom('eu', 'eu/west', 'us/east/1')),
    weight: opt(fc.integer({ min: 1, max: 1000 })),
    serviceAccount: opt(fc.constantFrom('sa-1', 'sa-2')),
  })
  .map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as WorkloadEntrySpec);

/** A desired entry under a given name, shaped like the mapping engine's output (spec.labels = labels). */
const entryArb = (name: string): fc.Arbitrary<DesiredEntry> =>
  fc.record({ spec: specArb, labels: mapArb, scope: fc.constantFrom('', 'web', 'db'), healthy: opt(fc.boolean()) }).map(({ spec, labels, scope, healthy }) => ({
    name,
    endpointId: `ep/${name}`,
    scope,
    labels,
    annotations: { [ENDPOINT_ANNOTATION]: `ep/${name}`, [SCOPE_ANNOTATION]: scope },
    spec: { ...spec, labels },
    ...(healthy === undefined ? {} : { healthy }),
  }));

/** Entries with unique names (names are unique per source). */
const entriesArb: fc.Arbitrary<DesiredEntry[]> = fc
  .uniqueArray(nameArb, { maxLength: 10 })
  .chain((names) => (names.length === 0 ? fc.constant([]) : fc.tuple(...names.map(entryArb))));

/** A change made to an applied object by someone else, or left over from an earlier spec. */
type Mutation = (we: WorkloadEntry) => void;
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  specArb.map((spec): Mutation => (we) => void (we.spec = { ...spec, ...(we.spec.labels ? { labels: we.spec.labels } : {}) })),
  fc.constantFrom('10.9.9.9', '10.0.0.1').map((a): Mutation => (we) => void (we.spec.address = a)),
  portsArb.map((p): Mutation => (we) => void (we.spec.ports = { ...we.spec.ports, ...p })),
  fc.constant<Mutation>((we) => void delete we.spec.ports),
  mapArb.map((m): Mutation => (we) => void (we.spec.labels = { ...we.spec.labels, ...m })),
  mapArb.map((m): Mutation => (we) => void (we.metadata.labels = { ...we.metadata.labels, ...m })),
  keyArb.map((k): Mutation => (we) => void delete we.metadata.labels?.[k]),
  keyArb.map((k): Mutation => (we) => void delete we.spec.labels?.[k]),
  fc.constantFrom('kubectl.kubernetes.io/last-applied-configuration', ENDPOINT_ANNOTATION, SCOPE_ANNOTATION).map(
    (k): Mutation => (we) => void (we.metadata.annotations = { ...we.metadata.annotations, [k]: 'changed' }),
  ),
  fc.constant<Mutation>((we) => void delete we.metadata.annotations?.[APPLIED_HASH_ANNOTATION]),
  fc.constant<Mutation>((we) => Object.assign(we.metadata, { uid: 'uid-x', resourceVersion: '7' })),
  fc.constant<Mutation>((we) => void (we.spec.weight = we.spec.weight ?? 1)),
  fc.constantFrom('True', 'False', 'Unknown').map(
    (status): Mutation => (we) => void (we.status = { conditions: [{ type: 'Healthy', status: status as 'True' | 'False' | 'Unknown' }] }),
  ),
);

/** Owned objects: applied from random entries (a stale spec of the same names, or others), then mutated. */
const ownedArb: fc.Arbitrary<WorkloadEntry[]> = entriesArb.chain((entries) =>
  entries.length === 0
    ? fc.constant([])
    : fc.tuple(...entries.map((e) => fc.array(mutationArb, { maxLength: 3 }).map((ms) => {
        const we = structuredClone(toAppliedObject(e, src));
        for (const m of ms) m(we);
        return we;
      }))),
);

/** Owned objects that match some desired entries exactly, others stale, plus unrelated ones. */
const scenarioArb = fc
  .tuple(entriesArb, ownedArb, fc.array(fc.boolean(), { minLength: 10, maxLength: 10 }))
  .map(([desired, others, exact]) => {
    const ownedByName = new Map(others.map((o) => [o.metadata.name, o]));
    desired.forEach((d, i) => {
      if (exact[i]) ownedByName.set(d.name, structuredClone(toAppliedObject(d, src)));
    });
    return { desired, owned: [...ownedByName.values()] };
  });

const planFor = (desired: readonly DesiredEntry[], owned: readonly WorkloadEntry[]): Plan =>
  plan({ desired, owned, policy: 'sync', unknownScopes: [], guard: { enabled: false, maxDeletePercent: 50 } });

const HEALTH_TIME = '2026-01-01T00:00:00Z';
const withHealth = (we: WorkloadEntry, healthy: boolean): WorkloadEntry => ({
  ...we,
  status: { conditions: [{ type: 'Healthy', status: healthy ? 'True' : 'False', lastTransitionTime: HEALTH_TIME }] },
});

/**
 * What the apiserver holds after applyPlan: creates and updates are server-side applies of
 * toAppliedObject (status untouched), deletes remove, and Healthy is written for creates
 * that carry a verdict and for every health update.
 */
function simulate(owned: readonly WorkloadEntry[], p: Plan): WorkloadEntry[] {
  const byName = new Map(owned.map((o) => [o.metadata.name, structuredClone(o)]));
  for (const d of p.deletes) byName.delete(d.metadata.name);
  for (const d of p.creates) {
    const we = structuredClone(toAppliedObject(d, src));
    byName.set(d.name, d.healthy === undefined ? we : withHealth(we, d.healthy));
  }
  for (const { desired } of p.updates) {
    const before = byName.get(desired.name);
    const we = structuredClone(toAppliedObject(desired, src));
    byName.set(desired.name, before?.status ? { ...we, status: before.status } : we);
  }
  for (const h of p.healthUpdates) {
    const we = byName.get(h.name);
    assert.ok(we, `health update for ${h.name} names an existing entry`);
    byName.set(h.name, withHealth(we, h.healthy));
  }
  return [...byName.values()];
}

const sortedNames = (xs: Iterable<string>): string[] => [...xs].sort();

/** The plan as a value independent of the order it lists things in. */
function canonical(p: Plan): unknown {
  return {
    creates: sortedNames(p.creates.map((c) => c.name)),
    updates: p.updates.map((u) => [u.desired.name, [...u.fields].sort()]).sort(([a], [b]) => String(a).localeCompare(String(b))),
    deletes: sortedNames(p.deletes.map((d) => d.metadata.name)),
    heldBack: [...p.heldBack].sort(([a], [b]) => a.localeCompare(b)),
    health: p.healthUpdates.map((h) => `${h.name}=${h.healthy}`).sort(),
  };
}

const RUNS = { numRuns: 300 };

describe('plan properties (policy sync, guard off, no unknown scopes)', () => {
  test('carrying out the plan yields exactly the desired set, managed fields and health included', () => {
    fc.assert(
      fc.property(scenarioArb, ({ desired, owned }) => {
        const after = simulate(owned, planFor(desired, owned));
        assert.deepEqual(sortedNames(after.map((a) => a.metadata.name)), sortedNames(desired.map((d) => d.name)));
        const byName = new Map(after.map((a) => [a.metadata.name, a]));
        for (const d of desired) {
          const current = byName.get(d.name);
          assert.ok(current);
          assert.deepEqual(changedFields(d, current), [], `${d.name} matches its desired entry`);
          if (d.healthy !== undefined) assert.equal(healthyStatus(current), d.healthy ? 'True' : 'False', `${d.name} carries its health`);
        }
      }),
      RUNS,
    );
  });

  test('the plan updates and deletes only owned entries, creates only what is not owned, each name once', () => {
    fc.assert(
      fc.property(scenarioArb, ({ desired, owned }) => {
        const p = planFor(desired, owned);
        const ownedSet = new Set(owned);
        const ownedNames = new Set(owned.map((o) => o.metadata.name));
        const desiredNames = new Set(desired.map((d) => d.name));
        for (const u of p.updates) {
          assert.ok(ownedSet.has(u.current), `update of ${u.desired.name} carries the owned object`);
          assert.equal(u.current.metadata.name, u.desired.name);
          assert.ok(u.fields.length > 0);
        }
        for (const d of p.deletes) {
          assert.ok(ownedSet.has(d), `delete of ${d.metadata.name} is an owned object`);
          assert.ok(!desiredNames.has(d.metadata.name), `${d.metadata.name} is not desired`);
        }
        for (const c of p.creates) assert.ok(!ownedNames.has(c.name), `create of ${c.name} is not owned`);
        for (const h of p.healthUpdates) assert.ok(ownedNames.has(h.name) && desiredNames.has(h.name));
        const touched = [...p.creates.map((c) => c.name), ...p.updates.map((u) => u.desired.name), ...p.deletes.map((d) => d.metadata.name)];
        assert.equal(new Set(touched).size, touched.length, 'no name in two kinds of change');
        assert.equal(p.heldBack.size, 0, 'nothing is held back under sync with the guard off');
      }),
      RUNS,
    );
  });

  test('planning again after carrying out the plan gives an empty plan', () => {
    fc.assert(
      fc.property(scenarioArb, ({ desired, owned }) => {
        const after = simulate(owned, planFor(desired, owned));
        const again = planFor(desired, after);
        assert.ok(isEmptyPlan(again), JSON.stringify(canonical(again)));
        assert.equal(again.heldBack.size, 0);
      }),
      RUNS,
    );
  });

  test('desired == applied(desired) gives an empty plan', () => {
    fc.assert(
      fc.property(entriesArb, (desired) => {
        const owned = desired.map((d) => {
          const we = structuredClone(toAppliedObject(d, src));
          return d.healthy === undefined ? we : withHealth(we, d.healthy);
        });
        assert.ok(isEmptyPlan(planFor(desired, owned)));
      }),
      RUNS,
    );
  });

  test('the plan does not depend on the order of desired or owned', () => {
    fc.assert(
      fc.property(
        scenarioArb.chain(({ desired, owned }) =>
          fc.tuple(fc.constant(desired), fc.constant(owned), fc.shuffledSubarray(desired, { minLength: desired.length }), fc.shuffledSubarray(owned, { minLength: owned.length })),
        ),
        ([desired, owned, desired2, owned2]) => {
          assert.deepEqual(canonical(planFor(desired2, owned2)), canonical(planFor(desired, owned)));
        },
      ),
      RUNS,
    );
  });

  test('entries being deleted are never updated, deleted or recreated', () => {
    fc.assert(
      fc.property(scenarioArb, fc.array(fc.boolean(), { minLength: 10, maxLength: 10 }), ({ desired, owned }, marks) => {
        const withDeleting = owned.map((o, i) => (marks[i] ? { ...o, metadata: { ...o.metadata, deletionTimestamp: HEALTH_TIME } } : o));
        const deleting = new Set(withDeleting.filter((o) => o.metadata.deletionTimestamp !== undefined).map((o) => o.metadata.name));
        const p = planFor(desired, withDeleting);
        for (const name of [...p.creates.map((c) => c.name), ...p.updates.map((u) => u.desired.name), ...p.deletes.map((d) => d.metadata.name), ...p.healthUpdates.map((h) => h.name)]) {
          assert.ok(!deleting.has(name), `${name} is being deleted`);
        }
      }),
      RUNS,
    );
  });
});
