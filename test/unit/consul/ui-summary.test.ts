/**
 * The catalog summary says which services had instances added or removed: parsed, or
 * scanned as bytes (what the feed reads), the same services differ between two answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { changedSummaries, parseServiceSummaries, scanServiceSummaries } from '../../../src/providers/consul/ui-summary.ts';

const entry = (Name: string, Nodes: string[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  Name,
  Datacenter: 'dc1',
  Tags: ['a'],
  Nodes,
  ExternalSources: null,
  InstanceCount: Nodes.length,
  ChecksPassing: 0,
  ChecksWarning: 0,
  ChecksCritical: 0,
  GatewayConfig: { AssociatedServiceCount: 0, Name: 'not-the-service' },
  ...extra,
});

const before = [entry('web', ['n1', 'n2']), entry('db', ['n3']), entry('api', ['n4']), entry('gone', ['n9'])];
const after = [entry('web', ['n1', 'n2', 'n5']), entry('db', ['n3']), entry('api', ['n4'], { ChecksCritical: 1 }), entry('new', ['n6'])];
const wanted = ['web', 'db', 'api', 'gone', 'new'];

test('scanned as bytes, the summary names the same changed services as parsed, whatever nested values hold', () => {
  const parsed = changedSummaries(parseServiceSummaries(before), parseServiceSummaries(after), wanted);
  assert.deepEqual(parsed, ['web', 'api', 'gone', 'new']);
  for (const text of [(v: unknown) => JSON.stringify(v), (v: unknown) => JSON.stringify(v, null, 4)]) {
    const scanned = changedSummaries(scanServiceSummaries(Buffer.from(text(before))), scanServiceSummaries(Buffer.from(text(after))), wanted);
    assert.deepEqual(scanned, parsed);
    assert.deepEqual(changedSummaries(scanServiceSummaries(Buffer.from(text(before))), scanServiceSummaries(Buffer.from(text(before))), wanted), [], 'the same answer again changes nothing');
  }
});

test('entries of one name (several namespaces) count as one; a summary without a field it relies on is refused', () => {
  const twice = Buffer.from(JSON.stringify([entry('web', ['n1']), entry('web', ['n2'])]));
  const once = Buffer.from(JSON.stringify([entry('web', ['n1'])]));
  assert.deepEqual(changedSummaries(scanServiceSummaries(once), scanServiceSummaries(twice), ['web']), ['web']);
  const { InstanceCount: _dropped, ...old } = entry('web', ['n1']);
  assert.throws(() => scanServiceSummaries(Buffer.from(JSON.stringify([old]))), /entry 0 has no InstanceCount/);
  assert.throws(() => scanServiceSummaries(Buffer.from(JSON.stringify([{ Nodes: [] }]))), /entry 0 has no Name/);
  assert.throws(() => scanServiceSummaries(Buffer.from('{"web":[]}')), /not a list/);
  assert.deepEqual(scanServiceSummaries(Buffer.from('[]')).size, 0);
});
