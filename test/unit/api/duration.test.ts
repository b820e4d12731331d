/** parseDuration: the API's duration strings ("30s", "1m30s", "500ms") in milliseconds. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DurationError, parseDuration } from '../../../src/api/duration.ts';
import { commonSpecSchema } from '../../../src/api/schema.ts';
import { consulSpecSchema } from '../../../src/providers/consul/spec-schema.ts';

describe('parseDuration', () => {
  const good: Array<[string, number]> = [
    ['0s', 0],
    ['1ms', 1],
    ['500ms', 500],
    ['1s', 1_000],
    ['30s', 30_000],
    ['1m', 60_000],
    ['1m30s', 90_000],
    ['2h', 7_200_000],
    ['24h', 86_400_000],
    ['1h30m15s250ms', 5_415_250],
    ['90s', 90_000],
    ['1s1s', 2_000],
    ['007s', 7_000],
    ['1m1ms', 60_001],
  ];
  for (const [text, ms] of good) {
    test(`${text} = ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  }

  const bad = ['', '30', 's', '1.5s', '-1s', ' 30s', '30s ', '1d', '1us', '1ns', '1 s', '1S', '1H', 'm1', '1h-30m', 'PT30S'];
  for (const text of bad) {
    test(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(() => parseDuration(text), (e: unknown) => e instanceof DurationError && e.message.includes(`"${text}"`) && e.name === 'DurationError');
    });
  }

  test('accepts exactly what the schema pattern accepts', () => {
    const pattern = new RegExp(commonSpecSchema.properties.interval.pattern, 'u');
    const part = fc.tuple(fc.integer({ min: 0, max: 999 }), fc.constantFrom('ms', 's', 'm', 'h', 'd', 'us', '', 'x')).map(([n, u]) => `${n}${u}`);
    fc.assert(
      fc.property(fc.array(part, { maxLength: 4 }).map((ps) => ps.join('')), (text) => {
        let parsed = true;
        try {
          parseDuration(text);
        } catch (e) {
          assert.ok(e instanceof DurationError);
          parsed = false;
        }
        assert.equal(parsed, pattern.test(text), text);
      }),
      { numRuns: 500 },
    );
  });

  test('the value is the sum of its parts, whatever their order', () => {
    const unitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
    const part = fc.tuple(fc.integer({ min: 0, max: 10_000 }), fc.constantFrom('ms', 's', 'm', 'h') as fc.Arbitrary<keyof typeof unitMs>);
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 5 }), (parts) => {
        const text = parts.map(([n, u]) => `${n}${u}`).join('');
        const sum = parts.reduce((acc, [n, u]) => acc + n * unitMs[u], 0);
        assert.equal(parseDuration(text), sum);
        assert.equal(parseDuration([...parts].reverse().map(([n, u]) => `${n}${u}`).join('')), sum);
      }),
    );
  });

  test('every duration default in the schema parses', () => {
    assert.equal(parseDuration(commonSpecSchema.properties.interval.default), 30_000);
    assert.equal(parseDuration(consulSpecSchema.properties.timeout.default), 10_000);
  });
});
