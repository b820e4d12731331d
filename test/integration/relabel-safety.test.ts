/**
 * Relabel rules cannot freeze the operator (issue: one regex froze everything). Real
 * Consul agent, real control plane, in-process operator with the providers this build
 * ships.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConsulAgent } from '../../src/dev/consul-agent.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import { startProbeServer } from '../../src/metrics/server.ts';
import { builtinProviders } from '../../src/providers/builtin.ts';
import { compileAnchored } from '../../src/mapping/relabel.ts';
import { applyYaml, eventually, startLocalCluster, startOperator, waitForEndpoints, waitForSource, type RunningOperator } from '../harness/operator-env.ts';

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
    op = await startOperator(cluster, builtinProviders(), { resyncPeriodMs: 60 * 60_000 });
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
