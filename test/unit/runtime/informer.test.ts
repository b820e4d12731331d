/**
 * The informer's list-watch cycle against a loopback HTTP server playing the apiserver's
 * part: list, watch from the list's version, a 410 in the watch (a version compacted
 * away) makes it list again, and that list turns into the events of what changed in
 * between (an object gone is deleted, one changed is updated, an unchanged one is quiet).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { KubeClient } from '../../../src/runtime/kube-client.ts';
import { ResilientInformer, type InformerEvent } from '../../../src/runtime/informer.ts';
import { silentLogger } from '../../../src/metrics/logger.ts';
import { startLoopbackServer, type LoopbackServer } from '../../fixtures/loopback-server.ts';

const TYPE = { group: 'g.io', version: 'v1', plural: 'things' };
type Thing = { metadata: { name: string; namespace: string; resourceVersion: string } };
const thing = (name: string, rv: string): Thing => ({ metadata: { name, namespace: 'ns', resourceVersion: rv } });

let loopback: LoopbackServer;
const lists: { resourceVersion: string; items: Thing[] }[] = [
  { resourceVersion: '10', items: [thing('a', '1'), thing('b', '2')] },
  { resourceVersion: '20', items: [thing('a', '1'), thing('c', '12')] },
];
const watchedFrom: string[] = [];
const open: ServerResponse[] = [];

before(async () => {
  loopback = await startLoopbackServer((req, res) => {
    const url = new URL(req.url ?? '', 'http://x');
    res.writeHead(200, { 'content-type': 'application/json' });
    if (url.searchParams.get('watch') !== '1') {
      const list = lists.shift() ?? { resourceVersion: '99', items: [] };
      res.end(JSON.stringify({ items: list.items, metadata: { resourceVersion: list.resourceVersion } }));
      return;
    }
    watchedFrom.push(url.searchParams.get('resourceVersion') ?? '');
    if (watchedFrom.length === 1) {
      res.write(JSON.stringify({ type: 'ADDED', object: thing('c', '11') }) + '\n');
      res.end(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } }) + '\n');
      return;
    }
    open.push(res); // a quiet watch, until the informer stops
  });
});

after(() => loopback.close());

test('list, watch, 410 → list again: the events say what changed', async () => {
  const client = new KubeClient(loopback.kubeConfig(), 'test', { restRequest: () => undefined });
  const events: string[] = [];
  let secondWatch: () => void = () => undefined;
  const watchingAgain = new Promise<void>((resolve) => (secondWatch = resolve));
  loopback.server.on('request', () => {
    if (watchedFrom.length === 2) secondWatch();
  });
  const informer = new ResilientInformer<Thing>({ client, type: TYPE, namespace: 'ns', log: silentLogger, onEvent: (e: InformerEvent, t) => void events.push(`${e} ${t.metadata.name}`) });
  await informer.start();
  assert.equal(informer.synced, true);
  await watchingAgain;
  assert.deepEqual(events, ['add a', 'add b', 'add c', 'delete b', 'update c']);
  assert.deepEqual(watchedFrom, ['10', '20'], "each watch starts at its list's version");
  assert.deepEqual(informer.list('ns').map((t) => `${t.metadata.name}@${t.metadata.resourceVersion}`).sort(), ['a@1', 'c@12']);
  assert.equal(informer.get('b', 'ns'), undefined);
  await informer.stop();
  await client.close();
});
