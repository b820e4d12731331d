/**
 * `node bench/data-cost.ts`: what the operator's own data costs per endpoint, without
 * any I/O (no cluster, no Consul): Consul-shaped endpoints, their desired entries, and
 * the informer cache of the entries as the apiserver returns them (whole, with
 * managedFields) and as the cache keeps them (slim). Also the CPU of mapping a whole
 * source versus a one-service change, and of planning. Part of `make bench`'s story;
 * runs in seconds. Size: BENCH_SERVICES (4000) × BENCH_INSTANCES (5).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BUILTIN_API } from '../src/providers/builtin.ts';
import type { VmRegistrySource } from '../src/api/types.ts';
import { slimWorkloadEntry } from '../src/apply/slim.ts';
import type { HealthEntry } from '../src/providers/consul/api-types.ts';
import { toEndpoint } from '../src/providers/consul/labels.ts';
import { consulDefaultMapping } from '../src/providers/consul/mapping.ts';
import type { Endpoint } from '../src/providers/provider.ts';
import { toAppliedObject } from '../src/apply/apply.ts';
import { buildDesiredState, endpointMapper, MappingMemo } from '../src/mapping/desired.ts';
import { GroupedMapping } from '../src/mapping/grouped.ts';
import type { EndpointGroup } from '../src/providers/provider.ts';
import { groupOf } from '../test/fixtures/groups.ts';
import { plan } from '../src/plan/plan.ts';
import type { WorkloadEntry } from '../src/api/istio.ts';
import { mib, round, table, type Row } from './report.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const SERVICES = Number(process.env['BENCH_SERVICES'] ?? 4000);
const INSTANCES = Number(process.env['BENCH_INSTANCES'] ?? 5);
const TOTAL = SERVICES * INSTANCES;

function heapNow(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

function entry(s: number, i: number, octet = 16): HealthEntry {
  const service = `svc-${String(s).padStart(4, '0')}`;
  const address = `10.${octet + (s >> 8)}.${s & 255}.${10 + i}`;
  return {
    Node: { Node: `vm-${service}-${i}`, Address: address, Datacenter: 'dc1', Meta: {}, TaggedAddresses: { lan: address, lan_ipv4: address, wan: address, wan_ipv4: address } },
    Service: { ID: `${service}-${i}`, Service: service, Tags: ['mesh', `shard-${s % 10}`, `version|v${1 + (i % 2)}`], Address: address, Port: 8080 + (i % 3), Meta: { protocol: 'http' } },
    Checks: [{ CheckID: 'serfHealth', Status: 'passing', ServiceID: '' }],
  };
}

const opts = { tagSeparator: '|', mode: 'exclude' as const, includeWarning: false };
const serviceEndpoints = (s: number, octet = 16): Endpoint[] => Array.from({ length: INSTANCES }, (_, i) => toEndpoint(entry(s, i, octet), opts) as Endpoint);

/** An entry as the apiserver returns it after our server-side apply (managedFields included). */
function asServerReturns(o: WorkloadEntry, n: number): WorkloadEntry {
  const fields = (obj: Record<string, unknown> | undefined) => Object.fromEntries(Object.keys(obj ?? {}).map((k) => [`f:${k}`, {}]));
  return {
    ...o,
    metadata: {
      ...o.metadata,
      uid: `0000${n.toString(16).padStart(8, '0')}-1111-2222-3333-444455556666`,
      resourceVersion: String(100000 + n),
      creationTimestamp: '2026-11-30T12:00:00Z',
      generation: 1,
      managedFields: [
        {
          apiVersion: 'networking.istio.io/v1',
          fieldsType: 'FieldsV1',
          manager: 'vm-registry-operator',
          operation: 'Apply',
          time: '2026-11-30T12:00:00Z',
          fieldsV1: {
            'f:metadata': { 'f:annotations': fields(o.metadata.annotations), 'f:labels': fields(o.metadata.labels), 'f:ownerReferences': { 'k:{"uid":"x"}': {} } },
            'f:spec': { 'f:address': {}, 'f:labels': fields(o.spec.labels), 'f:ports': fields(o.spec.ports), 'f:serviceAccount': {}, 'f:locality': {} },
          },
        },
      ],
    } as WorkloadEntry['metadata'],
  };
}

function main(): void {
  const rows: Row[] = [];
  const source: VmRegistrySource = {
    apiVersion: 'vmregistry.io/v1alpha1',
    kind: 'VmRegistrySource',
    metadata: { name: 'fleet', namespace: 'vms', uid: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', generation: 1 },
    spec: BUILTIN_API.applyDefaults({ consul: { address: 'http://127.0.0.1:8500', tags: ['mesh'] }, workloadEntry: { serviceAccount: 'legacy-vms' } }),
  };
  const rules = consulDefaultMapping();
  const per1k = (bytes: number): string => `${round(mib(bytes) / (TOTAL / 1000), 2)} MiB per 1,000`;

  let h0 = heapNow();
  const services = Array.from({ length: SERVICES }, (_, s) => serviceEndpoints(s));
  const endpoints = services.flat();
  const endpointBytes = heapNow() - h0;
  rows.push(['endpoints (Consul labels), kept by sources without groups', `${mib(endpointBytes)} MiB`, per1k(endpointBytes)]);

  const memo = new MappingMemo();
  h0 = heapNow();
  let t = performance.now();
  const desired = buildDesiredState({ sourceName: 'fleet', spec: source.spec, endpoints, providerRules: rules, memo });
  const fullMapMs = performance.now() - t;
  const desiredBytes = heapNow() - h0;
  rows.push(['desired entries (+ mapping memo), sources without groups', `${mib(desiredBytes)} MiB`, per1k(desiredBytes)]);
  // As Consul's provider hands them: a group builds its endpoints when asked, and nothing keeps them.
  const lazyGroups: EndpointGroup[] = services.map((_, s) => ({ size: INSTANCES, endpoints: () => serviceEndpoints(s) }));
  h0 = heapNow();
  const grouped = new GroupedMapping(endpointMapper({ sourceName: 'fleet', spec: source.spec, providerRules: rules }));
  grouped.update(lazyGroups);
  const groupedBytes = heapNow() - h0;
  rows.push(['desired entries + grouped index (Consul; no endpoints kept)', `${mib(groupedBytes)} MiB`, per1k(groupedBytes)]);

  const applied = desired.entries.map((d) => toAppliedObject(d, source));
  h0 = heapNow();
  const whole = applied.map((o, n) => structuredClone(asServerReturns(o, n)));
  const wholeBytes = heapNow() - h0;
  rows.push(['informer cache, whole objects (before)', `${mib(wholeBytes)} MiB`, per1k(wholeBytes)]);
  whole.length = 0;
  // What the cache keeps of objects as they arrive (each parsed on its own): values pooled across entries stay shared.
  h0 = heapNow();
  let arriving = applied.map((o, n) => structuredClone(asServerReturns(o, n)));
  const slim = arriving.map(slimWorkloadEntry);
  arriving = [];
  const slimBytes = heapNow() - h0;
  rows.push(['informer cache, slim objects (now)', `${mib(slimBytes)} MiB`, per1k(slimBytes)]);

  // CPU: a one-service change with and without the memo, and the plan over everything.
  services[7] = serviceEndpoints(7, 200);
  const changed = services.flat();
  const noMemo = () => buildDesiredState({ sourceName: 'fleet', spec: source.spec, endpoints: changed, providerRules: rules });
  noMemo();
  t = performance.now();
  noMemo();
  const remapAllMs = performance.now() - t;
  const before = memo.mapped;
  t = performance.now();
  const next = buildDesiredState({ sourceName: 'fleet', spec: source.spec, endpoints: changed, providerRules: rules, memo });
  const memoMs = performance.now() - t;
  const input = { policy: 'sync' as const, unknownScopes: [], guard: { enabled: true, maxDeletePercent: 50 } };
  plan({ ...input, desired: next.entries, owned: slim });
  t = performance.now();
  const p = plan({ ...input, desired: next.entries, owned: slim });
  const planMs = performance.now() - t;
  t = performance.now();
  lazyGroups[7] = groupOf(services[7] as Endpoint[]);
  const { byName, changed: names } = grouped.update(lazyGroups);
  const groupedMs = performance.now() - t;
  const slimByName = new Map(slim.map((e) => [e.metadata.name, e]));
  t = performance.now();
  const onlyChanged = [...(names ?? [])];
  const partial = plan({
    ...input,
    desired: onlyChanged.flatMap((n) => byName.get(n) ?? []),
    owned: onlyChanged.flatMap((n) => slimByName.get(n) ?? []),
    ownedTotal: slim.length,
  });
  const partialMs = performance.now() - t;
  rows.push(['first mapping of the source', `${round(fullMapMs)} ms`, `${round((fullMapMs * 1000) / TOTAL, 1)} µs per endpoint`]);
  rows.push(['one-service change, mapping everything again (before)', `${round(remapAllMs)} ms`]);
  rows.push(['one-service change, mapping what changed (now)', `${round(memoMs)} ms`, `${memo.mapped - before} endpoints mapped, ${TOTAL - INSTANCES} reused`]);
  rows.push(['plan over the whole source (hashes cached)', `${round(planMs)} ms`, `${p.updates.length} updates`]);
  rows.push(['one-service change, grouped mapping (now)', `${round(groupedMs, 2)} ms`, `${names?.size ?? 'all'} names changed`]);
  rows.push(['plan of the names that changed (now)', `${round(partialMs, 2)} ms`, `${partial.updates.length} updates`]);

  process.stdout.write(`Data cost at ${SERVICES} × ${INSTANCES} = ${TOTAL} endpoints (no I/O)\n${table(rows)}\n`);
}

main();
