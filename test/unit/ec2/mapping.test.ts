import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ec2DefaultMapping } from '../../../src/providers/ec2/mapping.ts';
import { compileRules, compileAnchored } from '../../../src/mapping/relabel.ts';
import { BUILTIN_API } from '../../../src/providers/builtin.ts';

const { applyDefaults } = BUILTIN_API;

const spec = (ec2: Record<string, unknown> = {}) => applyDefaults({ ec2: { region: 'eu-west-1', ...ec2 } }).ec2!;
// The engine's own compiler: the provider's regexes must mean the same in RE2.
const matches = (value: string, re: string | undefined): boolean => compileAnchored(re ?? '').test(value);

describe('ec2DefaultMapping', () => {
  test('service from the service tag, locality region/zone, network from the VPC when unset', () => {
    const rules = ec2DefaultMapping(spec({ serviceTagKey: 'app' }));
    const svc = rules.find((r) => r.targetLabel === '__service__');
    assert.deepEqual(svc?.sourceLabels, ['__meta_ec2_tag_app']);
    const loc = rules.find((r) => r.targetLabel === '__locality__');
    assert.equal(loc?.separator, '/');
    assert.ok(matches('eu-west-1/eu-west-1a', loc?.regex));
    assert.ok(!matches('eu-west-1/', loc?.regex), 'no zone: locality left unset');
    const net = rules.find((r) => r.targetLabel === '__network__');
    assert.deepEqual(net?.sourceLabels, ['__network__', '__meta_ec2_vpc_id']);
    assert.ok(matches(';vpc-1', net?.regex));
    assert.ok(!matches('net-eu;vpc-1', net?.regex), 'a network already set is kept');
  });

  test('copies tags to labels, then drops aws:*, Name and the tags the spec consumes', () => {
    const rules = ec2DefaultMapping(spec({ portsTagKey: 'mesh.ports', networkTagKey: 'net', serviceAccountTagKey: 'sa' }));
    const map = rules.find((r) => r.action === 'labelmap');
    assert.ok(map);
    assert.deepEqual(compileRules([map])({ __meta_ec2_tag_team: 'x' }), { __meta_ec2_tag_team: 'x', team: 'x' });
    const drop = rules.at(-1);
    assert.equal(drop?.action, 'labeldrop');
    for (const k of ['aws:autoscaling:groupName', 'Name', 'service', 'mesh.ports', 'net', 'sa']) assert.ok(matches(k, drop?.regex), k);
    for (const k of ['team', 'meshXports', 'name', 'app.kubernetes.io/name', '__meta_ec2_tag_Name']) assert.ok(!matches(k, drop?.regex), k);
  });
});
