import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RelabelRuleInput } from '../../../src/api/types.ts';
import type { Endpoint } from '../../../src/providers/provider.ts';
import { buildDesiredState, outputLabels } from '../../../src/mapping/desired.ts';
import { workloadEntryName } from '../../../src/mapping/names.ts';
import { RelabelError } from '../../../src/mapping/relabel.ts';
import type { DesiredEntry, DesiredState } from '../../../src/mapping/types.ts';
import { endpoint, source, type SourceBuilder } from '../../fixtures/builders.ts';

const consul = (name = 'payments'): SourceBuilder => source(name).consul({ address: 'http://127.0.0.1:8500' });
const serviceFromMeta: RelabelRuleInput[] = [{ sourceLabels: ['__meta_consul_service'], targetLabel: '__service__' }];

function build(src: SourceBuilder, endpoints: Endpoint[], providerRules: RelabelRuleInput[] = serviceFromMeta): DesiredState {
  const s = src.build();
  return buildDesiredState({ sourceName: s.metadata.name, spec: s.spec, endpoints, providerRules });
}

function only(state: DesiredState): DesiredEntry {
  assert.deepEqual(state.skipped, []);
  assert.equal(state.entries.length, 1);
  return state.entries[0]!;
}

function skipReason(state: DesiredState): string {
  assert.equal(state.entries.length, 0);
  assert.equal(state.skipped.length, 1);
  return state.skipped[0]!.reason;
}

describe('buildDesiredState: the whole entry', () => {
  test('a Consul instance becomes a WorkloadEntry', () => {
    const e = endpoint('node-1/web-1')
      .scope('web')
      .address('10.0.0.1')
      .port(8080)
      .healthy(true)
      .meta({ __meta_consul_service: 'web', __meta_consul_dc: 'dc1' })
      .build();
    assert.deepEqual(only(build(consul(), [e])), {
      name: workloadEntryName('payments', 'node-1/web-1', 'web'),
      endpointId: 'node-1/web-1',
      scope: 'web',
      labels: { app: 'web' },
      annotations: { 'vmregistry.io/endpoint': 'node-1/web-1', 'vmregistry.io/scope': 'web' },
      spec: { address: '10.0.0.1', ports: { tcp: 8080 }, labels: { app: 'web' } },
      healthy: true,
    });
  });

  test('healthy is left out when the registry has no verdict', () => {
    const entry = only(build(consul(), [endpoint('a').address('10.0.0.1').build()]));
    assert.ok(!('healthy' in entry));
    assert.equal(only(build(consul(), [endpoint('a').address('10.0.0.1').healthy(false).build()])).healthy, false);
  });

  test('spec.labels are the labels: one frozen object, shared by entries with the same labels', () => {
    const [a, b] = build(consul().labels({ team: 'pay' }), [endpoint('a').address('10.0.0.1').build(), endpoint('b').address('10.0.0.2').build()]).entries;
    assert.ok(a && b);
    assert.equal(a.spec.labels, a.labels);
    assert.equal(a.labels, b.labels, 'the same label set is kept once');
    assert.ok(Object.isFrozen(a.labels), 'entries are never edited');
  });
});

describe('buildDesiredState: pipeline order', () => {
  test('spec settings overwrite provider output', () => {
    const providerRules: RelabelRuleInput[] = [
      { targetLabel: '__network__', replacement: 'from-provider' },
      { targetLabel: '__locality__', replacement: 'eu/a' },
      { targetLabel: '__weight__', replacement: '5' },
      { targetLabel: '__service_account__', replacement: 'provider-sa' },
      { targetLabel: 'team', replacement: 'provider-team' },
    ];
    const src = consul()
      .workloadEntry({ network: 'net-1', locality: 'us/east/1', weight: 7, serviceAccount: 'vm-sa' })
      .labels({ team: 'spec-team' });
    const entry = only(build(src, [endpoint('a').address('10.0.0.1').build()], providerRules));
    assert.equal(entry.spec.network, 'net-1');
    assert.equal(entry.spec.locality, 'us/east/1');
    assert.equal(entry.spec.weight, 7);
    assert.equal(entry.spec.serviceAccount, 'vm-sa');
    assert.equal(entry.labels['team'], 'spec-team');
  });

  test('provider output is used when the spec does not set a field', () => {
    const providerRules: RelabelRuleInput[] = [
      { sourceLabels: ['__meta_ec2_vpc_id'], targetLabel: '__network__' },
      { sourceLabels: ['__meta_ec2_region', '__meta_ec2_availability_zone'], separator: '/', targetLabel: '__locality__' },
    ];
    const e = endpoint('i-1').address('10.0.0.1').meta({ __meta_ec2_vpc_id: 'vpc-1', __meta_ec2_region: 'eu-west-1', __meta_ec2_availability_zone: 'eu-west-1a' });
    const entry = only(build(consul(), [e.build()], providerRules));
    assert.equal(entry.spec.network, 'vpc-1');
    assert.equal(entry.spec.locality, 'eu-west-1/eu-west-1a');
  });

  test('user rules run last and see the spec settings', () => {
    const src = consul()
      .workloadEntry({ network: 'net-1' })
      .relabel({ sourceLabels: ['__network__'], targetLabel: '__network__', replacement: '${1}-override' });
    assert.equal(only(build(src, [endpoint('a').address('10.0.0.1').build()])).spec.network, 'net-1-override');
  });

  test('a provider rule can drop an endpoint; it is not reported as skipped', () => {
    const providerRules: RelabelRuleInput[] = [{ action: 'keep', sourceLabels: ['__meta_consul_service'], regex: 'web' }];
    const state = build(consul(), [endpoint('a').address('10.0.0.1').meta({ __meta_consul_service: 'db' }).build()], providerRules);
    assert.deepEqual(state, { entries: [], skipped: [] });
  });

  test('a user rule can drop an endpoint', () => {
    const src = consul().relabel({ action: 'drop', sourceLabels: ['env'], regex: 'test' });
    const state = build(src, [endpoint('a').address('10.0.0.1').label('env', 'test').build(), endpoint('b').address('10.0.0.2').build()]);
    assert.deepEqual(state.entries.map((e) => e.endpointId), ['b']);
    assert.deepEqual(state.skipped, []);
  });

  test('an invalid user rule throws a RelabelError naming spec.workloadEntry.relabelings', () => {
    const src = consul().relabel({ sourceLabels: ['a'], targetLabel: 'b' }, { sourceLabels: ['a'], targetLabel: 'b', regex: '[' });
    assert.throws(() => build(src, []), (e: unknown) => e instanceof RelabelError && e.message.startsWith('spec.workloadEntry.relabelings[1]:'));
  });

  test('a registry value longer than a rule reads skips that endpoint with a reason; the others sync', () => {
    const src = consul().relabel({ action: 'keep', sourceLabels: ['__meta_consul_tags'], regex: '.*,(a+)+b,.*' });
    const long = endpoint('long').address('10.0.0.1').meta({ __meta_consul_tags: `,${'a'.repeat(10_000)},` }).build();
    const short = endpoint('short').address('10.0.0.2').meta({ __meta_consul_tags: ',aab,' }).build();
    const state = build(src, [long, short]);
    assert.deepEqual(state.entries.map((e) => e.endpointId), ['short']);
    assert.equal(state.skipped.length, 1);
    assert.equal(state.skipped[0]?.endpointId, 'long');
    assert.match(state.skipped[0]?.reason ?? '', /^spec\.workloadEntry\.relabelings\[0\] reads the value of __meta_consul_tags of 10002 characters; this rule reads at most \d+$/);
  });

  test('an invalid provider rule throws a RelabelError naming the provider mapping', () => {
    assert.throws(
      () => build(consul(), [], [{ action: 'keep', regex: 'x' }]),
      (e: unknown) => e instanceof RelabelError && e.ruleIndex === 0 && /provider default mapping/.test(e.message),
    );
  });
});

describe('buildDesiredState: address', () => {
  const cases: [string, string][] = [
    ['10.0.0.1', '10.0.0.1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['VM-1.Example.com', 'vm-1.example.com'],
  ];
  for (const [input, want] of cases) {
    test(`${input} becomes ${want}`, () => {
      assert.equal(only(build(consul(), [endpoint('a').address(input).build()])).spec.address, want);
    });
  }

  test('no address skips the endpoint', () => {
    assert.match(skipReason(build(consul(), [endpoint('a').build()])), /no address/);
    assert.match(skipReason(build(consul(), [endpoint('a').address('').build()])), /no address/);
  });

  test('an invalid address skips the endpoint', () => {
    assert.match(skipReason(build(consul(), [endpoint('a').address('10.0.0.300').build()])), /invalid address "10\.0\.0\.300"/);
  });

  test('a user rule can set the address', () => {
    const src = consul().relabel({ sourceLabels: ['__meta_consul_node_address'], targetLabel: '__address__' });
    const e = endpoint('a').address('bad address').meta({ __meta_consul_node_address: '10.1.1.1' }).build();
    assert.equal(only(build(src, [e])).spec.address, '10.1.1.1');
  });

  test('a huge address is cut in the reason', () => {
    const reason = skipReason(build(consul(), [endpoint('a').address('x'.repeat(10_000) + '!').build()]));
    assert.ok(reason.length < 200, reason);
  });
});

describe('buildDesiredState: ports', () => {
  const one = (src: SourceBuilder, e: ReturnType<typeof endpoint>): DesiredEntry => only(build(src, [e.address('10.0.0.1').build()]));

  test('without workloadEntry.ports, __port__ becomes port "tcp"', () => {
    assert.deepEqual(one(consul(), endpoint('a').port(8080)).spec.ports, { tcp: 8080 });
  });

  test('__port_name__ names that port', () => {
    assert.deepEqual(one(consul(), endpoint('a').port(8080).label('__port_name__', 'http')).spec.ports, { http: 8080 });
  });

  test('__port_<name>__ labels add named ports', () => {
    const e = endpoint('a').port(8080).meta({ __port_grpc__: '9090', __port_metrics__: '9100' });
    assert.deepEqual(one(consul(), e).spec.ports, { grpc: 9090, metrics: 9100, tcp: 8080 });
  });

  test('no port at all leaves ports out', () => {
    assert.ok(!('ports' in one(consul(), endpoint('a')).spec));
  });

  test('a workloadEntry.ports number wins over labels', () => {
    const e = endpoint('a').port(1).label('__port_http__', '2');
    assert.deepEqual(one(consul().ports({ http: 8080 }), e).spec.ports, { http: 8080 });
  });

  test('a port without number takes __port_<name>__, then __port__', () => {
    const src = consul().ports({ http: undefined, grpc: undefined });
    assert.deepEqual(one(src, endpoint('a').port(8080).label('__port_grpc__', '9090')).spec.ports, { grpc: 9090, http: 8080 });
  });

  test('with workloadEntry.ports, __port__ does not add a "tcp" port', () => {
    assert.deepEqual(one(consul().ports({ http: 80 }), endpoint('a').port(8080)).spec.ports, { http: 80 });
  });

  test('a port without any number skips the endpoint', () => {
    const state = build(consul().ports({ http: undefined }), [endpoint('a').address('10.0.0.1').build()]);
    assert.match(skipReason(state), /port "http" has no number/);
  });

  const badPorts = ['0', '65536', '-1', '80.5', '0x50', ' 80', 'http', '99999999999'];
  for (const bad of badPorts) {
    test(`__port__ ${JSON.stringify(bad)} skips the endpoint`, () => {
      assert.match(skipReason(build(consul(), [endpoint('a').address('10.0.0.1').port(bad).build()])), /invalid port in __port__/);
    });
  }

  test('an invalid __port_<name>__ value skips the endpoint', () => {
    const state = build(consul(), [endpoint('a').address('10.0.0.1').label('__port_http__', 'x').build()]);
    assert.match(skipReason(state), /invalid port in __port_http__ "x"/);
  });

  test('an invalid port name skips the endpoint', () => {
    const state = build(consul(), [endpoint('a').address('10.0.0.1').label('__port_HTTP__', '80').build()]);
    assert.match(skipReason(state), /invalid port name "HTTP"/);
    const state2 = build(consul(), [endpoint('a').address('10.0.0.1').port(80).label('__port_name__', 'a b').build()]);
    assert.match(skipReason(state2), /invalid port name "a b" in __port_name__/);
  });

  test('port 1 and 65535 are valid', () => {
    assert.deepEqual(one(consul(), endpoint('a').port(1).label('__port_x__', '65535')).spec.ports, { tcp: 1, x: 65535 });
  });
});

describe('buildDesiredState: weight, network, locality, service account', () => {
  const withLabel = (name: string, value: string): DesiredState =>
    build(consul(), [endpoint('a').address('10.0.0.1').label(name, value).build()]);

  test('weight from __weight__', () => {
    assert.equal(only(withLabel('__weight__', '1000000')).spec.weight, 1_000_000);
    assert.equal(only(withLabel('__weight__', '1')).spec.weight, 1);
  });
  for (const bad of ['0', '1000001', 'heavy', '1.5', '-3']) {
    test(`weight ${JSON.stringify(bad)} skips the endpoint`, () => {
      assert.match(skipReason(withLabel('__weight__', bad)), /invalid weight in __weight__/);
    });
  }
  test('an empty __weight__ means no weight', () => {
    assert.ok(!('weight' in only(withLabel('__weight__', '')).spec));
  });
  test('network and locality pass through', () => {
    assert.equal(only(withLabel('__network__', 'vpc-0abc')).spec.network, 'vpc-0abc');
    assert.equal(only(withLabel('__locality__', 'eu-west-1/eu-west-1a')).spec.locality, 'eu-west-1/eu-west-1a');
  });
  test('service account', () => {
    assert.equal(only(withLabel('__service_account__', 'vm-sa')).spec.serviceAccount, 'vm-sa');
    assert.match(skipReason(withLabel('__service_account__', 'VM SA')), /invalid service account "VM SA"/);
  });
});

describe('buildDesiredState: labels', () => {
  test('labels not starting with __ become sanitised WorkloadEntry labels', () => {
    const e = endpoint('a')
      .address('10.0.0.1')
      .meta({ __meta_x: 'hidden', 'team name': 'Pay & Co', 'example.com/tier': 'gold', _x: 'y', version: 'v'.repeat(80) });
    assert.deepEqual(only(build(consul(), [e.build()])).labels, {
      'example.com/tier': 'gold',
      team_name: 'Pay___Co',
      version: 'v'.repeat(63),
      x: 'y',
    });
  });

  test('__service__ goes to workloadEntry.serviceLabel', () => {
    const src = consul().workloadEntry({ serviceLabel: 'service.istio.io/canonical-name' });
    const e = endpoint('a').address('10.0.0.1').meta({ __meta_consul_service: 'web.api_v2' });
    assert.deepEqual(only(build(src, [e.build()])).labels, { 'service.istio.io/canonical-name': 'web.api_v2' });
  });

  test('a service that is not a valid label value is skipped with a reason, never sanitised', () => {
    const name70 = (end: string): string => `${'s'.repeat(69)}${end}`;
    const state = build(consul(), [
      endpoint('empty').address('10.0.0.1').meta({ __meta_consul_service: '!!!' }).build(),
      endpoint('space').address('10.0.0.2').meta({ __meta_consul_service: 'web api' }).build(),
      endpoint('long-a').address('10.0.0.3').meta({ __meta_consul_service: name70('a') }).build(),
      endpoint('long-b').address('10.0.0.4').meta({ __meta_consul_service: name70('b') }).build(),
      endpoint('ok').address('10.0.0.5').meta({ __meta_consul_service: 'web' }).build(),
    ]);
    assert.deepEqual(state.entries.map((e) => e.labels['app']), ['web']);
    assert.deepEqual(state.skipped.map((s) => s.endpointId), ['empty', 'long-a', 'long-b', 'space']);
    for (const s of state.skipped) assert.match(s.reason, /^invalid service ".*" in __service__: a service must be a valid label value as it is/);
  });

  test('registry data a provider could not read skips the endpoint with the provider\'s words', () => {
    const bad = { ...endpoint('bad').address('10.0.0.1').build(), problems: ['invalid ports tag "ports" "http=abc": ...'] };
    const state = build(consul(), [bad, endpoint('good').address('10.0.0.2').build()]);
    assert.deepEqual(state.entries.map((e) => e.endpointId), ['good']);
    assert.deepEqual(state.skipped, [{ endpointId: 'bad', reason: 'invalid ports tag "ports" "http=abc": ...' }]);
  });

  test('an endpoint with problems that a keep rule drops is filtered, not reported', () => {
    const src = consul().relabel({ action: 'keep', sourceLabels: ['env'], regex: 'prod' });
    const bad = { ...endpoint('bad').address('10.0.0.1').label('env', 'test').build(), problems: ['bad ports'] };
    assert.deepEqual(build(src, [bad]), { entries: [], skipped: [] });
  });

  test('__service__ wins over a label of the same key', () => {
    const e = endpoint('a').address('10.0.0.1').meta({ __meta_consul_service: 'web', app: 'other' });
    assert.equal(only(build(consul(), [e.build()])).labels['app'], 'web');
  });

  test('labelmap of provider tags, as a provider default would do', () => {
    const rules: RelabelRuleInput[] = [{ action: 'labelmap', regex: '__meta_ec2_tag_(.+)' }];
    const e = endpoint('i-1').address('10.0.0.1').meta({ __meta_ec2_tag_Team: 'payments', __meta_ec2_tag_Name: 'web 1' });
    assert.deepEqual(only(build(consul(), [e.build()], rules)).labels, { Name: 'web_1', Team: 'payments' });
  });

  test('a key that cannot be made valid is dropped and listed', () => {
    const entry = only(build(consul(), [endpoint('a').address('10.0.0.1').meta({ '!!!': 'x', ok: 'y' }).build()]));
    assert.deepEqual(entry.labels, { ok: 'y' });
    assert.deepEqual(entry.droppedLabels, ['!!!']);
  });

  test('an already valid key wins over one that sanitises to it', () => {
    const entry = only(build(consul(), [endpoint('a').address('10.0.0.1').meta({ 'a b': 'changed', a_b: 'valid' }).build()]));
    assert.deepEqual(entry.labels, { a_b: 'valid' });
    assert.deepEqual(entry.droppedLabels, ['a b']);
  });

  test('ownership label keys cannot be set by the mapping', () => {
    const src = consul().relabel(
      { targetLabel: 'app.kubernetes.io/managed-by', replacement: 'someone-else' },
      { targetLabel: 'vmregistry.io/source', replacement: 'other' },
    );
    const entry = only(build(src, [endpoint('a').address('10.0.0.1').build()]));
    assert.deepEqual(entry.labels, {});
    assert.deepEqual(entry.droppedLabels, ['app.kubernetes.io/managed-by', 'vmregistry.io/source']);
  });

  test('empty values are kept empty', () => {
    assert.deepEqual(only(build(consul(), [endpoint('a').address('10.0.0.1').label('mesh', '').build()])).labels, { mesh: '' });
  });

  test('droppedLabels is left out when nothing was dropped', () => {
    assert.ok(!('droppedLabels' in only(build(consul(), [endpoint('a').address('10.0.0.1').build()]))));
  });

  test('outputLabels sorts keys', () => {
    const out = outputLabels(new Map([['b', '1'], ['a', '2'], ['__c', '3']]), 'app');
    assert.deepEqual(Object.keys(out.labels), ['a', 'b']);
  });
});

describe('buildDesiredState: duplicates and order', () => {
  test('a duplicate address is skipped; the first endpoint id wins', () => {
    const state = build(consul(), [
      endpoint('b').address('10.0.0.1').build(),
      endpoint('a').address('10.0.0.1').build(),
    ]);
    assert.deepEqual(state.entries.map((e) => e.endpointId), ['a']);
    assert.deepEqual(state.skipped, [{ endpointId: 'b', reason: 'duplicate address 10.0.0.1: endpoint "a" has it with the same service and ports' }]);
  });

  test('one address may carry several services, or one service on different ports', () => {
    const state = build(consul(), [
      endpoint('a').address('10.0.0.1').meta({ __meta_consul_service: 'orders' }).build(),
      endpoint('b').address('10.0.0.1').meta({ __meta_consul_service: 'billing' }).build(),
      endpoint('c').address('10.0.0.1').meta({ __meta_consul_service: 'orders' }).label('__port__', '9090').build(),
    ]);
    assert.deepEqual(state.entries.map((e) => e.endpointId).sort(), ['a', 'b', 'c']);
    assert.deepEqual(state.skipped, []);
  });

  test('IPv6 duplicates are found whatever their spelling', () => {
    const state = build(consul(), [endpoint('a').address('2001:db8::1').build(), endpoint('b').address('2001:DB8:0::0:1').build()]);
    assert.equal(state.entries.length, 1);
    assert.match(state.skipped[0]!.reason, /duplicate address/);
  });

  test('the same address in different networks is not a duplicate', () => {
    const state = build(consul(), [
      endpoint('a').address('10.0.0.1').label('__network__', 'vpc-1').build(),
      endpoint('b').address('10.0.0.1').label('__network__', 'vpc-2').build(),
    ]);
    assert.equal(state.entries.length, 2);
    assert.deepEqual(state.skipped, []);
  });

  test('a duplicate address in one network names the network', () => {
    const state = build(consul().workloadEntry({ network: 'n1' }), [endpoint('a').address('10.0.0.1').build(), endpoint('b').address('10.0.0.1').build()]);
    assert.match(state.skipped[0]!.reason, /duplicate address 10\.0\.0\.1 in network "n1"/);
  });

  test('a duplicate endpoint id is skipped, whatever order the registry used', () => {
    const x = endpoint('same').address('10.0.0.1').meta({ __meta_consul_service: 'web' }).build();
    const y = endpoint('same').address('10.0.0.2').meta({ __meta_consul_service: 'web' }).build();
    const one = build(consul(), [x, y]);
    assert.deepEqual(build(consul(), [y, x]), one);
    assert.equal(one.entries.length, 1);
    assert.match(one.skipped[0]!.reason, /duplicate endpoint id/);
  });

  test('entries are sorted by name, skipped by endpoint id', () => {
    const state = build(consul(), [
      endpoint('3').address('10.0.0.3').meta({ __meta_consul_service: 'a' }).build(),
      endpoint('2').build(),
      endpoint('1').address('10.0.0.1').meta({ __meta_consul_service: 'c' }).build(),
      endpoint('0').build(),
      endpoint('4').address('10.0.0.4').meta({ __meta_consul_service: 'b' }).build(),
    ]);
    const names = state.entries.map((e) => e.name);
    assert.deepEqual(names, [...names].sort());
    assert.deepEqual(state.entries.map((e) => e.endpointId), ['3', '4', '1']);
    assert.deepEqual(state.skipped.map((s) => s.endpointId), ['0', '2']);
  });

  test('no endpoints, no entries', () => {
    assert.deepEqual(build(consul(), []), { entries: [], skipped: [] });
  });
});
