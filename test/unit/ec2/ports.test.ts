import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parsePortsTag } from '../../../src/providers/ec2/ports.ts';

describe('parsePortsTag', () => {
  test('reads name=number pairs, trimming spaces and lower-casing names', () => {
    assert.deepEqual([...parsePortsTag('http=8080, GRPC = 9090')], [['http', 8080], ['grpc', 9090]]);
  });

  test('ignores malformed parts and keeps the good ones', () => {
    const ports = parsePortsTag('junk,http=,=80,tcp=0,big=65536,neg=-1,hex=0x50,bad_name=81,ok=443,,x=1.5');
    assert.deepEqual([...ports], [['ok', 443]]);
  });

  test('the first occurrence of a name wins', () => {
    assert.deepEqual([...parsePortsTag('http=80,http=8080')], [['http', 80]]);
  });

  test('never throws and only yields valid ports, whatever the tag says', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        for (const [name, port] of parsePortsTag(s)) {
          assert.match(name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
          assert.ok(Number.isInteger(port) && port >= 1 && port <= 65535);
        }
      }),
    );
  });
});
