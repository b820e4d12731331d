/** Moves of the catalog-wide lists that service watches explain, and those they cannot. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HealthEntry } from '../../../src/providers/consul/api-types.ts';
import { changedNodes, WatchedMoves } from '../../../src/providers/consul/watched-moves.ts';

test('a list read is spared only when every move since the last one is explained', () => {
  const moves = new WatchedMoves();
  moves.explain(12);
  moves.moved('services', 12);
  moves.moved('nodes', 12);
  assert.ok(moves.allExplained('services'));
  moves.moved('services', 14);
  assert.ok(!moves.allExplained('services'), 'a second move that no watch answered');
  assert.equal(moves.take('services'), 14, 'the newest move examined');
  assert.ok(moves.allExplained('services'), 'none pending after the take');
  assert.ok(moves.allExplained('nodes'), 'each list keeps its own moves');
});

test('a move no watch can explain (a query that started again) asks for a read until taken', () => {
  const moves = new WatchedMoves();
  moves.explain(20);
  moves.unexplained('services');
  moves.moved('services', 20);
  assert.ok(!moves.explainable('services'));
  assert.ok(!moves.allExplained('services'));
  moves.take('services');
  assert.ok(moves.explainable('services'));
});

test('explanations are remembered for the latest 256 indexes only', () => {
  const moves = new WatchedMoves();
  for (let i = 1; i <= 300; i++) moves.explain(i);
  moves.moved('nodes', 10);
  assert.ok(!moves.allExplained('nodes'), 'an old explanation was forgotten');
  moves.take('nodes');
  moves.moved('nodes', 300);
  assert.ok(moves.allExplained('nodes'));
});

function entry(node: string, id: string, address: string, status = 'passing'): HealthEntry {
  return {
    Node: { Node: node, Address: '10.0.0.9', Datacenter: 'dc1', Meta: {}, TaggedAddresses: {} },
    Service: { ID: id, Service: 'web', Tags: [], Address: address, Port: 80, Meta: {} },
    Checks: [{ CheckID: `${id}-check`, Status: status, ServiceID: id }],
  } as unknown as HealthEntry;
}

test('changedNodes names the nodes of instances added, removed or changed, not of those left as they were', () => {
  const shared = entry('agent', 'web-0', '10.0.0.1');
  const before = [shared, entry('vm-1', 'web-1', '10.0.0.2'), entry('vm-2', 'web-2', '10.0.0.3'), entry('vm-3', 'web-3', '10.0.0.4')];
  const after = [entry('agent', 'web-0', '10.0.0.1'), entry('vm-1', 'web-1', '10.0.1.2'), entry('vm-3', 'web-3', '10.0.0.4', 'critical'), entry('vm-4', 'web-4', '10.0.0.5')];
  assert.deepEqual([...changedNodes(before, after)].sort(), ['vm-1', 'vm-2', 'vm-3', 'vm-4']);
  assert.equal(changedNodes(before, before).size, 0);
});
