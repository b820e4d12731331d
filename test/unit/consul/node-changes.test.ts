/** Reading which nodes changed from a node-list answer, and the services of a node. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodesChangedSince, servicesOfNode } from '../../../src/providers/consul/node-changes.ts';

test('nodes whose ModifyIndex is above the previous answer index changed (new ones included)', () => {
  const body = [
    { Node: 'old', Address: '10.0.0.1', CreateIndex: 5, ModifyIndex: 5 },
    { Node: 'moved', Address: '10.0.0.2', CreateIndex: 5, ModifyIndex: 42 },
    { Node: 'new', Address: '10.0.0.3', CreateIndex: 43, ModifyIndex: 43 },
  ];
  assert.deepEqual(nodesChangedSince(body, 40), ['moved', 'new']);
  assert.deepEqual(nodesChangedSince(body, 43), []);
  assert.throws(() => nodesChangedSince({}, 1), /not a list/);
});

test('the services of a node, each name once; a node that is gone has none', () => {
  const body = { Node: { Node: 'vm-1' }, Services: [{ ID: 'a-1', Service: 'a' }, { ID: 'a-2', Service: 'a' }, { ID: 'b-1', Service: 'b' }] };
  assert.deepEqual(servicesOfNode(body), ['a', 'b']);
  assert.deepEqual(servicesOfNode({ Node: null, Services: null }), []);
  assert.throws(() => servicesOfNode({ Node: {} }), /no Services list/);
});

test('the raw node list is scanned as its parsed form would be read, whatever Meta and tagged addresses hold', () => {
  const nodes = [
    { ID: '', Node: 'old', Address: '10.0.0.1', Datacenter: 'dc1', TaggedAddresses: { lan: '10.0.0.1' }, Meta: { Node: 'impostor', ModifyIndex: '999' }, CreateIndex: 5, ModifyIndex: 5 },
    { ID: 'x', Node: 'mo"ved\\', Address: '10.0.0.2', Datacenter: 'dc1', TaggedAddresses: null, Meta: { note: '{"Node":"fake","ModifyIndex":77}' }, CreateIndex: 5, ModifyIndex: 42 },
    { ModifyIndex: 43, Node: 'new-first-index', Meta: {}, Tags: ['a', ['b']] },
    { Node: 'no-index' },
  ];
  for (const text of [JSON.stringify(nodes), JSON.stringify(nodes, null, 2)]) {
    const raw = Buffer.from(text);
    assert.deepEqual(nodesChangedSince(raw, 40), nodesChangedSince(nodes, 40));
    assert.deepEqual(nodesChangedSince(raw, 40), ['mo"ved\\', 'new-first-index']);
    assert.deepEqual(nodesChangedSince(raw, 43), []);
  }
  assert.deepEqual(nodesChangedSince(Buffer.from(' []'), 0), []);
  assert.throws(() => nodesChangedSince(Buffer.from('{}'), 1), /not a list/);
  assert.throws(() => nodesChangedSince(Buffer.from('[{"Node":"cut'), 1), /not a list/);
});
