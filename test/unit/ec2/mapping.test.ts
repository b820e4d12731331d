import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { applyDefaults } from '../../../src/api/defaults.ts';
import { ec2DefaultMapping } from '../../../src/providers/ec2/mapping.ts';

const spec = (ec2: Record<string, unknown> = {}) => applyDefaults({ ec2: { region: 'eu-west-1', ...ec2 } }).ec2!;
const anchored = (re: string) => new RegExp(`^(?:${re})$`);

describe('ec2DefaultMapping', () => {
  test('service from the service tag, locality region/zone, network from the VPC when unset', () => {
    const rules = ec2DefaultMapping(spec({ serviceTagKey: 'app' }));
    const svc = rules.find((r) => r.targetLabel === '__service__');
    assert.deepEqual(svc?.sourceLabels, ['__meta_ec2_tag_app']);
    const loc = rules.find((r) => r.targetLabel === '__locality__');
    assert.equal(loc?.separator, '/');
    assert.match('eu-west-1/eu-west-1a', anchored(loc?.regex ?? ''));
    assert.doesNotMatch('eu-west-1/', anchored(loc?.regex ?? ''), 'no zone: locality left unset');
    const net = rules.find((r) => r.targetLabel === '__network__');
    assert.deepEqual(net?.sourceLabels, ['__network__', '__meta_ec2_vpc_id']);
    assert.match(';vpc-1', anchored(net?.regex ?? ''));
    assert.doesNotMatch('net-eu;vpc-1', anchored(net?.regex ?? ''), 'a network already set is kept');
  });

  test('copies tags to labels, then drops aws:*, Name and the tags the spec consumes', () => {
    const rules = ec2DefaultMapping(spec({ portsTagKey: 'mesh.ports', networkTagKey: 'net', serviceAccountTagKey: 'sa' }));
    const map = rules.find((r) => r.action === 'labelmap');
    assert.equal('__meta_ec2_tag_team'.replace(anchored(map?.regex ?? ''), map?.replacement.replace('$1', '$1') ?? ''), 'team');
    const drop = rules.at(-1);
    assert.equal(drop?.action, 'labeldrop');
    const re = anchored(drop?.regex ?? '');
    for (const k of ['aws:autoscaling:groupName', 'Name', 'service', 'mesh.ports', 'net', 'sa']) assert.match(k, re, k);
    for (const k of ['team', 'meshXports', 'name', 'app.kubernetes.io/name', '__meta_ec2_tag_Name']) assert.doesNotMatch(k, re, k);
  });
});
