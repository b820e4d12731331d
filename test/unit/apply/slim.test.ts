/** The informer caches keep only what the planner reads, and planning over them gives the same plan as over whole objects. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { slimSource, slimWorkloadEntry } from '../../../src/apply/slim.ts';
import { toAppliedObject } from '../../../src/apply/apply.ts';
import { buildDesiredState } from '../../../src/mapping/desired.ts';
import { plan } from '../../../src/plan/plan.ts';
import type { WorkloadEntry } from '../../../src/api/istio.ts';
import { endpoint, source } from '../../fixtures/builders.ts';

const src = source('fleet').namespace('vms').build();

/** An entry as the apiserver returns it: our applied object plus server fields and other writers' fields. */
function fromServer(applied: WorkloadEntry, extra: { healthy?: 'True' | 'False'; address?: string } = {}): WorkloadEntry {
  return {
    ...applied,
    metadata: {
      ...applied.metadata,
      uid: `uid-${applied.metadata.name}`,
      resourceVersion: '42',
      annotations: { ...applied.metadata.annotations, 'kubectl.kubernetes.io/last-applied-configuration': '{"big":"x"}', 'team.example/owner': 'db' },
      creationTimestamp: '2026-01-01T00:00:00Z',
      managedFields: [{ manager: 'vm-registry-operator', operation: 'Apply', fieldsV1: { 'f:spec': { 'f:address': {} } } }],
    } as WorkloadEntry['metadata'],
    spec: { ...applied.spec, ...(extra.address ? { address: extra.address } : {}) },
    status: {
      conditions: [
        ...(extra.healthy ? [{ type: 'Healthy', status: extra.healthy, lastProbeTime: '2026-01-01T00:00:00Z', reason: 'HealthCheckPassing', message: 'long text' }] : []),
        { type: 'Other', status: 'True', message: 'someone else' },
      ],
    },
  };
}

const desired = buildDesiredState({
  sourceName: 'fleet',
  spec: src.spec,
  endpoints: ['a', 'b', 'c'].map((id, i) => endpoint(id).address(`10.0.0.${i + 1}`).meta({ __service__: 'web' }).healthy(true).build()),
  providerRules: [],
}).entries;

test('a slim entry drops managedFields, timestamps, kubectl\'s copy and status other than Healthy', () => {
  const full = fromServer(toAppliedObject(desired[0]!, src), { healthy: 'True' });
  const slim = slimWorkloadEntry(full);
  const meta = slim.metadata as unknown as Record<string, unknown>;
  assert.equal(meta['managedFields'], undefined);
  assert.equal(meta['creationTimestamp'], undefined);
  assert.equal(slim.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'], undefined);
  assert.equal(slim.metadata.annotations?.['team.example/owner'], 'db');
  assert.equal(slim.metadata.resourceVersion, '42', 'the informer resumes from it');
  assert.deepEqual(slim.status, { conditions: [{ type: 'Healthy', status: 'True' }] });
  assert.deepEqual(slim.spec, full.spec);
  assert.deepEqual(slim.metadata.ownerReferences, full.metadata.ownerReferences);
  assert.ok(JSON.stringify(slim).length < JSON.stringify(full).length);
});

test('planning over slim entries gives the plan of whole entries', () => {
  const owned = [
    fromServer(toAppliedObject(desired[0]!, src), { healthy: 'True' }),
    fromServer(toAppliedObject(desired[1]!, src), { healthy: 'False', address: '10.9.9.9' }),
    fromServer(toAppliedObject({ ...desired[2]!, name: 'fleet-web-gone' }, src)),
  ];
  const input = { desired, policy: 'sync' as const, unknownScopes: [], guard: { enabled: false, maxDeletePercent: 50 } };
  const whole = plan({ ...input, owned });
  const slim = plan({ ...input, owned: owned.map(slimWorkloadEntry) });
  const names = (p: typeof whole) => ({
    creates: p.creates.map((d) => d.name),
    updates: p.updates.map((u) => [u.desired.name, u.fields]),
    deletes: p.deletes.map((e) => e.metadata.name),
    health: p.healthUpdates,
  });
  assert.deepEqual(names(slim), names(whole));
  assert.equal(whole.updates.length, 1);
  assert.equal(whole.deletes.length, 1);
  assert.equal(whole.healthUpdates.length, 1);
});

test('a slim source keeps spec and status, drops managedFields', () => {
  const s = { ...src, metadata: { ...src.metadata, managedFields: [{ manager: 'kubectl' }] }, status: { observedGeneration: 1, desiredEntries: 3 } } as typeof src;
  const slim = slimSource(s);
  assert.equal((slim.metadata as unknown as Record<string, unknown>)['managedFields'], undefined);
  assert.deepEqual(slim.spec, s.spec);
  assert.deepEqual(slim.status, s.status);
  assert.equal(slim.metadata.uid, s.metadata.uid);
});

test('listInPages follows continue tokens, slims each page and keeps the snapshot resourceVersion', async () => {
  const { listInPages } = await import('../../../src/runtime/kube-client.ts');
  const calls: (string | undefined)[] = [];
  const pages = [
    { items: [{ n: 1, big: 'x' }, { n: 2, big: 'x' }], metadata: { resourceVersion: '7', continue: 'a' } },
    { items: [{ n: 3, big: 'x' }], metadata: { resourceVersion: '7' } },
  ];
  const out = await listInPages(
    async (limit, cont) => {
      assert.equal(limit, 2);
      calls.push(cont);
      return pages[calls.length - 1]!;
    },
    (o: { n: number; big?: string }) => ({ n: o.n }),
    2,
  );
  assert.deepEqual(calls, [undefined, 'a']);
  assert.deepEqual(out, { items: [{ n: 1 }, { n: 2 }, { n: 3 }], metadata: { resourceVersion: '7' } });
});

test('slim entries of one source share their owner references and ports', () => {
  const [a, b] = [desired[0]!, desired[1]!].map((d) => slimWorkloadEntry(JSON.parse(JSON.stringify(fromServer(toAppliedObject(d, src)))) as WorkloadEntry));
  assert.equal(a!.metadata.ownerReferences, b!.metadata.ownerReferences);
  if (a!.spec.ports !== undefined) assert.equal(a!.spec.ports, b!.spec.ports);
  assert.deepEqual(a!.spec, JSON.parse(JSON.stringify(fromServer(toAppliedObject(desired[0]!, src)).spec)));
});
