/**
 * Events across operator restarts, against the real control plane: a fresh process
 * finds the Event the previous one wrote and bumps its count (as client-go's event
 * correlator does within one process) instead of creating an identical one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import { MemoryRegistry, memoryProviderFactory } from '../fixtures/memory-provider.ts';
import { applyYaml, eventually, getSource, startTestCluster, startOperator } from '../harness/operator-env.ts';

let cluster: LocalCluster;

before(async () => {
  cluster = await startTestCluster({ controllerManager: false });
});

after(async () => {
  await cluster?.stop();
});

function sourceJson(ns: string, name: string, spec: Record<string, unknown>): string {
  const namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } };
  const source = { apiVersion: 'vmregistry.io/v1alpha1', kind: 'VmRegistrySource', metadata: { name, namespace: ns }, spec: { interval: '1h', ...spec } };
  return `${JSON.stringify(namespace)}\n---\n${JSON.stringify(source)}\n`;
}

interface EventItem {
  metadata: { name: string };
  reason: string;
  message: string;
  count?: number;
}

async function eventsOf(ns: string, name: string, reason: string): Promise<EventItem[]> {
  const out = await cluster.kubectl(['get', 'events', '-n', ns, '--field-selector', `reason=${reason},involvedObject.name=${name}`, '-o', 'json']);
  return (JSON.parse(out) as { items: EventItem[] }).items;
}

describe('Events across a restart', { timeout: 300_000 }, () => {
  const registries = new Map<string, MemoryRegistry>([['http://events.registry.test', new MemoryRegistry()]]);

  test('a restarted operator bumps the count of its Event instead of creating another', async () => {
    const ns = 'events-restart';
    // A rule RE2 rejects (lookahead): the source gets an InvalidRelabelRule Warning each start.
    await applyYaml(
      cluster,
      sourceJson(ns, 'bad-rule', { memory: { registry: 'http://events.registry.test' }, workloadEntry: { relabelings: [{ action: 'keep', sourceLabels: ['a'], regex: '(?=a)a' }] } }),
    );
    const first = await startOperator(cluster, [memoryProviderFactory(registries)], { resyncPeriodMs: 60 * 60_000 });
    let events: EventItem[];
    try {
      events = await eventually('the InvalidRelabelRule event', async () => {
        const items = await eventsOf(ns, 'bad-rule', 'InvalidRelabelRule');
        return items.length > 0 ? items : undefined;
      });
    } finally {
      await first.stop();
    }
    assert.equal(events.length, 1);
    assert.equal(events[0]?.count, 1);
    assert.match(events[0]?.message ?? '', /invalid regex "\(\?=a\)a": invalid or unsupported Perl syntax/);
    const source = await getSource(cluster, ns, 'bad-rule');
    assert.equal(source.status?.conditions?.find((c) => c.type === 'Synced')?.reason, 'InvalidRelabelRule');

    // A fresh process knows nothing of the first one's Events.
    const second = await startOperator(cluster, [memoryProviderFactory(registries)], { resyncPeriodMs: 60 * 60_000 });
    try {
      const bumped = await eventually('the same Event with count 2', async () => {
        const items = await eventsOf(ns, 'bad-rule', 'InvalidRelabelRule');
        return items.some((e) => e.count === 2) ? items : undefined;
      });
      assert.equal(bumped.length, 1, 'one Event, not a second identical one');
      assert.equal(bumped[0]?.metadata.name, events[0]?.metadata.name);
    } finally {
      await second.stop();
    }
  });
});
