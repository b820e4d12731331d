import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { RelabelRuleInput } from '../../../src/api/types.ts';
import type { Endpoint } from '../../../src/providers/provider.ts';
import { buildDesiredState } from '../../../src/mapping/desired.ts';
import { isDns1123Label, isValidLabelKey, isValidLabelValue } from '../../../src/mapping/sanitize.ts';
import type { DesiredState } from '../../../src/mapping/types.ts';
import { source } from '../../fixtures/builders.ts';

// Rules like a provider's defaults plus a user's: every action is exercised.
const providerRules: RelabelRuleInput[] = [
  { sourceLabels: ['__meta_svc'], targetLabel: '__service__' },
  { action: 'labelmap', regex: '__meta_tag_(.+)' },
  { action: 'lowercase', sourceLabels: ['__meta_zone'], targetLabel: '__locality__' },
];
const spec = source('props')
  .consul({ address: 'http://127.0.0.1:8500' })
  .labels({ 'example.com/team': 'pay' })
  .relabel(
    { action: 'drop', sourceLabels: ['__meta_skip'], regex: 'yes' },
    { sourceLabels: ['__meta_svc', '__meta_zone'], regex: '(.*);(.*)', targetLabel: 'route', replacement: '$1-$2' },
    { action: 'labeldrop', regex: '__meta_tag_.*' },
    { action: 'uppercase', sourceLabels: ['__meta_env'], targetLabel: 'ENV' },
  )
  .build().spec;

const text = fc.string({ unit: 'binary', maxLength: 80 });
const ipv4 = fc.ipV4();
const ipv6 = fc.ipV6();
const hostname = fc.domain();
const label = fc.oneof(
  fc.constantFrom('__address__', '__port__', '__port_name__', '__weight__', '__network__', '__service_account__', '__meta_svc'),
  fc.constantFrom('__meta_zone', '__meta_skip', '__meta_env', '__port_http__', '__port_GRPC__', 'app', '__proto__', 'constructor'),
  text.map((s) => `__meta_tag_${s}`),
  text,
);
const value = fc.oneof(
  text,
  ipv4,
  ipv6,
  hostname,
  fc.integer({ min: -5, max: 70_000 }).map(String),
  fc.constantFrom('', 'yes', '1', '65535', 'vm-sa', 'Net 1'),
);
const labelSet = fc
  .array(fc.tuple(label, value), { maxLength: 12 })
  .map((pairs) => {
    const labels: Record<string, string> = {};
    for (const [k, v] of pairs) Object.defineProperty(labels, k, { value: v, enumerable: true, writable: true, configurable: true });
    return labels;
  });
// Realistic endpoints: a valid address most of the time, so entries are produced too.
const endpointArb: fc.Arbitrary<Endpoint> = fc
  .record({
    id: fc.oneof(fc.constantFrom('i-1', 'i-2', 'i-3', 'node/web'), text),
    scope: fc.constantFrom('', 'web', 'eu-west1-b'),
    labels: labelSet,
    address: fc.option(fc.oneof(ipv4, ipv6, hostname, fc.constantFrom('10.0.0.1', '10.0.0.2')), { nil: undefined }),
    healthy: fc.option(fc.boolean(), { nil: undefined }),
  })
  .map(({ id, scope, labels, address, healthy }) => ({
    id,
    scope,
    labels: address === undefined ? labels : { ...labels, __address__: address },
    ...(healthy === undefined ? {} : { healthy }),
  }));
const endpointsArb = fc.array(endpointArb, { maxLength: 25 });

function run(endpoints: readonly Endpoint[]): DesiredState {
  return buildDesiredState({ sourceName: 'props', spec, endpoints, providerRules });
}

describe('buildDesiredState properties', () => {
  test('never throws for arbitrary endpoint label sets; every endpoint is an entry, skipped or dropped once', () => {
    fc.assert(
      fc.property(endpointsArb, (endpoints) => {
        const state = run(endpoints);
        assert.ok(state.entries.length + state.skipped.length <= endpoints.length);
        for (const s of state.skipped) assert.ok(s.reason.length > 0 && s.reason.length < 400, s.reason);
      }),
      { numRuns: 500 },
    );
  });

  test('every produced label key and value is valid Kubernetes syntax', () => {
    fc.assert(
      fc.property(endpointsArb, (endpoints) => {
        for (const entry of run(endpoints).entries) {
          assert.deepEqual(entry.spec.labels, entry.labels);
          for (const [k, v] of Object.entries(entry.labels)) {
            assert.ok(isValidLabelKey(k), `key ${JSON.stringify(k)}`);
            assert.ok(isValidLabelValue(v), `value ${JSON.stringify(v)}`);
            assert.ok(k !== 'app.kubernetes.io/managed-by' && k !== 'vmregistry.io/source');
          }
          for (const [name, port] of Object.entries(entry.spec.ports ?? {})) {
            assert.ok(isDns1123Label(name), name);
            assert.ok(Number.isInteger(port) && port >= 1 && port <= 65535);
          }
          if (entry.spec.weight !== undefined) assert.ok(entry.spec.weight >= 1 && entry.spec.weight <= 1_000_000);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('names are DNS-1123 labels of at most 63 characters, unique, and sorted; ids and addresses are unique', () => {
    fc.assert(
      fc.property(endpointsArb, (endpoints) => {
        const { entries } = run(endpoints);
        const names = entries.map((e) => e.name);
        for (const n of names) assert.ok(isDns1123Label(n) && n.length <= 63, n);
        assert.equal(new Set(names).size, names.length);
        assert.deepEqual(names, [...names].sort());
        assert.equal(new Set(entries.map((e) => e.endpointId)).size, entries.length);
        const addresses = entries.map((e) => `${e.spec.network ?? ''} ${e.spec.address} ${e.labels['app'] ?? ''} ${JSON.stringify(Object.entries(e.spec.ports ?? {}).sort())}`);
        assert.equal(new Set(addresses).size, addresses.length);
      }),
      { numRuns: 500 },
    );
  });

  test('is deterministic and independent of endpoint order', () => {
    fc.assert(
      fc.property(
        endpointsArb.chain((eps) => fc.tuple(fc.constant(eps), fc.shuffledSubarray(eps, { minLength: eps.length, maxLength: eps.length }))),
        ([endpoints, shuffled]) => {
          const a = run(endpoints);
          assert.deepEqual(run(shuffled), a);
          assert.equal(JSON.stringify(run(endpoints)), JSON.stringify(a));
        },
      ),
      { numRuns: 500 },
    );
  });

  test('an endpoint’s name does not depend on the other endpoints', () => {
    fc.assert(
      fc.property(endpointArb, endpointsArb, (one, others) => {
        const alone = run([one]).entries[0];
        fc.pre(alone !== undefined);
        const together = run([one, ...others.filter((o) => o.id !== one.id)]).entries.find((e) => e.endpointId === one.id);
        if (together !== undefined) assert.equal(together.name, alone.name);
      }),
      { numRuns: 300 },
    );
  });
});
