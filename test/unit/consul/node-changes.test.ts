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
