import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hasAllTags, parseTagPairs, tagsLabel } from '../../../src/providers/consul/tags.ts';
import { aggregateHealth, isHealthy, isSelected } from '../../../src/providers/consul/health.ts';

describe('tags', () => {
  test('the Prometheus ",a,b," list', () => {
    assert.equal(tagsLabel(['a', 'b']), ',a,b,');
    assert.equal(tagsLabel([]), ',,');
  });
  test('key<sep>value tags become pairs; value keeps further separators; last duplicate wins', () => {
    const pairs = parseTagPairs(['version|v1', 'plain', '|novalue', 'empty|', 'path|a|b', 'version|v2'], '|');
    assert.deepEqual([...pairs], [
      ['version', 'v2'],
      ['empty', ''],
      ['path', 'a|b'],
    ]);
  });
  test('multi-character separators', () => {
    assert.deepEqual([...parseTagPairs(['zone::eu-1', 'zone:x'], '::')], [['zone', 'eu-1']]);
  });
  test('all required tags must be present', () => {
    assert.equal(hasAllTags(['a', 'b', 'c'], ['a', 'c']), true);
    assert.equal(hasAllTags(['a'], ['a', 'c']), false);
    assert.equal(hasAllTags(null, []), true);
    assert.equal(hasAllTags(undefined, ['a']), false);
  });
});

describe('health', () => {
  const c = (...s: string[]) => s.map((Status) => ({ Status }));
  test('aggregates like Consul: critical beats warning beats passing', () => {
    assert.equal(aggregateHealth(c()), 'passing');
    assert.equal(aggregateHealth(null), 'passing');
    assert.equal(aggregateHealth(c('passing', 'passing')), 'passing');
    assert.equal(aggregateHealth(c('passing', 'warning')), 'warning');
    assert.equal(aggregateHealth(c('warning', 'critical', 'passing')), 'critical');
    assert.equal(aggregateHealth(c('maintenance')), 'critical', 'unknown statuses are not healthy');
  });
  test('exclude mode keeps healthy instances only; status mode keeps all', () => {
    assert.equal(isSelected('passing', 'exclude', false), true);
    assert.equal(isSelected('warning', 'exclude', false), false);
    assert.equal(isSelected('warning', 'exclude', true), true);
    assert.equal(isSelected('critical', 'exclude', true), false);
    assert.equal(isSelected('critical', 'status', false), true);
    assert.equal(isHealthy('warning', true), true);
    assert.equal(isHealthy('warning', false), false);
  });
});
