import { test } from 'node:test';
import assert from 'node:assert/strict';
import { changedChecks, nonPassingSet } from '../../../src/providers/consul/check-fingerprints.ts';

const check = (Node: string, CheckID: string, Status: string, ServiceName = '') => ({ Node, CheckID, Status, ServiceName });

test('passing checks are left out of the set', () => {
  const set = nonPassingSet([check('n1', 'web-1', 'passing', 'web'), check('n1', 'db-1', 'warning', 'db')]);
  assert.deepEqual([...set.values()].map((c) => c.serviceName), ['db']);
});

test('a service check going critical, changing status or passing again names that service only', () => {
  const passing = nonPassingSet([]);
  const critical = nonPassingSet([check('n1', 'web-1', 'critical', 'web')]);
  const warning = nonPassingSet([check('n1', 'web-1', 'warning', 'web')]);
  assert.deepEqual([...changedChecks(passing, critical).services], ['web']);
  assert.deepEqual([...changedChecks(critical, warning).services], ['web']);
  assert.deepEqual([...changedChecks(warning, passing).services], ['web']);
  assert.deepEqual(changedChecks(critical, critical), { services: new Set(), nodes: new Set() });
});

test('a node-level check names its node, not a service', () => {
  const before = nonPassingSet([check('n2', 'db-1', 'critical', 'db')]);
  const after = nonPassingSet([check('n1', 'serfHealth', 'critical'), check('n2', 'db-1', 'critical', 'db')]);
  const changes = changedChecks(before, after);
  assert.deepEqual([...changes.nodes], ['n1']);
  assert.deepEqual([...changes.services], []);
});

test('the same check id on two nodes are two checks', () => {
  const one = nonPassingSet([check('n1', 'serfHealth', 'critical')]);
  const two = nonPassingSet([check('n1', 'serfHealth', 'critical'), check('n2', 'serfHealth', 'critical')]);
  assert.deepEqual([...changedChecks(one, two).nodes], ['n2']);
});
