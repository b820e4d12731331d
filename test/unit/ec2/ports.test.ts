import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parsePortsTag, readPortsTag } from '../../../src/providers/ec2/ports.ts';
import { parsePortList } from '../../../src/providers/ports.ts';

describe('the ports tag', () => {
  test('reads name=number pairs, trimming spaces and skipping empty parts', () => {
    assert.deepEqual([...parsePortsTag('http=8080, grpc = 9090,')], [['http', 8080], ['grpc', 9090]]);
    assert.deepEqual(readPortsTag('ports', 'http=8080, grpc = 9090,').problems, []);
  });

  test('the bad tag of the bug report is a problem naming every bad part, not silence', () => {
    const list = readPortsTag('ports', 'http=abc,=80,grpc=99999');
    assert.deepEqual([...list.ports], []);
    assert.deepEqual(list.problems, [
      'invalid ports tag "ports" "http=abc,=80,grpc=99999": "http=abc": "abc" is not a port number from 1 to 65535; "=80" has no port name; "grpc=99999": "99999" is not a port number from 1 to 65535',
    ]);
  });

  test('names are not reshaped: upper case, "_" and repeats are problems', () => {
    const list = parsePortList('GRPC=9090,bad_name=81,http=80,http=8080,junk,x=0x50,ok=443', 'ports tag "p"');
    assert.deepEqual([...list.ports], [['http', 80], ['ok', 443]]);
    assert.equal(list.problems.length, 1);
    const text = list.problems[0] ?? '';
    for (const part of ['"GRPC=9090": port name "GRPC"', '"bad_name=81"', 'port "http" is given twice', '"junk" is not name=number', '"0x50" is not a port number']) {
      assert.ok(text.includes(part), `${part} in ${text}`);
    }
  });

  test('never throws; yields valid ports, and a problem exactly when a part was not used', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const list = parsePortList(s, 'ports tag "p"');
        for (const [name, port] of list.ports) {
          assert.match(name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
          assert.ok(Number.isInteger(port) && port >= 1 && port <= 65535);
        }
        const parts = s.split(',').filter((p) => p.trim() !== '').length;
        assert.equal(list.problems.length > 0, parts !== list.ports.size);
      }),
    );
  });
});
