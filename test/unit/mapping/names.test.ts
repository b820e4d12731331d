import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { NAME_HASH_LENGTH, endpointHash, workloadEntryName } from '../../../src/mapping/names.ts';
import { isDns1123Label } from '../../../src/mapping/sanitize.ts';

describe('workloadEntryName', () => {
  test('is <source>-<service>-<hash>', () => {
    const hash = createHash('sha256').update('payments\0i-0abc').digest('hex').slice(0, 10);
    assert.equal(workloadEntryName('payments', 'i-0abc', 'web'), `payments-web-${hash}`);
  });

  test('uses the endpoint id when there is no service', () => {
    const name = workloadEntryName('payments', 'node-1/web-1');
    assert.match(name, /^payments-node-1-web-1-[0-9a-f]{10}$/);
    assert.equal(workloadEntryName('payments', 'node-1/web-1', ''), name);
  });

  test('lower-cases and replaces invalid characters in the readable part', () => {
    assert.match(workloadEntryName('Pay', 'x', 'Web Frontend_v2'), /^pay-web-frontend-v2-[0-9a-f]{10}$/);
  });

  test('cuts a long readable part and keeps the hash', () => {
    const name = workloadEntryName('s'.repeat(40), 'id', 'service-'.repeat(20));
    assert.equal(name.length, 63);
    assert.ok(isDns1123Label(name));
    assert.ok(name.endsWith(`-${endpointHash('s'.repeat(40), 'id')}`));
  });

  test('a cut never leaves "--" before the hash', () => {
    const name = workloadEntryName('a'.repeat(51), 'id', 'b');
    assert.ok(!name.includes('--'), name);
    assert.ok(isDns1123Label(name));
  });

  test('is only the hash when nothing readable is left', () => {
    const name = workloadEntryName('日本', '東京');
    assert.equal(name, endpointHash('日本', '東京'));
    assert.equal(name.length, NAME_HASH_LENGTH);
  });

  test('the hash depends on the source and the id, not on the service', () => {
    const h = (n: string): string => n.slice(-NAME_HASH_LENGTH);
    assert.equal(h(workloadEntryName('s', 'id', 'a')), h(workloadEntryName('s', 'id', 'b')));
    assert.notEqual(h(workloadEntryName('s', 'id-1')), h(workloadEntryName('s', 'id-2')));
    assert.notEqual(h(workloadEntryName('s1', 'id')), h(workloadEntryName('s2', 'id')));
    // The separator keeps ("a", "b-c") and ("a-b", "c") apart.
    assert.notEqual(endpointHash('a', 'b-c'), endpointHash('a-b', 'c'));
  });

  const anyText = fc.string({ unit: 'binary', maxLength: 120 });

  test('property: always a DNS-1123 label of at most 63 characters', () => {
    fc.assert(
      fc.property(anyText, anyText, fc.option(anyText, { nil: undefined }), (source, id, service) => {
        const name = workloadEntryName(source, id, service);
        assert.ok(isDns1123Label(name), name);
        assert.ok(name.length <= 63);
      }),
      { numRuns: 2000 },
    );
  });

  test('property: deterministic, and distinct ids give distinct names', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.uniqueArray(anyText, { minLength: 2, maxLength: 50 }), (source, ids) => {
        const names = ids.map((id) => workloadEntryName(source, id, 'svc'));
        assert.deepEqual(ids.map((id) => workloadEntryName(source, id, 'svc')), names);
        assert.equal(new Set(names).size, ids.length);
      }),
    );
  });
});
