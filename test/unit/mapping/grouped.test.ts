/**
 * The grouped mapping: a change to one group (a Consul service's answer) looks only at
 * that group's endpoints, says which names changed, and gives what buildDesiredState
 * gives over all endpoints, also when groups clash.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDesiredState, endpointMapper, type EndpointMapper } from '../../../src/mapping/desired.ts';
import { GroupedMapping } from '../../../src/mapping/grouped.ts';
import type { DesiredState } from '../../../src/mapping/types.ts';
import type { Endpoint } from '../../../src/providers/provider.ts';
import { endpoint, source } from '../../fixtures/builders.ts';
import { groupsOf } from '../../fixtures/groups.ts';

const spec = source('fleet').build().spec;
const rules = [{ action: 'replace' as const, sourceLabels: ['__meta_svc'], targetLabel: '__service__' }];

function service(s: number, instances: number, octet = 1): Endpoint[] {
  return Array.from({ length: instances }, (_, i) =>
    endpoint(`svc-${s}-${i}`).address(`10.${octet}.${s}.${i + 1}`).port(8080).scope(`svc-${s}`).meta({ __meta_svc: `svc-${s}` }).build(),
  );
}

/** A mapper that counts the endpoints it is asked about. */
function counting(): { readonly mapOne: EndpointMapper; calls: () => number } {
  const inner = endpointMapper({ sourceName: 'fleet', spec, providerRules: rules });
  let n = 0;
  return {
    mapOne: (e) => {
      n++;
      return inner(e);
    },
    calls: () => n,
  };
}

const whole = (groups: readonly (readonly Endpoint[])[]): DesiredState => buildDesiredState({ sourceName: 'fleet', spec, endpoints: groups.flat(), providerRules: rules });
const byName = (s: DesiredState) => new Map(s.entries.map((e) => [e.name, e]));

test('a single-service change maps only that service, and names only what changed', () => {
  const groups = Array.from({ length: 50 }, (_, s) => service(s, 5));
  const { mapOne, calls } = counting();
  const grouped = new GroupedMapping(mapOne);
  const first = grouped.update(groupsOf(groups));
  assert.equal(first.byName.size, 250);
  assert.equal(first.changed?.size, 250, 'everything is new at first');

  const before = calls();
  // Service 7 is re-addressed: its provider hands a new group; every other group is the same array.
  groups[7] = service(7, 5, 2);
  const second = grouped.update(groupsOf(groups));
  assert.ok(calls() - before <= 2 * 5, `only the 5 endpoints of service 7 were looked at (${calls() - before} calls)`);
  assert.deepEqual([...(second.changed ?? [])].sort(), [...byName(whole([service(7, 5, 2)])).keys()].sort());
  assert.deepEqual(new Map(second.byName), byName(whole(groups)), 'the same entries as mapping everything');

  const unchanged = grouped.update(groupsOf(groups));
  assert.equal(unchanged.changed?.size, 0, 'the same groups again: nothing changed');
});

test('added, removed and changed groups: changed names every entry of those groups, and nothing else', () => {
  const a = service(1, 3);
  const b = service(2, 3);
  const d = service(4, 2);
  const grouped = new GroupedMapping(endpointMapper({ sourceName: 'fleet', spec, providerRules: rules }));
  grouped.update(groupsOf([a, b, d]));
  // b loses its last instance (a new group: its endpoints are mapped anew); c appears; a goes; d stays.
  const b2 = b.slice(0, 2);
  const c = service(3, 1);
  const next = grouped.update(groupsOf([b2, d, c]));
  const names = (eps: Endpoint[]) => [...byName(whole([eps])).keys()];
  assert.deepEqual([...(next.changed ?? [])].sort(), [...names(a), ...names(b), ...names(c)].sort());
  assert.deepEqual(byName(grouped.state()), byName(whole([b2, d, c])), 'state() holds the same entries');
  assert.deepEqual(new Map(next.byName), byName(whole([b2, d, c])));
});

test('groups that clash fall back to mapping everything in endpoint id order, and come back when the clash is gone', () => {
  const a = service(1, 2);
  // The same endpoint id in another group: a registry error the whole-source mapping settles by id order.
  const dup = [endpoint('svc-1-0').address('10.9.9.9').port(8080).scope('svc-9').meta({ __meta_svc: 'svc-9' }).build()];
  const grouped = new GroupedMapping(endpointMapper({ sourceName: 'fleet', spec, providerRules: rules }));
  grouped.update(groupsOf([a]));
  const clashing = grouped.update(groupsOf([a, dup]));
  assert.equal(clashing.changed, undefined, 'a clash between groups: any name may have changed');
  const expected = whole([a, dup]);
  assert.deepEqual(new Map(clashing.byName), byName(expected));
  assert.deepEqual(grouped.state().skipped, expected.skipped);
  assert.equal(grouped.state().skipped.length, 1);

  const healed = grouped.update(groupsOf([a]));
  assert.equal(healed.changed, undefined, 'leaving the fallback re-plans everything once');
  assert.deepEqual(new Map(healed.byName), byName(whole([a])));
  assert.deepEqual(grouped.update(groupsOf([a])).changed?.size, 0);
});

test('skipped endpoints of every group are reported, sorted as buildDesiredState sorts them', () => {
  const bad = [endpoint('z-no-address').meta({ __meta_svc: 'web' }).build(), endpoint('a-no-address').meta({ __meta_svc: 'web' }).build()];
  const grouped = new GroupedMapping(endpointMapper({ sourceName: 'fleet', spec, providerRules: rules }));
  grouped.update(groupsOf([service(1, 2), bad]));
  assert.deepEqual(grouped.state().skipped, whole([service(1, 2), bad]).skipped);
  grouped.update(groupsOf([service(1, 2)]));
  assert.deepEqual(grouped.state().skipped, []);
});
