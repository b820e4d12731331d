/** The local Compute server's filter language (test/harness/gce-server.ts). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FilterSyntaxError, matchesFilter, parseFilter } from '../../harness/gce-server.ts';

const vm = {
  id: '7000000000000000001',
  name: 'web-1',
  status: 'RUNNING',
  zone: 'http://127.0.0.1:1/compute/v1/projects/p/zones/europe-west1-b',
  labels: { env: 'prod', 'team-name': 'core' },
  tags: { items: ['web', 'mesh'] },
  networkInterfaces: [{ name: 'nic0', networkIP: '10.0.0.2' }, { name: 'nic1', networkIP: '10.9.0.2' }],
  scheduling: { automaticRestart: true },
  cpuPlatform: 'Intel Skylake',
};

function m(filter: string): boolean {
  return matchesFilter(parseFilter(filter), vm);
}

describe('filter parser', () => {
  test('comparisons with quoted and unquoted values', () => {
    assert.equal(m('name = web-1'), true);
    assert.equal(m('name = "web-1"'), true);
    assert.equal(m("name = 'web-2'"), false);
    assert.equal(m('name != web-2'), true);
    assert.equal(m('cpuPlatform = "Intel Skylake"'), true);
    assert.equal(m('scheduling.automaticRestart = true'), true);
    assert.equal(m('scheduling.automaticRestart = false'), false);
  });

  test('ordering operators compare uint64 ids exactly', () => {
    assert.equal(m('id > 7000000000000000000'), true);
    assert.equal(m('id < 7000000000000000001'), false, 'doubles would round both to the same value');
    assert.equal(m('id >= 7000000000000000001'), true);
    assert.equal(m('id <= 7000000000000000001'), true);
    assert.equal(m('name < x'), true, 'strings compare lexicographically');
  });

  test('has operator: presence with :*, membership in repeated fields', () => {
    assert.equal(m('labels.env:*'), true);
    assert.equal(m('labels.owner:*'), false);
    assert.equal(m('labels.team-name:*'), true, 'label keys may contain -');
    assert.equal(m('tags.items:web'), true);
    assert.equal(m('tags.items = mesh'), true, 'repeated fields match when any element does');
    assert.equal(m('tags.items:db'), false);
    assert.equal(m('networkInterfaces.networkIP = 10.9.0.2'), true);
  });

  test('URL fields also match their short name', () => {
    assert.equal(m('zone = europe-west1-b'), true);
    assert.equal(m('zone = europe-west1-c'), false);
  });

  test('AND (explicit and implicit), OR, parentheses with AIP-160 precedence', () => {
    assert.equal(m('labels.env = prod AND status = RUNNING'), true);
    assert.equal(m('(labels.env = prod) (status = TERMINATED)'), false);
    assert.equal(m('(status = TERMINATED) OR (status = RUNNING)'), true);
    // OR binds tighter than AND: (a OR b) AND c.
    assert.equal(m('(name = x) OR (name = web-1) AND (status = TERMINATED)'), false);
    assert.equal(m('name = x OR name = web-1 labels.env = prod'), true);
    const e = parseFilter('labels.b = 1 OR name = 2 status = 3');
    assert.equal(e?.kind, 'and');
    assert.equal(e.kind === 'and' ? e.parts[0]?.kind : undefined, 'or');
  });

  test('eq/ne regular expressions match the whole value', () => {
    assert.equal(m('name eq web-.*'), true);
    assert.equal(m('name eq web'), false);
    assert.equal(m('name ne "db-.*"'), true);
    assert.equal(m('(name eq web-.*) (status eq RUN.*)'), true);
  });

  test('empty filter matches everything', () => {
    assert.equal(parseFilter('   '), undefined);
    assert.equal(matchesFilter(undefined, vm), true);
  });

  test('refuses what Compute refuses (or the fake does not honour)', () => {
    for (const bad of [
      'nosuchfield = 1',
      'name =',
      'name = "open',
      '(name = a',
      'name = a)',
      'name eq a AND status = RUNNING',
      '(name eq a) OR (name eq b)',
      'NOT name = a',
      '-name = a',
      'name = *',
      '= a',
      'name ! a',
    ]) {
      assert.throws(() => parseFilter(bad), FilterSyntaxError, bad);
    }
  });
});
