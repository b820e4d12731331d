/**
 * Relabel rules cannot freeze the operator (issue: one regex froze everything), and a
 * restarted operator does not repeat its Events. Real Consul agent, real control plane,
 * in-process operator with the providers this build ships.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConsulAgent } from '../../src/dev/consul-agent.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import { startProbeServer } from '../../src/metrics/server.ts';
import { builtinProviders } from '../../src/providers/index.ts';
import { compileAnchored } from '../../src/reconcile/relabel.ts';
import { MemoryRegistry, memoryProviderFactory } from '../fixtures/memory-provider.ts';
import { applyYaml, eventually, getSource, startLocalCluster, startOperator, waitForEndpoints, waitForSource, type RunningOperator } from '../harness/operator-env.ts';

let cluster: LocalCluster;
let agent: ConsulAgent;

before(async () => {
  [cluster, agent] = await Promise.all([startLocalCluster(), ConsulAgent.start()]);
});

after(async () => {
  await Promise.allSettled([cluster?.stop(), agent?.stop()]);
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

describe('a nested-quantifier regex over long registry values', { timeout: 300_000 }, () => {
  let op: RunningOperator;
  let probe: Server;

  before(async () => {
    op = await startOperator(cluster, [...builtinProviders().values()], { resyncPeriodMs: 60 * 60_000 });
    probe = await startProbeServer({ host: '127.0.0.1', port: 0 }, { healthy: () => true, ready: () => op.operator.synced });
  });

  after(async () => {
    probe?.close();
    await op?.stop();
  });

  test('the operator stays live and another source keeps syncing', async () => {
    const ns = 'redos';
    // The rule of the bug report: V8's backtracking engine needs seconds for (a+)+ over 28 characters.
    const keep = { action: 'keep', sourceLabels: ['__meta_consul_tags'], regex: ',redos,(a+)+b,' };
    const limit = compileAnchored(keep.regex).maxInputLength;
    await applyYaml(cluster, sourceJson(ns, 'evil', { consul: { address: agent.address, services: ['redos'] }, workloadEntry: { relabelings: [keep] } }));
    await applyYaml(cluster, sourceJson(ns, 'web', { consul: { address: agent.address, services: ['web'] } }));
    await agent.registerService({ ID: 'web-1', Name: 'web', Address: '10.20.0.1', Port: 8080 });

    const tag = (as: number, end = ''): string => `${'a'.repeat(as)}${end}`;
    await agent.registerService({ ID: 'redos-40', Name: 'redos', Tags: ['redos', tag(40)], Address: '10.20.1.1', Port: 80 });
    await agent.registerService({ ID: 'redos-long', Name: 'redos', Tags: ['redos', tag(limit - 10)], Address: '10.20.1.2', Port: 80 });
    await agent.registerService({ ID: 'redos-match', Name: 'redos', Tags: ['redos', tag(limit - 11, 'b')], Address: '10.20.1.3', Port: 80 });
    await agent.registerService({ ID: 'redos-over', Name: 'redos', Tags: ['redos', tag(limit * 3)], Address: '10.20.1.4', Port: 80 });

    // The rule ran over every value: the matching one is kept, the non-matching ones
    // dropped, and the one over the input bound skipped with a reason.
    const evil = await waitForSource(cluster, ns, 'evil', 'evil to map its 4 instances', (s) => s.status?.desiredEntries === 1 && s.status?.skipped === 1, 60_000);
    assert.equal(evil.status?.managedEntries, 1);
    const skipped = await eventually('an EndpointsSkipped event', async () => (await eventsOf(ns, 'evil', 'EndpointsSkipped'))[0]);
    assert.match(skipped.message, new RegExp(`/redos-over: spec\\.workloadEntry\\.relabelings\\[0\\] reads the value of __meta_consul_tags of ${limit * 3 + 8} characters; this rule reads at most ${limit}`));

    // The probe answers.
    const port = (probe.address() as AddressInfo).port;
    const healthz = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(healthz.status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);

    // The other source keeps syncing: a new instance shows up as a WorkloadEntry.
    await agent.registerService({ ID: 'web-2', Name: 'web', Address: '10.20.0.2', Port: 8080 });
    await waitForEndpoints(cluster, ns, [`${agent.node}/web-1`, `${agent.node}/web-2`, `${agent.node}/redos-match`]);
    // And the evil source keeps answering to its own changes too.
    await agent.registerService({ ID: 'redos-match-2', Name: 'redos', Tags: ['redos', 'aaab'], Address: '10.20.1.5', Port: 80 });
    await waitForEndpoints(cluster, ns, [`${agent.node}/web-1`, `${agent.node}/web-2`, `${agent.node}/redos-match`, `${agent.node}/redos-match-2`]);
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  });
});

describe('Events across a restart', { timeout: 300_000 }, () => {
  const registries = new Map<string, MemoryRegistry>([['http://events.registry.test', new MemoryRegistry()]]);

  test('a restarted operator bumps the count of its Event instead of creating another', async () => {
    const ns = 'events-restart';
    // A rule RE2 rejects (lookahead): the source gets an InvalidRelabelRule Warning each start.
    await applyYaml(
      cluster,
      sourceJson(ns, 'bad-rule', { consul: { address: 'http://events.registry.test' }, workloadEntry: { relabelings: [{ action: 'keep', sourceLabels: ['a'], regex: '(?=a)a' }] } }),
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
