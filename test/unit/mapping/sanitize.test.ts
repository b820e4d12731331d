import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  isDns1123Label,
  isDns1123Subdomain,
  isValidLabelKey,
  isValidLabelValue,
  parseAddress,
  sanitizeLabelKey,
  sanitizeLabelValue,
  toDnsLabelFragment,
} from '../../../src/mapping/sanitize.ts';

describe('sanitizeLabelValue', () => {
  const cases: [string, string, string][] = [
    ['a valid value is kept', 'web-1.prod_x', 'web-1.prod_x'],
    ['empty stays empty', '', ''],
    ['spaces become _', 'Web Frontend', 'Web_Frontend'],
    ['one _ per code point, unicode included', 'café😀x', 'caf__x'],
    ['non-alphanumeric ends are trimmed', '--a.b__', 'a.b'],
    ['a value with nothing alphanumeric becomes empty', '@@@', ''],
    ['dots are allowed inside', '1.2.3', '1.2.3'],
    ['slashes become _', 'eu-west-1/a', 'eu-west-1_a'],
    ['63 characters are kept', 'a'.repeat(63), 'a'.repeat(63)],
    ['longer values are cut to 63', 'b'.repeat(100), 'b'.repeat(63)],
    ['a cut does not leave a non-alphanumeric end', `${'c'.repeat(62)}-d`, 'c'.repeat(62)],
    ['newlines become _', 'a\nb', 'a_b'],
  ];
  for (const [what, input, want] of cases) {
    test(what, () => {
      assert.equal(sanitizeLabelValue(input), want);
      assert.ok(isValidLabelValue(want));
    });
  }

  test('always yields a valid value, and is idempotent', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        const v = sanitizeLabelValue(s);
        assert.ok(isValidLabelValue(v), JSON.stringify(v));
        assert.equal(sanitizeLabelValue(v), v);
      }),
    );
  });
});

describe('sanitizeLabelKey', () => {
  const cases: [string, string, string | null][] = [
    ['a plain key is kept', 'app', 'app'],
    ['a prefixed key is kept', 'topology.istio.io/subzone', 'topology.istio.io/subzone'],
    ['invalid name characters become _', 'team name', 'team_name'],
    ['a name is trimmed to alphanumeric ends', '_private_', 'private'],
    ['a long name is cut to 63', 'k'.repeat(80), 'k'.repeat(63)],
    ['a prefix is lower-cased', 'Example.COM/tier', 'example.com/tier'],
    ['invalid prefix characters become -', 'my_org.io/tier', 'my-org.io/tier'],
    ['empty prefix parts are dropped', 'a..b./x', 'a.b/x'],
    ['later slashes belong to the name', 'a.io/b/c', 'a.io/b_c'],
    ['a key with nothing alphanumeric is dropped', '___', null],
    ['an empty key is dropped', '', null],
    ['an empty name is dropped', 'example.com/', null],
    ['a prefix with nothing valid is dropped', '__/name', null],
    ['unicode is replaced', 'équipe', 'quipe'],
  ];
  for (const [what, input, want] of cases) {
    test(what, () => {
      assert.equal(sanitizeLabelKey(input), want);
      if (want !== null) assert.ok(isValidLabelKey(want));
    });
  }

  test('a very long prefix is cut to 253 characters on part boundaries', () => {
    const key = `${Array.from({ length: 10 }, () => 'p'.repeat(40)).join('.')}/n`;
    const out = sanitizeLabelKey(key);
    assert.ok(out !== null && isValidLabelKey(out));
    assert.ok(out.split('/')[0]!.length <= 253);
  });

  test('always yields a valid key or null, and is idempotent', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
        const k = sanitizeLabelKey(s);
        if (k === null) return;
        assert.ok(isValidLabelKey(k), JSON.stringify(k));
        assert.equal(sanitizeLabelKey(k), k);
      }),
    );
  });
});

describe('label key and value syntax', () => {
  test('keys', () => {
    for (const k of ['a', 'A-b_c.d', 'x.y/z', 'k'.repeat(63)]) assert.ok(isValidLabelKey(k), k);
    for (const k of ['', '-a', 'a-', 'k'.repeat(64), 'X.io/a', '/a', 'a/', 'a/b/c', 'a b']) assert.ok(!isValidLabelKey(k), k);
  });
  test('values', () => {
    for (const v of ['', 'a', 'a.b-c_d', 'v'.repeat(63)]) assert.ok(isValidLabelValue(v), v);
    for (const v of ['-', '.a', 'a_', 'v'.repeat(64), 'a/b']) assert.ok(!isValidLabelValue(v), v);
  });
});

describe('DNS-1123', () => {
  test('labels', () => {
    for (const s of ['a', '0', 'web-1', 'a'.repeat(63)]) assert.ok(isDns1123Label(s), s);
    for (const s of ['', 'A', '-a', 'a-', 'a.b', 'a'.repeat(64), 'a_b']) assert.ok(!isDns1123Label(s), s);
  });
  test('subdomains', () => {
    for (const s of ['a', 'a.b', 'my-sa', 'a'.repeat(63)]) assert.ok(isDns1123Subdomain(s), s);
    for (const s of ['', 'a..b', '.a', 'a.', 'A.b', `${'a'.repeat(63)}.`.repeat(4) + 'a'.repeat(10)]) {
      assert.ok(!isDns1123Subdomain(s), s);
    }
  });
  test('readable fragments', () => {
    assert.equal(toDnsLabelFragment('Payments / Web__Frontend!'), 'payments-web-frontend');
    assert.equal(toDnsLabelFragment('--x--'), 'x');
    assert.equal(toDnsLabelFragment('日本'), '');
  });
});

describe('parseAddress', () => {
  const ok: [string, string, string, string][] = [
    // input, kind, address, duplicate key
    ['10.0.0.1', 'ipv4', '10.0.0.1', '10.0.0.1'],
    ['2001:DB8:0:0::1', 'ipv6', '2001:db8:0:0::1', '[2001:db8::1]'],
    ['::1', 'ipv6', '::1', '[::1]'],
    ['ip-10-0-0-1.eu-west-1.compute.internal', 'dns', 'ip-10-0-0-1.eu-west-1.compute.internal', 'ip-10-0-0-1.eu-west-1.compute.internal'],
    ['VM1.Example.COM.', 'dns', 'vm1.example.com', 'vm1.example.com'],
    ['localhost', 'dns', 'localhost', 'localhost'],
  ];
  for (const [input, kind, address, key] of ok) {
    test(`accepts ${input}`, () => {
      assert.deepEqual(parseAddress(input), { kind, address, key });
    });
  }
  const bad = [
    '',
    '10.0.0.256',
    '010.0.0.1',
    '1.2.3',
    'fe80::1%eth0',
    '[::1]',
    '10.0.0.1:8080',
    'bad..name',
    '-a.example.com',
    'a_b.example.com',
    'héllo.example.com',
    `${'a'.repeat(64)}.com`,
    `${'abcdefghi.'.repeat(26)}com`,
    'http://x',
    ' 10.0.0.1',
  ];
  for (const input of bad) {
    test(`rejects ${JSON.stringify(input)}`, () => {
      assert.equal(parseAddress(input), null);
    });
  }

  test('never throws', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
        const p = parseAddress(s);
        if (p !== null) assert.ok(p.address.length > 0);
      }),
    );
  });
});
