import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isSpuriousReturn, nextIndex, parseIndexHeader } from '../../../src/providers/consul/index-rules.ts';

describe('blocking-query index rules', () => {
  test('moves forward with the returned index', () => {
    assert.equal(nextIndex(0, 17), 17);
    assert.equal(nextIndex(17, 17), 17);
    assert.equal(nextIndex(17, 42), 42);
  });
  test('resets to 0 when the index goes backwards (server state reset)', () => {
    assert.equal(nextIndex(42, 7), 0);
    assert.equal(nextIndex(42, 0), 1, 'an index <= 0 is never sent back, even after a reset');
  });
  test('never sends an index <= 0 back after a first answer', () => {
    assert.equal(nextIndex(0, 0), 1);
    assert.equal(nextIndex(0, -3), 1);
  });
  test('unparsable indexes start over', () => {
    assert.equal(nextIndex(5, Number.NaN), 0);
    assert.equal(parseIndexHeader(undefined), 0);
    assert.equal(parseIndexHeader('abc'), 0);
    assert.equal(parseIndexHeader('-4'), 0);
    assert.equal(parseIndexHeader(' 123 '), 123);
    assert.equal(parseIndexHeader(['9', '10']), 9);
    assert.equal(parseIndexHeader('99999999999999999999999'), 0);
  });
  test('a quick return with an unchanged index is spurious; a timeout or a new index is not', () => {
    assert.equal(isSpuriousReturn(10, 10, 5, 100), true);
    assert.equal(isSpuriousReturn(10, 10, 60_000, 100), false);
    assert.equal(isSpuriousReturn(10, 11, 5, 100), false);
    assert.equal(isSpuriousReturn(0, 10, 5, 100), false, 'index 0 never blocks');
  });
});
