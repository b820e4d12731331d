/**
 * The ServiceEntry half of a sync reads the namespace's ServiceEntries from the cache,
 * and lists them afresh only before it would declare a host: a ServiceEntry the cache
 * has not seen yet still blocks ours.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SERVICE_ENTRIES, type ServiceEntry } from '../../../src/api/istio.ts';
import { syncServiceEntries } from '../../../src/controller/service-entry-sync.ts';
import { EventRecorder } from '../../../src/controller/events.ts';
import { silentLogger } from '../../../src/metrics/logger.ts';
import type { DesiredEntry } from '../../../src/mapping/types.ts';
import { BUILTIN_API } from '../../../src/providers/builtin.ts';
import { source } from '../../fixtures/builders.ts';
import { MemoryCluster } from '../../fixtures/memory-writer.ts';

const src = source('vms').namespace('shop').uid('uid-vms').consul({ address: 'http://127.0.0.1:8500' }).spec({ serviceEntries: {} }).build();
const spec = BUILTIN_API.applyDefaults(src.spec);

function entry(name: string, service: string, address: string): DesiredEntry {
  const labels = { app: service };
  return { name, endpointId: name, scope: 'dc1', labels, annotations: {}, spec: { address, ports: { tcp: 5432 }, labels } };
}

function legacy(host: string): ServiceEntry {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'legacy', namespace: 'shop' },
    spec: { hosts: [host], location: 'MESH_INTERNAL', resolution: 'STATIC', ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }], workloadSelector: { labels: { app: 'legacy' } } },
  };
}

const lists = (c: MemoryCluster): number => c.calls.filter((x) => x.op === 'list' && x.plural === SERVICE_ENTRIES.plural).length;

describe('syncServiceEntries with a cache', () => {
  test('a steady state reads only the cache; a new service is checked against a fresh list', async () => {
    const cluster = new MemoryCluster();
    const cache = (): ServiceEntry[] => cluster.all<ServiceEntry>(SERVICE_ENTRIES, 'shop');
    const deps = { client: cluster, events: new EventRecorder(cluster, silentLogger), listAll: cache };
    const run = (entries: DesiredEntry[]) => syncServiceEntries(deps, { source: { ...src, spec }, provider: 'consul', entries });

    await run([entry('d1', 'db', '10.0.0.1')]);
    assert.equal(lists(cluster), 1, 'the create of the db ServiceEntry listed once');
    const steady = await run([entry('d1', 'db', '10.0.0.1'), entry('d2', 'db', '10.0.0.2')]);
    assert.equal(lists(cluster), 1, 'nothing to declare: the cache serves');
    assert.equal(steady.counts?.managedServiceEntries, 1);

    // A ServiceEntry the cache has not seen yet holds the queue's host.
    cluster.seed(SERVICE_ENTRIES, legacy('queue.service.consul'));
    const withQueue = [entry('d1', 'db', '10.0.0.1'), entry('q1', 'queue', '10.0.0.3')];
    const stale = { ...deps, listAll: () => cache().filter((se) => se.metadata.name !== 'legacy') };
    const out = await syncServiceEntries(stale, { source: { ...src, spec }, provider: 'consul', entries: withQueue });
    assert.equal(lists(cluster), 2);
    assert.equal(out.counts?.serviceEntryConflicts, 1, 'the fresh list shows the clash');
    assert.deepEqual(cache().map((se) => se.spec?.hosts?.[0]).sort(), ['db.service.consul', 'queue.service.consul'], 'only the legacy entry declares the queue');
  });
});
