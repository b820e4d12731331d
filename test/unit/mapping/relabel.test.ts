import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RelabelRuleInput } from '../../../src/api/types.ts';
import {
  MAX_RELABEL_INPUT_LENGTH,
  RelabelError,
  RelabelInputTooLongError,
  compileAnchored,
  compileRules,
  expandTemplate,
  parseTemplate,
  relabel,
  type Match,
} from '../../../src/mapping/relabel.ts';

type Labels = Record<string, string>;
interface Case {
  readonly name: string;
  readonly rules: RelabelRuleInput[];
  readonly input: Labels;
  readonly want: Labels | null;
}

function table(cases: readonly Case[]): void {
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(relabel(c.input, c.rules), c.want);
    });
  }
}

describe('replace', () => {
  table([
    {
      name: 'defaults copy the source label to the target',
      rules: [{ sourceLabels: ['__meta_consul_service'], targetLabel: '__service__' }],
      input: { __meta_consul_service: 'web' },
      want: { __meta_consul_service: 'web', __service__: 'web' },
    },
    {
      name: 'a missing source label counts as "" and removes the target',
      rules: [{ sourceLabels: ['missing'], targetLabel: 'team' }],
      input: { team: 'a' },
      want: {},
    },
    {
      name: 'several source labels are joined by the separator',
      rules: [{ sourceLabels: ['a', 'b', 'c'], separator: '/', targetLabel: '__locality__' }],
      input: { a: 'eu', b: 'west1', c: 'b' },
      want: { a: 'eu', b: 'west1', c: 'b', __locality__: 'eu/west1/b' },
    },
    {
      name: 'missing labels in a join leave empty slots',
      rules: [{ sourceLabels: ['a', 'missing', 'c'], targetLabel: 't' }],
      input: { a: 'x', c: 'z' },
      want: { a: 'x', c: 'z', t: 'x;;z' },
    },
    {
      name: 'the regex is anchored: a partial match does not replace',
      rules: [{ sourceLabels: ['v'], regex: 'b', targetLabel: 't', replacement: 'hit' }],
      input: { v: 'abc', t: 'keep' },
      want: { v: 'abc', t: 'keep' },
    },
    {
      name: 'a regex that does not match leaves the target unchanged',
      rules: [{ sourceLabels: ['v'], regex: 'x(.*)', targetLabel: 't' }],
      input: { v: 'abc', t: 'old' },
      want: { v: 'abc', t: 'old' },
    },
    {
      name: 'groups expand as $1, ${1} and $name',
      rules: [
        {
          sourceLabels: ['host'],
          regex: '(?P<svc>[a-z]+)-([0-9]+)',
          targetLabel: 't',
          replacement: '$svc:${2}x:$1',
        },
      ],
      input: { host: 'web-12' },
      want: { host: 'web-12', t: 'web:12x:web' },
    },
    {
      name: '$1x is the (missing) group "1x", as in Go',
      rules: [{ sourceLabels: ['v'], regex: '(a)', targetLabel: 't', replacement: '$1x-' }],
      input: { v: 'a' },
      want: { v: 'a', t: '-' },
    },
    {
      name: 'a replacement expanding to "" removes the target',
      rules: [{ sourceLabels: ['v'], regex: '(a)(b?)', targetLabel: 't', replacement: '$2' }],
      input: { v: 'a', t: 'old' },
      want: { v: 'a' },
    },
    {
      name: 'a constant replacement sets the target',
      rules: [{ sourceLabels: ['v'], regex: 'prod|production', targetLabel: 'env', replacement: 'prod' }],
      input: { v: 'production' },
      want: { v: 'production', env: 'prod' },
    },
    {
      name: 'a constant replacement also applies to a missing source with the default regex',
      rules: [{ targetLabel: 'mesh', replacement: 'on' }],
      input: {},
      want: { mesh: 'on' },
    },
    {
      name: 'the target label itself expands groups',
      rules: [{ sourceLabels: ['tag'], regex: '([a-z]+)=(.*)', targetLabel: 'tag_$1', replacement: '$2' }],
      input: { tag: 'team=payments' },
      want: { tag: 'team=payments', tag_team: 'payments' },
    },
    {
      name: 'a target that expands to "" changes nothing',
      rules: [{ sourceLabels: ['v'], regex: '(.*)', targetLabel: '$2', replacement: 'x' }],
      input: { v: 'a' },
      want: { v: 'a' },
    },
    {
      name: '. matches newlines, as in Prometheus',
      rules: [{ sourceLabels: ['v'], regex: 'a.b', targetLabel: 't', replacement: 'ok' }],
      input: { v: 'a\nb' },
      want: { v: 'a\nb', t: 'ok' },
    },
    {
      name: 'unicode values match code point by code point',
      rules: [{ sourceLabels: ['v'], regex: '(.)(.)', targetLabel: 't', replacement: '$2$1' }],
      input: { v: 'é😀' },
      want: { v: 'é😀', t: '😀é' },
    },
    {
      name: 'values up to the input bound pass through',
      rules: [{ sourceLabels: ['v'], targetLabel: 't' }],
      input: { v: 'x'.repeat(4096) },
      want: { v: 'x'.repeat(4096), t: 'x'.repeat(4096) },
    },
    {
      name: 'target labels may carry dots and slashes (Kubernetes label keys)',
      rules: [{ sourceLabels: ['z'], targetLabel: 'topology.kubernetes.io/zone' }],
      input: { z: 'eu-1a' },
      want: { z: 'eu-1a', 'topology.kubernetes.io/zone': 'eu-1a' },
    },
    {
      name: 'a leading (?i) makes the match case-insensitive',
      rules: [{ sourceLabels: ['v'], regex: '(?i)prod', targetLabel: 'env', replacement: 'prod' }],
      input: { v: 'PROD' },
      want: { v: 'PROD', env: 'prod' },
    },
    {
      name: 'rules run in order and see earlier results',
      rules: [
        { sourceLabels: ['a'], targetLabel: 'b' },
        { sourceLabels: ['b'], regex: '(.*)', targetLabel: 'c', replacement: '$1-$1' },
      ],
      input: { a: 'x' },
      want: { a: 'x', b: 'x', c: 'x-x' },
    },
  ]);
});

describe('keep and drop', () => {
  table([
    { name: 'keep keeps a match', rules: [{ action: 'keep', sourceLabels: ['m'], regex: 'true' }], input: { m: 'true' }, want: { m: 'true' } },
    { name: 'keep drops a non-match', rules: [{ action: 'keep', sourceLabels: ['m'], regex: 'true' }], input: { m: 'yes' }, want: null },
    { name: 'keep drops when the label is missing', rules: [{ action: 'keep', sourceLabels: ['m'], regex: '.+' }], input: {}, want: null },
    { name: 'keep with an empty-matching regex keeps a missing label', rules: [{ action: 'keep', sourceLabels: ['m'], regex: '|x' }], input: {}, want: {} },
    { name: 'drop drops a match', rules: [{ action: 'drop', sourceLabels: ['env'], regex: 'test|dev' }], input: { env: 'dev' }, want: null },
    { name: 'drop keeps a non-match', rules: [{ action: 'drop', sourceLabels: ['env'], regex: 'test|dev' }], input: { env: 'prod' }, want: { env: 'prod' } },
    { name: 'drop matches the anchored regex only', rules: [{ action: 'drop', sourceLabels: ['env'], regex: 'dev' }], input: { env: 'devel' }, want: { env: 'devel' } },
    {
      name: 'a drop stops later rules',
      rules: [{ action: 'drop', sourceLabels: ['a'], regex: 'x' }, { targetLabel: 'b', replacement: 'y' }],
      input: { a: 'x' },
      want: null,
    },
  ]);
});

describe('labelmap, labeldrop, labelkeep', () => {
  table([
    {
      name: 'labelmap copies matching names with the replacement as new name',
      rules: [{ action: 'labelmap', regex: '__meta_ec2_tag_(.+)' }],
      input: { __meta_ec2_tag_team: 'pay', __meta_ec2_tag_env: 'prod', other: 'x' },
      want: { __meta_ec2_tag_team: 'pay', __meta_ec2_tag_env: 'prod', other: 'x', team: 'pay', env: 'prod' },
    },
    {
      name: 'labelmap: on a name clash the last in sorted order wins',
      rules: [{ action: 'labelmap', regex: '__(a|b)_x', replacement: 'x' }],
      input: { __b_x: '2', __a_x: '1' },
      want: { __b_x: '2', __a_x: '1', x: '2' },
    },
    {
      name: 'labelmap works on a snapshot: new labels are not mapped again',
      rules: [{ action: 'labelmap', regex: '(a+)', replacement: '${1}a' }],
      input: { a: '1' },
      want: { a: '1', aa: '1' },
    },
    {
      name: 'labeldrop removes matching names',
      rules: [{ action: 'labeldrop', regex: '__meta_.*' }],
      input: { __meta_a: '1', __meta_b: '2', __address__: 'x' },
      want: { __address__: 'x' },
    },
    {
      name: 'labeldrop matches names anchored',
      rules: [{ action: 'labeldrop', regex: 'team' }],
      input: { team: '1', teams: '2' },
      want: { teams: '2' },
    },
    {
      name: 'labelkeep removes names that do not match',
      rules: [{ action: 'labelkeep', regex: '__.*|app' }],
      input: { __address__: 'x', app: 'web', junk: 'y' },
      want: { __address__: 'x', app: 'web' },
    },
  ]);
});

describe('lowercase and uppercase', () => {
  table([
    {
      name: 'lowercase writes the lower-cased joined value',
      rules: [{ action: 'lowercase', sourceLabels: ['a', 'b'], separator: '-', targetLabel: '__service__' }],
      input: { a: 'Web', b: 'FRONT' },
      want: { a: 'Web', b: 'FRONT', __service__: 'web-front' },
    },
    {
      name: 'uppercase writes the upper-cased value, unicode included',
      rules: [{ action: 'uppercase', sourceLabels: ['a'], targetLabel: 'A' }],
      input: { a: 'straße' },
      want: { a: 'straße', A: 'STRASSE' },
    },
    {
      name: 'lowercase of a missing label removes the target',
      rules: [{ action: 'lowercase', sourceLabels: ['missing'], targetLabel: 't' }],
      input: { t: 'x' },
      want: {},
    },
    {
      name: 'lowercase does not expand $ in the target',
      rules: [{ action: 'lowercase', sourceLabels: ['a'], targetLabel: '$1' }],
      input: { a: 'X' },
      want: { a: 'X', $1: 'x' },
    },
  ]);
});

describe('compileRules', () => {
  test('does not modify its input and can be reused', () => {
    const apply = compileRules([{ sourceLabels: ['a'], targetLabel: 'b' }, { action: 'labeldrop', regex: 'a' }]);
    const input = Object.freeze({ a: '1' });
    assert.deepEqual(apply(input), { b: '1' });
    assert.deepEqual(apply({ a: '2' }), { b: '2' });
    assert.deepEqual(input, { a: '1' });
  });

  test('an empty rule set is the identity', () => {
    assert.deepEqual(compileRules([])({ a: '1', __b__: '' }), { a: '1', __b__: '' });
  });

  test('a label named __proto__ is an ordinary label', () => {
    const input: Record<string, string> = JSON.parse('{"__proto__": "x"}') as Record<string, string>;
    const out = relabel(input, [{ sourceLabels: ['__proto__'], targetLabel: 'constructor' }]);
    assert.ok(out);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.deepEqual(Object.entries(out), [
      ['__proto__', 'x'],
      ['constructor', 'x'],
    ]);
  });

  const invalid: [string, RelabelRuleInput, RegExp][] = [
    ['an invalid regex', { sourceLabels: ['a'], targetLabel: 'b', regex: '(' }, /invalid regex "\("/],
    ['a backreference', { sourceLabels: ['a'], targetLabel: 'b', regex: '(a)\\1' }, /invalid escape sequence: `\\1`/],
    ['a named backreference', { sourceLabels: ['a'], targetLabel: 'b', regex: '(?P<x>a)\\k<x>' }, /invalid escape sequence: `\\k`/],
    ['lookahead', { sourceLabels: ['a'], targetLabel: 'b', regex: '(?=a)a' }, /unsupported Perl syntax: `\(\?=`/],
    ['negative lookahead', { sourceLabels: ['a'], targetLabel: 'b', regex: 'a(?!b)' }, /unsupported Perl syntax: `\(\?!`/],
    ['lookbehind', { sourceLabels: ['a'], targetLabel: 'b', regex: '(?<=a)b' }, /invalid named capture/],
    ['negative lookbehind', { sourceLabels: ['a'], targetLabel: 'b', regex: '(?<!a)b' }, /invalid named capture/],
    ['a possessive quantifier', { sourceLabels: ['a'], targetLabel: 'b', regex: 'a*+' }, /invalid nested repetition operator/],
    ['an atomic group', { sourceLabels: ['a'], targetLabel: 'b', regex: '(?>a)' }, /unsupported Perl syntax/],
    ['\\Z (Perl only)', { sourceLabels: ['a'], targetLabel: 'b', regex: 'a\\Z' }, /invalid escape sequence: `\\Z`/],
    ['an unknown POSIX class', { sourceLabels: ['a'], targetLabel: 'b', regex: '[[:nope:]]' }, /invalid character class range/],
    ['a repeat count over 1000', { sourceLabels: ['a'], targetLabel: 'b', regex: 'a{1001}' }, /invalid repeat count/],
    ['a pattern that would escape the anchors', { sourceLabels: ['a'], targetLabel: 'b', regex: 'a)|(b' }, /unexpected \)/],
    ['a regex over the program size bound', { sourceLabels: ['a'], targetLabel: 'b', regex: '[a-z]{600}' }, /regex too large: it compiles to \d+ instructions, at most 500/],
    ['replace without targetLabel', { sourceLabels: ['a'] }, /targetLabel is required for the replace action/],
    ['lowercase without targetLabel', { action: 'lowercase', sourceLabels: ['a'] }, /targetLabel is required/],
    ['keep without sourceLabels', { action: 'keep', regex: 'a' }, /sourceLabels is required for the keep action/],
    ['uppercase without sourceLabels', { action: 'uppercase', targetLabel: 'a' }, /sourceLabels is required/],
    ['an unknown action', { action: 'hashmod' as 'keep', sourceLabels: ['a'] }, /unknown action "hashmod"/],
  ];
  for (const [what, rule, message] of invalid) {
    test(`${what} is a RelabelError naming the rule`, () => {
      const ok: RelabelRuleInput = { sourceLabels: ['x'], targetLabel: 'y' };
      assert.throws(
        () => compileRules([ok, ok, rule], { field: 'spec.workloadEntry.relabelings' }),
        (e: unknown) => {
          assert.ok(e instanceof RelabelError);
          assert.equal(e.ruleIndex, 2);
          assert.equal(e.field, 'spec.workloadEntry.relabelings');
          assert.match(e.message, /^spec\.workloadEntry\.relabelings\[2\]: /);
          assert.match(e.message, message);
          return true;
        },
      );
    });
  }
});

describe('templates (Go regexp.Expand)', () => {
  const match = (re: string, s: string): Match => {
    const m = compileAnchored(re).match(s);
    assert.ok(m, `${re} should match ${s}`);
    return m;
  };
  const cases: [string, string, string, string][] = [
    // template, regex, value, expansion
    ['$1', '(a)(b)', 'ab', 'a'],
    ['${2}', '(a)(b)', 'ab', 'b'],
    ['$0', '(a)(b)', 'ab', 'ab'],
    ['$$1', '(a)', 'a', '$1'],
    ['$', '(a)', 'a', '$'],
    ['a$-b', '(a)', 'a', 'a$-b'],
    ['${1', '(a)', 'a', '${1'],
    ['${}', '(a)', 'a', '${}'],
    ['$9', '(a)', 'a', ''],
    ['$01', '(a)', 'a', ''],
    ['$name!', '(?P<name>a)', 'a', 'a!'],
    ['${name}s', '(?<name>a)', 'a', 'as'],
    ['$missing', '(a)', 'a', ''],
    ['$1_x', '(a)', 'a', ''],
    ['${1}_x', '(a)', 'a', 'a_x'],
    ['$2', '(a)|(b)', 'a', ''],
    ['$é', '(a)', 'a', ''],
  ];
  for (const [template, re, value, want] of cases) {
    test(`${JSON.stringify(template)} with ${re} on ${JSON.stringify(value)} → ${JSON.stringify(want)}`, () => {
      assert.equal(expandTemplate(parseTemplate(template), match(re, value)), want);
    });
  }

  test('a template without references is constant', () => {
    assert.equal(parseTemplate('plain text').constant, 'plain text');
    assert.equal(parseTemplate('a$$b').constant, 'a$b');
    assert.equal(parseTemplate('$1').constant, null);
  });
});

describe('RE2 spellings', () => {
  const cases: [string, string, boolean][] = [
    // regex, value, matches
    ['a\\-b', 'a-b', true],
    ['[a\\-z]+', '-', true],
    ['[a\\-z]+', 'b', false],
    ['\\_x', '_x', true],
    ['[[:alpha:]]+[[:digit:]]', 'abc1', true],
    ['[[:upper:]_]+', 'A_B', true],
    ['[[:upper:]_]+', 'ab', false],
    ['[]a]+', ']a]', true],
    ['[^]a]+', 'bc', true],
    ['(?i)ABC', 'abc', true],
    ['(?s).+', 'a\nb', true],
    ['a|b', 'b', true],
    ['\\d+\\.\\d+', '1.5', true],
    ['\\d+\\.\\d+', '1x5', false],
    ['.*\\[x\\]', 'ab[x]', true],
  ];
  for (const [re, value, want] of cases) {
    test(`${re} ${want ? 'matches' : 'does not match'} ${JSON.stringify(value)}`, () => {
      assert.equal(compileAnchored(re).test(value), want);
    });
  }

  test('a pattern RE2 rejects is an error with RE2\'s message', () => {
    assert.throws(() => compileAnchored('(?=x)'), /invalid or unsupported Perl syntax/);
    assert.throws(() => compileAnchored('(?<é>a)'), /invalid named capture/, 'group names are ASCII word characters, as in Go');
  });
});

describe('RE2 only syntax and semantics', () => {
  const cases: [string, string, boolean][] = [
    // regex, value, matches
    ['(?P<svc>[a-z]+)', 'web', true],
    ['\\pL+', 'Grüße', true],
    ['\\p{Greek}+', 'αβγ', true],
    ['\\PL', '1', true],
    ['\\Q.*+\\E', '.*+', true],
    ['\\Q.*+\\E', 'aaa', false],
    ['(?U)(a+)', 'aaa', true],
    ['(?i:A)b', 'ab', true],
    ['(?i:A)b', 'aB', false],
    ['a\\z', 'a', true],
    ['\\Aa', 'a', true],
    ['[[:^digit:]]+', 'abc', true],
    ['[[:^digit:]]+', 'a1', false],
    ['[\\d\\-]+', '1-2', true],
    ['x{2,3}', 'xxxx', false],
    ['.', '😀', true],
    ['..', '😀', false],
    ['(?-s:.)', '\n', false],
    ['.', '\n', true],
  ];
  for (const [re, value, want] of cases) {
    test(`${re} ${want ? 'matches' : 'does not match'} ${JSON.stringify(value)}`, () => {
      assert.equal(compileAnchored(re).test(value), want);
    });
  }

  test('groups follow leftmost-first (Perl) semantics, as Go\'s regexp', () => {
    const out = relabel({ v: 'abcd' }, [{ sourceLabels: ['v'], regex: '(a|ab)(c|bcd)(d*)', targetLabel: 't', replacement: '$1/$2/$3' }]);
    assert.equal(out?.['t'], 'a/bcd/');
  });

  test('the default (.*) needs no matching and behaves as the regex would', () => {
    const out = relabel({ v: 'a\nb' }, [{ sourceLabels: ['v'], targetLabel: 't', replacement: '<$0|$1|${2}|$x>' }]);
    assert.equal(out?.['t'], '<a\nb|a\nb||>');
    assert.equal(compileAnchored('(.*)').test(''), true);
  });

  test('the anchors hold around an alternation', () => {
    assert.equal(compileAnchored('a|b').test('ab'), false);
    assert.equal(compileAnchored('a|b').test('b'), true);
  });
});

describe('linear time and bounded input', () => {
  const long = 'a'.repeat(20_000);
  const nested: RelabelRuleInput = { action: 'keep', sourceLabels: ['v'], regex: '(a+)+b' };

  test('a nested quantifier over 20,000 characters does not match, and returns', () => {
    assert.equal(compileAnchored('(a+)+b').test(long), false);
    assert.equal(compileAnchored('(a+)+b').match(long), null);
    assert.equal(compileAnchored('(.*a){20}').test(long), true);
  });

  test('the ReDoS rule of the bug report drops the endpoint instead of freezing', () => {
    const limit = compileAnchored('.*,(a+)+b,.*').maxInputLength;
    const tags = `,web,${'a'.repeat(limit - 6)},`;
    assert.equal(tags.length, limit);
    assert.equal(relabel({ v: tags }, [{ action: 'keep', sourceLabels: ['v'], regex: '.*,(a+)+b,.*' }]), null);
    assert.deepEqual(relabel({ v: tags }, [{ action: 'drop', sourceLabels: ['v'], regex: '.*,(a+)+b,.*' }]), { v: tags });
  });

  test('groups are found in a value at the bound', () => {
    const limit = compileAnchored('((a+)+)b').maxInputLength;
    const value = `${'a'.repeat(limit - 1)}b`;
    const out = relabel({ v: value }, [{ sourceLabels: ['v'], regex: '((a+)+)b', targetLabel: 't', replacement: '${1}' }]);
    assert.equal(out?.['t']?.length, limit - 1);
  });

  test('the input bound shrinks as the regex grows, down to a floor', () => {
    assert.equal(compileAnchored('(.*)').maxInputLength, MAX_RELABEL_INPUT_LENGTH);
    assert.equal(compileAnchored('(.+)').maxInputLength, MAX_RELABEL_INPUT_LENGTH / 2);
    const big = compileAnchored('[a-z]{480}').maxInputLength;
    assert.ok(big >= 32 && big < 40, `a 480-repeat reads ${big} characters`);
  });

  test('a value over the bound is an input error naming the rule, not a silent non-match', () => {
    assert.throws(
      () => compileRules([nested], { field: 'spec.workloadEntry.relabelings' })({ v: `${long}b` }),
      (e: unknown) => {
        assert.ok(e instanceof RelabelInputTooLongError);
        assert.equal(e.length, 20_001);
        assert.equal(e.limit, compileAnchored('(a+)+b').maxInputLength);
        assert.match(e.message, /^spec\.workloadEntry\.relabelings\[0\] reads the value of v of 20001 characters; this rule reads at most \d+$/);
        return true;
      },
    );
  });

  test('joined values are bounded as a whole', () => {
    const half = 'x'.repeat(MAX_RELABEL_INPUT_LENGTH / 2);
    assert.throws(() => relabel({ a: half, b: half }, [{ sourceLabels: ['a', 'b'], targetLabel: 't' }]), RelabelInputTooLongError);
    assert.ok(relabel({ a: half, b: half.slice(1) }, [{ sourceLabels: ['a', 'b'], targetLabel: 't' }]));
  });

  test('labelmap, labeldrop and labelkeep bound the label names they read', () => {
    for (const action of ['labelmap', 'labeldrop', 'labelkeep'] as const) {
      assert.throws(() => relabel({ [`x${long}`]: 'v' }, [{ action, regex: '(a+)+b' }]), RelabelInputTooLongError, action);
    }
  });

  test('a label the rule does not read may be long', () => {
    assert.deepEqual(relabel({ big: long, v: 'b' }, [{ action: 'keep', sourceLabels: ['v'], regex: '(a+)+b|b' }]), { big: long, v: 'b' });
  });
});

test('a regex asked again about a value it has seen answers the same', () => {
  const re = compileAnchored('svc-(\\d+)');
  for (let round = 0; round < 3; round++) {
    assert.equal(re.test('svc-12'), true);
    assert.equal(re.test('web'), false);
    assert.equal(re.match('svc-12')?.group(1), '12');
    assert.equal(re.match('web'), null);
  }
  const long = `svc-${'1'.repeat(300)}`;
  assert.equal(re.match(long)?.group(1), '1'.repeat(300));
});
