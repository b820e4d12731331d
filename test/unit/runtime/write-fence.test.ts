/**
 * The write fence in the KubeClient, against a loopback HTTP server that never answers
 * (a stalled apiserver): a closed fence refuses writes before any request is sent,
 * closing it aborts writes in flight, reads are not fenced, and writesSettled() waits
 * for the last write.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { Registry } from 'prom-client';
import { KubeClient } from '../../../src/runtime/kube-client.ts';
import { FencedError, WriteFence } from '../../../src/runtime/write-fence.ts';
import { ControllerMetrics } from '../../../src/metrics/controller-metrics.ts';
import { startLoopbackServer, type LoopbackServer } from '../../fixtures/loopback-server.ts';

const ENTRIES = { group: 'networking.istio.io', version: 'v1', plural: 'workloadentries' };

let loopback: LoopbackServer;
const received: IncomingMessage[] = [];

before(async () => {
  loopback = await startLoopbackServer((req) => void received.push(req)); // never answers
});

after(() => loopback.close());

function client(fence: WriteFence): { client: KubeClient; metrics: ControllerMetrics } {
  const kc = loopback.kubeConfig();
  const metrics = new ControllerMetrics(new Registry(), { defaultMetrics: false });
  return { client: new KubeClient(kc, 'test', metrics, {}, fence), metrics };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise<void>((resolve) => setImmediate(resolve));
  if (!ok()) await new Promise<void>((resolve) => loopback.server.once('request', () => resolve()));
  assert.ok(ok(), what);
}

describe('the write fence', () => {
  test('a fence not yet opened refuses writes without sending a request, and counts them', async () => {
    const before = received.length;
    const { client: c, metrics } = client(new WriteFence(false, () => metrics.fencedWrites.inc()));
    await assert.rejects(c.delete(ENTRIES, 'ns', 'x', 'uid'), FencedError);
    assert.equal(received.length, before, 'no request reached the server');
    assert.equal((await metrics.fencedWrites.get()).values[0]?.value, 1);
  });

  test('closing the fence aborts a write in flight; writesSettled() then resolves; later writes are refused', async () => {
    const fence = new WriteFence(true);
    const { client: c } = client(fence);
    const before = received.length;
    const write = c.delete(ENTRIES, 'ns', 'x', 'uid');
    let settled = false;
    const settling = c.writesSettled().then(() => (settled = true));
    await until('the write reached the server', () => received.length > before);
    assert.equal(settled, false, 'a write is in flight');
    fence.close('leadership lost: test');
    await assert.rejects(write, (e: unknown) => e instanceof FencedError && /leadership lost: test/.test(e.message));
    await settling;
    assert.equal(settled, true);
    const count = received.length;
    await assert.rejects(c.apply(ENTRIES, { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'y', namespace: 'ns' }, spec: { address: '10.0.0.1' } }), FencedError);
    assert.equal(received.length, count, 'nothing sent after the fence closed');
    fence.open();
    assert.equal(fence.isOpen, false, 'a closed fence never reopens');
  });

  test('reads are not fenced while not leading (the standby fills its caches), and lease calls use their own deadline', async () => {
    const { client: c } = client(new WriteFence(false));
    const before = received.length;
    const read = c.get(ENTRIES, 'ns', 'x');
    await until('the read reached the server', () => received.length > before);
    const deadline = new AbortController();
    const lease = c.getLease('ops', 'lock', deadline.signal);
    await until('the lease read reached the server', () => received.length > before + 1);
    deadline.abort(new Error('renew deadline'));
    await assert.rejects(lease, /renew deadline/);
    // The read is still in flight: end it by closing the server's side.
    loopback.server.closeAllConnections();
    await assert.rejects(read);
  });
});
