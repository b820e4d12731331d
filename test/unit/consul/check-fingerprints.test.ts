import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serviceCheckFingerprints } from '../../../src/providers/consul/check-fingerprints.ts';

const check = (Node: string, CheckID: string, Status: string, ServiceName = '') => ({ Node, CheckID, Status, ServiceName });

test('a service check flip changes only that service\'s fingerprint', () => {
  const before = serviceCheckFingerprints([check('n1', 'web-1', 'passing', 'web'), check('n1', 'db-1', 'passing', 'db')]);
  const after = serviceCheckFingerprints([check('n1', 'web-1', 'critical', 'web'), check('n1', 'db-1', 'passing', 'db')]);
  assert.notEqual(after.get('web'), before.get('web'));
  assert.equal(after.get('db'), before.get('db'));
});

test('a node-level check flip changes every service on that node, and only those', () => {
  const checks = (serf: string) => [check('n1', 'serfHealth', serf), check('n1', 'web-1', 'passing', 'web'), check('n2', 'db-1', 'passing', 'db')];
  const before = serviceCheckFingerprints(checks('passing'));
  const after = serviceCheckFingerprints(checks('critical'));
  assert.notEqual(after.get('web'), before.get('web'));
  assert.equal(after.get('db'), before.get('db'));
});

test('a new instance (a new check) changes the fingerprint; order does not', () => {
  const a = [check('n1', 'web-1', 'passing', 'web'), check('n2', 'web-2', 'passing', 'web')];
  assert.equal(serviceCheckFingerprints(a).get('web'), serviceCheckFingerprints([...a].reverse()).get('web'));
  assert.notEqual(serviceCheckFingerprints(a.slice(0, 1)).get('web'), serviceCheckFingerprints(a).get('web'));
});
