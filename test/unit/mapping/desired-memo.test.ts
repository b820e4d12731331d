/** Work proportional to the change: a registry change to one service maps only that service's endpoints. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDesiredState, MappingMemo } from '../../../src/mapping/desired.ts';
import { appliedHash } from '../../../src/plan/plan.ts';
import type { Endpoint } from '../../../src/providers/provider.ts';
import { endpoint, source } from '../../fixtures/builders.ts';

const spec = source('fleet').build().spec;
const rules = [{ action: 'replace' as const, sourceLabels: ['__meta_svc'], targetLabel: '__service__' }];

function service(s: number, instances: number, octet = 1): Endpoint[] {
  return Array.from({ length: instances }, (_, i) =>
    endpoint(`svc-${s}-${i}`).address(`10.${octet}.${s}.${i + 1}`).port(8080).scope(`svc-${s}`).meta({ __meta_svc: `svc-${s}` }).build(),
  );
}

test('a single-service change does not map the whole source', () => {
  const services = Array.from({ length: 10 }, (_, s) => service(s, 10));
  const memo = new MappingMemo();
  const build = (endpoints: Endpoint[]) => buildDesiredState({ sourceName: 'fleet', spec, endpoints, providerRules: rules, memo });

  const first = build(services.flat());
  assert.equal(first.entries.length, 100);
  assert.deepEqual({ mapped: memo.mapped, reused: memo.reused }, { mapped: 100, reused: 0 });

  // Service 3 changes (re-addressed): the provider hands new Endpoint objects for it only.
  services[3] = service(3, 10, 2);
  const second = build(services.flat());
  assert.deepEqual({ mapped: memo.mapped, reused: memo.reused }, { mapped: 110, reused: 90 }, 'only the 10 endpoints of service 3 were mapped');

  const fresh = buildDesiredState({ sourceName: 'fleet', spec, endpoints: services.flat(), providerRules: rules });
  assert.deepEqual(second, fresh, 'the memo changes no result');
  assert.ok(second.entries.filter((e) => e.spec.address.startsWith('10.2.3.')).length === 10);
});

test('skipped endpoints are remembered with their reason', () => {
  const memo = new MappingMemo();
  const bad = endpoint('no-address').meta({ __meta_svc: 'web' }).build();
  const eps = [bad, ...service(1, 2)];
  const a = buildDesiredState({ sourceName: 'fleet', spec, endpoints: eps, providerRules: rules, memo });
  const b = buildDesiredState({ sourceName: 'fleet', spec, endpoints: eps, providerRules: rules, memo });
  assert.equal(a.skipped.length, 1);
  assert.deepEqual(b.skipped, a.skipped);
  assert.equal(memo.reused, 3);
});

test('the applied hash of a reused entry is computed once and stays equal to a fresh one', () => {
  const eps = service(1, 1);
  const memo = new MappingMemo();
  const a = buildDesiredState({ sourceName: 'fleet', spec, endpoints: eps, providerRules: rules, memo }).entries[0]!;
  const b = buildDesiredState({ sourceName: 'fleet', spec, endpoints: eps, providerRules: rules, memo }).entries[0]!;
  assert.equal(a, b, 'the same entry object');
  const fresh = buildDesiredState({ sourceName: 'fleet', spec, endpoints: eps, providerRules: rules }).entries[0]!;
  assert.notEqual(fresh, a);
  assert.equal(appliedHash(a), appliedHash(fresh));
});
