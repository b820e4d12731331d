import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCatalogServices, parseHealthEntries } from '../../../src/providers/consul/api-types.ts';
import { toEndpoint } from '../../../src/providers/consul/labels.ts';
import { endpointsOf, healthQuery, selectServices } from '../../../src/providers/consul/selection.ts';
import { consulProviderFactory } from '../../../src/providers/consul/index.ts';
import { errorForFailure, errorForStatus } from '../../../src/providers/consul/errors.ts';
import { isProviderError } from '../../../src/providers/errors.ts';
import { buildDesiredState } from '../../../src/mapping/desired.ts';
import { source } from '../../fixtures/builders.ts';

const raw = (over: { tags?: string[]; meta?: Record<string, string>; checks?: string[]; address?: string; nodeMeta?: Record<string, string> } = {}) => ({
  Node: { ID: 'x', Node: 'vm-1', Address: '10.0.0.1', Datacenter: 'eu-west', Meta: over.nodeMeta ?? { rack: 'r1' }, TaggedAddresses: { lan: '10.0.0.1' } },
  Service: {
    ID: 'web-1',
    Service: 'web',
    Tags: over.tags ?? ['mesh', 'version|v1'],
    Address: over.address ?? '',
    Port: 8080,
    Meta: over.meta ?? { protocol: 'HTTP', port_metrics: '9100' },
  },
  Checks: (over.checks ?? ['passing']).map((Status, i) => ({ CheckID: `c${i}`, Status, ServiceID: 'web-1', Output: 'noise' })),
});

const consulSpec = (extra: Record<string, unknown> = {}) => source('s').consul({ address: 'http://127.0.0.1:1', ...extra }).build().spec;

describe('labels', () => {
  test('an instance in consul_sd vocabulary', () => {
    const [entry] = parseHealthEntries([raw()], 'web');
    assert.ok(entry);
    const ep = toEndpoint(entry, { tagSeparator: '|', mode: 'exclude', includeWarning: false });
    assert.ok(ep);
    assert.equal(ep.id, 'vm-1/web-1');
    assert.equal(ep.scope, 'web');
    assert.equal(ep.healthy, undefined, 'health verdict only in status mode');
    assert.deepEqual(
      Object.fromEntries(Object.entries(ep.labels).sort()),
      Object.fromEntries(
        Object.entries({
          __address__: '10.0.0.1',
          __port__: '8080',
          __meta_consul_service: 'web',
          __meta_consul_service_id: 'web-1',
          __meta_consul_service_port: '8080',
          __meta_consul_node: 'vm-1',
          __meta_consul_address: '10.0.0.1',
          __meta_consul_service_address: '',
          __meta_consul_dc: 'eu-west',
          __meta_consul_tags: ',mesh,version|v1,',
          __meta_consul_tag_version: 'v1',
          __meta_consul_health: 'passing',
          __meta_consul_service_metadata_protocol: 'HTTP',
          __meta_consul_service_metadata_port_metrics: '9100',
          __meta_consul_metadata_rack: 'r1',
          __meta_consul_tagged_address_lan: '10.0.0.1',
        }).sort(),
      ),
    );
  });
  test('service address wins over node address', () => {
    const [entry] = parseHealthEntries([raw({ address: '192.168.1.5' })], 'web');
    assert.ok(entry);
    assert.equal(toEndpoint(entry, { tagSeparator: '|', mode: 'exclude', includeWarning: false })?.labels['__address__'], '192.168.1.5');
  });
  test('meta keys cannot overwrite fixed labels', () => {
    const [entry] = parseHealthEntries([raw({ tags: ['|x'], meta: {}, nodeMeta: {} })], 'web');
    assert.ok(entry);
    const ep = toEndpoint(entry, { tagSeparator: '|', mode: 'exclude', includeWarning: false });
    assert.equal(ep?.labels['__meta_consul_service'], 'web');
  });
  test('health modes', () => {
    const spec = consulSpec({ health: { mode: 'status' } });
    assert.ok(spec.consul);
    const entries = parseHealthEntries([raw({ checks: ['passing', 'critical'] })], 'web');
    const [ep] = endpointsOf(entries, spec.consul);
    assert.equal(ep?.healthy, false);
    assert.equal(ep?.labels['__meta_consul_health'], 'critical');
    const excl = consulSpec();
    assert.ok(excl.consul);
    assert.deepEqual(endpointsOf(entries, excl.consul), []);
    const warn = consulSpec({ health: { includeWarning: true } });
    assert.ok(warn.consul);
    assert.equal(endpointsOf(parseHealthEntries([raw({ checks: ['warning'] })], 'web'), warn.consul).length, 1);
  });
  test('malformed answers are BadResponse, not empty lists', () => {
    assert.throws(() => parseHealthEntries({}, 'web'), (e) => isProviderError(e) && e.kind === 'BadResponse');
    assert.throws(() => parseHealthEntries([{ Node: {} }], 'web'), (e) => isProviderError(e) && e.kind === 'BadResponse');
    assert.throws(() => parseCatalogServices([]), (e) => isProviderError(e) && e.kind === 'BadResponse');
  });
});

describe('selection', () => {
  test('by names and/or tags (all must match)', () => {
    const catalog = parseCatalogServices({ consul: [], web: ['mesh', 'x'], db: ['mesh'], api: ['x'] });
    const c = (extra: Record<string, unknown>) => {
      const s = consulSpec(extra).consul;
      assert.ok(s);
      return s;
    };
    assert.deepEqual(selectServices(catalog, c({})), ['api', 'consul', 'db', 'web']);
    assert.deepEqual(selectServices(catalog, c({ tags: ['mesh'] })), ['db', 'web']);
    assert.deepEqual(selectServices(catalog, c({ tags: ['mesh', 'x'] })), ['web']);
    assert.deepEqual(selectServices(catalog, c({ services: ['web', 'api', 'gone'], tags: ['x'] })), ['api', 'web']);
    assert.deepEqual(healthQuery(c({ tags: ['a', 'b'], nodeMeta: { z: '1', a: '2' } })), [
      ['tag', 'a'],
      ['tag', 'b'],
      ['node-meta', 'a:2'],
      ['node-meta', 'z:1'],
    ]);
  });
});

describe('errors', () => {
  test('HTTP statuses map to kinds', () => {
    assert.equal(errorForStatus(403, 'ACL not found', 'GET /v1/x').kind, 'Unauthorized');
    assert.equal(errorForStatus(400, 'Partitions are a Consul Enterprise feature', 'GET /v1/x').kind, 'BadConfig');
    assert.equal(errorForStatus(429, '', 'GET /v1/x').kind, 'Throttled');
    assert.equal(errorForStatus(500, 'No path to datacenter', 'GET /v1/x').kind, 'BadConfig');
    assert.equal(errorForStatus(503, 'No cluster leader', 'GET /v1/x').kind, 'Unreachable');
  });
  test('socket and TLS failures', () => {
    const refused = errorForFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'GET /v1/x', 'http://h:1');
    assert.equal(refused.kind, 'Unreachable');
    const tls = errorForFailure(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), 'GET /v1/x', 'https://h:1');
    assert.equal(tls.kind, 'Unreachable');
    assert.match(tls.message, /TLS/);
    assert.equal(errorForFailure(Object.assign(new Error('t'), { code: 'ETIMEDOUT' }), 'GET', 'http://h').kind, 'Timeout');
  });
});

describe('default mapping through the engine', () => {
  test('service, tag labels, protocol port name, locality, extra named port', () => {
    const src = source('pay').consul({ address: 'http://127.0.0.1:1' }).ports({ http: undefined, metrics: undefined }).build();
    const entries = parseHealthEntries([raw()], 'web');
    assert.ok(src.spec.consul);
    const state = buildDesiredState({
      sourceName: 'pay',
      spec: src.spec,
      endpoints: endpointsOf(entries, src.spec.consul),
      providerRules: consulProviderFactory.defaultMapping(src.spec),
    });
    assert.deepEqual(state.skipped, []);
    const [we] = state.entries;
    assert.ok(we);
    assert.equal(we.spec.address, '10.0.0.1');
    assert.equal(we.spec.locality, 'eu-west');
    assert.equal(we.labels['app'], 'web');
    assert.equal(we.labels['version'], 'v1');
    assert.deepEqual(we.spec.ports, { http: 8080, metrics: 9100 });
  });
  test('protocol meta names the single port (lower-cased); unknown protocols fall back to tcp', () => {
    const src = source('pay').consul({ address: 'http://127.0.0.1:1' }).build();
    assert.ok(src.spec.consul);
    const run = (protocol: string) =>
      buildDesiredState({
        sourceName: 'pay',
        spec: src.spec,
        endpoints: endpointsOf(parseHealthEntries([raw({ meta: { protocol } })], 'web'), src.spec.consul!),
        providerRules: consulProviderFactory.defaultMapping(src.spec),
      }).entries[0]?.spec.ports;
    assert.deepEqual(run('GRPC'), { grpc: 8080 });
    assert.deepEqual(run('http2'), { http2: 8080 });
    assert.deepEqual(run('thrift'), { tcp: 8080 });
  });
  test('a bad port_<name> meta skips the instance with a reason, as a bad ports tag does elsewhere', () => {
    const src = source('pay').consul({ address: 'http://127.0.0.1:1' }).build();
    assert.ok(src.spec.consul);
    const run = (meta: Record<string, string>) =>
      buildDesiredState({
        sourceName: 'pay',
        spec: src.spec,
        endpoints: endpointsOf(parseHealthEntries([raw({ meta })], 'web'), src.spec.consul!),
        providerRules: consulProviderFactory.defaultMapping(src.spec),
      }).skipped.map((s) => s.reason);
    assert.deepEqual(run({ port_Admin: '9000' }), ['invalid port name "Admin" in __port_Admin__: must be a DNS-1123 label']);
    assert.deepEqual(run({ port_admin: 'abc' }), ['invalid port in __port_admin__ "abc": must be an integer from 1 to 65535']);
    assert.deepEqual(run({ port_admin: '9000' }), []);
  });
  test('secretRefs lists the token and CA keys', () => {
    const spec = consulSpec({ tokenSecretRef: { name: 'consul' }, tls: { caSecretRef: { name: 'ca' } } });
    assert.deepEqual(consulProviderFactory.secretRefs(spec), [
      { name: 'consul', key: 'token' },
      { name: 'ca', key: 'ca.crt', use: 'trust' },
    ]);
  });
});

test('parsed answers keep repeated values once: a tagged address equal to the node address is that string, empty maps are shared', () => {
  const raw = (i: number) => ({
    Node: { Node: `vm-${i}`, Address: `10.0.0.${i}`, Datacenter: 'dc1', Meta: {}, TaggedAddresses: { lan: `10.0.0.${i}`, wan: `10.0.0.${i}` } },
    Service: { ID: `web-${i}`, Service: 'web', Tags: ['mesh', 'version|v1'], Address: `10.0.0.${i}`, Port: 80, Meta: {} },
    Checks: [{ CheckID: 'serfHealth', Status: 'passing', ServiceID: '' }],
  });
  const [a, b] = parseHealthEntries(JSON.parse(JSON.stringify([raw(1), raw(2)])), 'web');
  assert.ok(a && b);
  assert.equal(a.Node.TaggedAddresses['lan'], a.Node.Address);
  assert.equal(a.Node.Meta, b.Node.Meta, 'one shared empty map');
  assert.deepEqual(a.Service.Tags, ['mesh', 'version|v1']);
  assert.equal(a.Service.Address, '10.0.0.1');
  assert.equal(b.Checks[0]?.CheckID, 'serfHealth');
});
