/** The pure ServiceEntry mapping and the kind-agnostic planner it is planned with. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../../../src/api/validate.ts';
import { toAppliedServiceEntry } from '../../../src/plan/kinds.ts';
import { foreignClash, objectChangedFields, planObjects } from '../../../src/plan/object-plan.ts';
import { MANAGED_BY_LABEL, SOURCE_LABEL } from '../../../src/api/ownership.ts';
import { buildDesiredServiceEntries, protocolOfPortName, SERVICE_ANNOTATION, serviceEntryName, unionPorts, type DesiredServiceEntry, type ServiceEntryInput } from '../../../src/mapping/service-entries.ts';
import { type ServiceEntry } from '../../../src/api/istio.ts';
import type { DesiredEntry } from '../../../src/mapping/types.ts';
import { source } from '../../fixtures/builders.ts';
import { BUILTIN_API } from '../../../src/providers/builtin.ts';

const { applyDefaults, validateSpec } = BUILTIN_API;

function entry(name: string, service: string | undefined, address: string, ports: Record<string, number>): DesiredEntry {
  const labels: Record<string, string> = service === undefined ? {} : { app: service };
  return { name, endpointId: name, scope: service ?? '', labels, annotations: {}, spec: { address, ports, labels } };
}

function input(entries: DesiredEntry[], over: Partial<ServiceEntryInput> = {}): ServiceEntryInput {
  return {
    sourceName: 'vms',
    namespace: 'shop',
    provider: 'consul',
    template: { location: 'MESH_INTERNAL' },
    serviceLabel: 'app',
    entries,
    ...over,
  };
}

describe('buildDesiredServiceEntries', () => {
  test('one STATIC ServiceEntry per service, Consul host by default, selector on service and source labels', () => {
    const out = buildDesiredServiceEntries(
      input([
        entry('w1', 'web', '10.0.0.1', { http: 8080, metrics: 9100 }),
        entry('w2', 'web', '10.0.0.2', { http: 8080 }),
        entry('d1', 'db', '10.0.1.1', { 'tcp-postgres': 5432 }),
        entry('x1', undefined, '10.0.2.1', { tcp: 1 }),
      ]),
    );
    assert.deepEqual(out.skipped, []);
    assert.deepEqual(out.unselected, []);
    assert.deepEqual(out.serviceEntries.map((s) => s.service).sort(), ['db', 'web']);
    const web = out.serviceEntries.find((s) => s.service === 'web');
    assert.ok(web);
    assert.equal(web.name, serviceEntryName('vms', 'web'));
    assert.match(web.name, /^vms-web-[0-9a-f]{10}$/);
    assert.deepEqual(web.annotations, { [SERVICE_ANNOTATION]: 'web' });
    assert.deepEqual(web.spec, {
      hosts: ['web.service.consul'],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      ports: [
        { number: 8080, name: 'http', protocol: 'HTTP' },
        { number: 9100, name: 'metrics' },
      ],
      workloadSelector: { labels: { app: 'web', [SOURCE_LABEL]: 'vms' } },
    });
    assert.deepEqual(out.serviceEntries.find((s) => s.service === 'db')?.spec.ports, [{ number: 5432, name: 'tcp-postgres', protocol: 'TCP' }]);
  });

  test('EC2 and GCE default to {service}.{namespace}.vm.internal; templates, location and exportTo are applied', () => {
    const e = [entry('w1', 'Billing_API', '10.0.0.1', { grpc: 9090 })];
    assert.deepEqual(buildDesiredServiceEntries(input(e, { provider: 'ec2' })).serviceEntries[0]?.spec.hosts, ['billing-api.shop.vm.internal']);
    const custom = buildDesiredServiceEntries(
      input(e, { provider: 'gce', template: { location: 'MESH_EXTERNAL', hosts: ['{service}.{source}.example', '{service}.example'], exportTo: ['.'] } }),
    ).serviceEntries[0];
    assert.deepEqual(custom?.spec.hosts, ['billing-api.vms.example', 'billing-api.example']);
    assert.equal(custom?.spec.location, 'MESH_EXTERNAL');
    assert.deepEqual(custom?.spec.exportTo, ['.']);
  });

  test('entries with DNS-name addresses are counted as unselected; a service without ports or a valid host is skipped with a reason', () => {
    const out = buildDesiredServiceEntries(
      input([
        entry('n1', 'named', 'vm-1.example.internal', { http: 80 }),
        entry('p1', 'portless', '10.0.0.9', {}),
        entry('b1', '---', '10.0.0.8', { http: 80 }),
      ]),
    );
    assert.deepEqual(out.unselected, ['n1']);
    assert.deepEqual(out.serviceEntries.map((s) => s.service), ['named']);
    assert.deepEqual(out.skipped.map((s) => s.service).sort(), ['---', 'portless']);
    assert.match(out.skipped.find((s) => s.service === 'portless')?.reason ?? '', /no named ports/);
    assert.match(out.skipped.find((s) => s.service === '---')?.reason ?? '', /not a valid DNS name/);
  });

  test('the same entries in any order give the same ServiceEntries', () => {
    const es = [entry('a', 'web', '10.0.0.1', { http: 80 }), entry('b', 'web', '10.0.0.2', { http: 81 }), entry('c', 'api', '10.0.0.3', { grpc: 90 })];
    assert.deepEqual(buildDesiredServiceEntries(input(es)), buildDesiredServiceEntries(input([...es].reverse())));
  });
});

describe('unionPorts', () => {
  test('a name used with several numbers takes the most used, ties the lowest', () => {
    const es = [entry('a', 's', '10.0.0.1', { http: 81 }), entry('b', 's', '10.0.0.2', { http: 80 }), entry('c', 's', '10.0.0.3', { http: 81 })];
    assert.deepEqual(unionPorts(es).ports, [{ number: 81, name: 'http', protocol: 'HTTP' }]);
    assert.deepEqual(unionPorts(es.slice(0, 2)).ports, [{ number: 80, name: 'http', protocol: 'HTTP' }]);
  });

  test('two names cannot share a number: the second takes another of its numbers or is left out', () => {
    const es = [entry('a', 's', '10.0.0.1', { grpc: 8080, http: 8080 }), entry('b', 's', '10.0.0.2', { http: 9090 })];
    const { ports, dropped } = unionPorts(es);
    assert.deepEqual(ports, [
      { number: 8080, name: 'grpc', protocol: 'GRPC' },
      { number: 9090, name: 'http', protocol: 'HTTP' },
    ]);
    assert.deepEqual(dropped, []);
    const clash = unionPorts([entry('a', 's', '10.0.0.1', { grpc: 8080, http: 8080 })]);
    assert.deepEqual(clash.ports.map((p) => p.name), ['grpc']);
    assert.match(clash.dropped[0] ?? '', /port http left out: its number 8080 is already used by port grpc/);
  });

  test('protocols from port-name prefixes, as Istio reads Kubernetes port names', () => {
    assert.equal(protocolOfPortName('http'), 'HTTP');
    assert.equal(protocolOfPortName('http-web'), 'HTTP');
    assert.equal(protocolOfPortName('HTTP2'), 'HTTP2');
    assert.equal(protocolOfPortName('grpc-web'), 'GRPC-Web');
    assert.equal(protocolOfPortName('grpc-web-ui'), 'GRPC-Web');
    assert.equal(protocolOfPortName('grpc-api'), 'GRPC');
    assert.equal(protocolOfPortName('tls-db'), 'TLS');
    assert.equal(protocolOfPortName('mysql'), 'MySQL');
    assert.equal(protocolOfPortName('metrics'), undefined);
    assert.equal(protocolOfPortName('httpx'), undefined);
  });
});

const src = source('vms').namespace('shop').uid('uid-1').consul({ address: 'http://127.0.0.1:8500' }).build();

/** A ServiceEntry as the apiserver would return it after our apply. */
function current(d: DesiredServiceEntry): ServiceEntry {
  return { ...toAppliedServiceEntry(d, src), metadata: { ...toAppliedServiceEntry(d, src).metadata, uid: `uid-${d.name}` } };
}

describe('planObjects over ServiceEntries', () => {
  const desired = buildDesiredServiceEntries(
    input([entry('a', 'web', '10.0.0.1', { http: 80 }), entry('b', 'api', '10.0.0.2', { grpc: 90 }), entry('c', 'db', '10.0.0.3', { tcp: 5432 })]),
  ).serviceEntries;
  const guard = { enabled: true, maxDeletePercent: 50 };

  test('desired == current: no changes (zero writes in a steady state)', () => {
    const p = planObjects({ desired, owned: desired.map(current), policy: 'sync', guard });
    assert.deepEqual([p.creates, p.updates, p.deletes, p.kept], [[], [], [], []]);
  });

  test('edited ports and hosts are drift; fields added by others are not', () => {
    const [first] = desired;
    assert.ok(first);
    const edited = current(first);
    edited.spec = { ...edited.spec, ports: [{ number: 1, name: 'http' }] };
    assert.deepEqual(objectChangedFields(first, edited), ['spec.ports']);
    const extended = current(first);
    extended.spec = { ...extended.spec, ...{ addresses: ['240.240.0.1'] } };
    extended.metadata.labels = { ...extended.metadata.labels, team: 'x' };
    assert.deepEqual(objectChangedFields(first, extended), []);
    const changedTemplate = { ...first, spec: { ...first.spec, exportTo: ['.'] } };
    assert.deepEqual(objectChangedFields(changedTemplate, current(first)), ['spec.exportTo', 'applied-hash']);
  });

  test('a vanished service is deleted unless kept; policies and the guard hold deletions back', () => {
    const owned = desired.map(current);
    const rest = desired.slice(1);
    const gone = owned[0];
    assert.ok(gone);
    assert.deepEqual(planObjects({ desired: rest, owned, policy: 'sync', guard }).deletes, [gone]);
    const kept = planObjects({ desired: rest, owned, policy: 'sync', guard, keep: (se) => se.metadata.annotations?.[SERVICE_ANNOTATION] === gone.metadata.annotations?.[SERVICE_ANNOTATION] });
    assert.deepEqual([kept.deletes, kept.kept], [[], [gone]]);
    assert.equal(planObjects({ desired: rest, owned, policy: 'upsert-only', guard }).heldBack.get('Policy'), 1);
    const all = planObjects({ desired: [], owned, policy: 'sync', guard });
    assert.deepEqual([all.deletes.length, all.heldBack.get('DeletionGuard')], [0, 3]);
    assert.equal(planObjects({ desired: [], owned, policy: 'sync', guard, guarded: false }).deletes.length, 3, 'turning the feature off is not guarded');
    assert.deepEqual(planObjects({ desired, owned: [], policy: 'create-only', guard }).creates, desired);
  });
});

describe('foreign ServiceEntries', () => {
  const [d] = buildDesiredServiceEntries(input([entry('a', 'web', '10.0.0.1', { http: 80 })])).serviceEntries;
  assert.ok(d);
  const foreign = (name: string, hosts: string[], labels: Record<string, string> = {}): ServiceEntry => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: 'shop', labels },
    spec: { hosts, location: 'MESH_INTERNAL', resolution: 'STATIC', ports: [], workloadSelector: { labels: {} } },
  });

  test('the same name or a shared host is a conflict; other ServiceEntries are not', () => {
    assert.match(foreignClash(d, [foreign(d.name, ['other.example'])]) ?? '', /name is taken/);
    assert.match(foreignClash(d, [foreign('hand-written', ['web.service.consul'], { [MANAGED_BY_LABEL]: 'someone' })]) ?? '', /host web.service.consul is already declared by ServiceEntry hand-written \(managed by someone\)/);
    assert.equal(foreignClash(d, [foreign('other', ['api.service.consul'])]), undefined);
  });

  test('the applied object carries owner labels, the controller reference and the hash', () => {
    const applied = toAppliedServiceEntry(d, src);
    assert.equal(applied.metadata.labels?.[MANAGED_BY_LABEL], 'vm-registry-operator');
    assert.equal(applied.metadata.labels?.[SOURCE_LABEL], 'vms');
    assert.deepEqual(applied.metadata.ownerReferences?.map((r) => [r.kind, r.uid, r.controller]), [['VmRegistrySource', 'uid-1', true]]);
    assert.match(applied.metadata.annotations?.['vmregistry.io/applied-hash'] ?? '', /^[0-9a-f]{16}$/);
  });
});

describe('spec.serviceEntries validation', () => {
  const base = { consul: { address: 'http://127.0.0.1:8500' } };
  test('defaults: off unless the section is present; location MESH_INTERNAL', () => {
    assert.equal(applyDefaults(base).serviceEntries, undefined);
    assert.equal(applyDefaults({ ...base, serviceEntries: {} }).serviceEntries?.location, 'MESH_INTERNAL');
  });

  test('host templates need {service} and know only three placeholders', () => {
    assert.doesNotThrow(() => validateSpec({ ...base, serviceEntries: { hosts: ['{service}.{namespace}.{source}.example'] } }));
    for (const hosts of [['static.example'], ['{service}.{zone}.example'], ['Upper.{service}']]) {
      assert.throws(() => validateSpec({ ...base, serviceEntries: { hosts } }), ValidationError, JSON.stringify(hosts));
    }
  });
});
