/** applyDefaults: the defaults the apiserver fills in, nested ones included. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultValue } from '../../../src/api/defaults.ts';
import type { VmRegistrySourceSpecInput } from '../../../src/api/types.ts';
import { BUILTIN_API } from '../../../src/providers/builtin.ts';

const { applyDefaults } = BUILTIN_API;

describe('applyDefaults', () => {
  test('a minimal consul spec gets every top-level and nested default', () => {
    assert.deepEqual(applyDefaults({ consul: { address: 'http://127.0.0.1:8500' } }), {
      consul: {
        address: 'http://127.0.0.1:8500',
        health: { mode: 'exclude', includeWarning: false },
        timeout: '10s',
        tagSeparator: '|',
      },
      workloadEntry: { serviceLabel: 'app' },
      interval: '30s',
      policy: 'sync',
      suspend: false,
      adopt: false,
      deletionGuard: { enabled: true, maxDeletePercent: 50 },
    });
  });

  test('a minimal ec2 spec', () => {
    const spec = applyDefaults({ ec2: { region: 'eu-west-1' } });
    assert.deepEqual(spec.ec2, { region: 'eu-west-1', addressType: 'private-ipv4', serviceTagKey: 'service', retryMode: 'standard', maxAttempts: 3 });
  });

  test('a minimal gce spec', () => {
    const spec = applyDefaults({ gce: { project: 'my-project-1' } });
    assert.deepEqual(spec.gce, { project: 'my-project-1', addressType: 'internal', networkInterface: 'nic0', serviceLabelKey: 'service' });
  });

  test('optional objects, when present, get their own defaults', () => {
    const spec = applyDefaults({
      consul: { address: 'https://c:8501', tokenSecretRef: { name: 'tok' }, tls: { caSecretRef: { name: 'ca' } } },
    });
    assert.deepEqual(spec.consul?.tokenSecretRef, { name: 'tok', key: 'token' });
    assert.deepEqual(spec.consul?.tls, { caSecretRef: { name: 'ca', key: 'ca.crt' }, insecureSkipVerify: false });
    const ec2 = applyDefaults({ ec2: { region: 'eu-west-1', credentialsSecretRef: { name: 'aws' }, assumeRole: { roleArn: 'arn:aws:iam::123456789012:role/r' } } }).ec2;
    assert.deepEqual(ec2?.credentialsSecretRef, { name: 'aws', accessKeyIdKey: 'AWS_ACCESS_KEY_ID', secretAccessKeyKey: 'AWS_SECRET_ACCESS_KEY' });
    assert.deepEqual(ec2?.assumeRole, { roleArn: 'arn:aws:iam::123456789012:role/r', sessionName: 'vm-registry-operator' });
    assert.deepEqual(applyDefaults({ gce: { project: 'my-project-1', credentialsSecretRef: { name: 'k' } } }).gce?.credentialsSecretRef, { name: 'k', key: 'key.json' });
  });

  test('optional objects left out stay out', () => {
    const spec = applyDefaults({ consul: { address: 'http://c:8500' } });
    assert.equal(spec.consul?.tls, undefined);
    assert.equal(spec.consul?.tokenSecretRef, undefined);
    assert.equal(spec.ec2, undefined);
    assert.equal(spec.workloadEntry.relabelings, undefined);
    assert.equal(spec.workloadEntry.ports, undefined);
  });

  test('every relabel rule in the list is defaulted', () => {
    const spec = applyDefaults({
      consul: { address: 'http://c:8500' },
      workloadEntry: { relabelings: [{ targetLabel: 'a' }, { action: 'labelmap', regex: '__meta_(.+)' }] },
    });
    assert.deepEqual(spec.workloadEntry.relabelings, [
      { action: 'replace', separator: ';', regex: '(.*)', targetLabel: 'a', replacement: '$1' },
      { action: 'labelmap', separator: ';', regex: '__meta_(.+)', replacement: '$1' },
    ]);
  });

  test('values given are kept, falsy ones included', () => {
    const input: VmRegistrySourceSpecInput = {
      gce: { project: 'my-project-1', addressType: 'external' },
      workloadEntry: { serviceLabel: 'service' },
      interval: '5m',
      policy: 'upsert-only',
      suspend: true,
      deletionGuard: { enabled: false, maxDeletePercent: 0 },
      consul: { address: 'http://c:8500', health: { includeWarning: true }, tagSeparator: ':' },
    };
    const spec = applyDefaults(input);
    assert.equal(spec.gce?.addressType, 'external');
    assert.equal(spec.workloadEntry.serviceLabel, 'service');
    assert.equal(spec.interval, '5m');
    assert.equal(spec.policy, 'upsert-only');
    assert.equal(spec.suspend, true);
    assert.deepEqual(spec.deletionGuard, { enabled: false, maxDeletePercent: 0 });
    assert.deepEqual(spec.consul?.health, { mode: 'exclude', includeWarning: true });
    assert.equal(spec.consul?.tagSeparator, ':');
  });

  test('a partly written nested default object is completed', () => {
    assert.deepEqual(applyDefaults({ consul: { address: 'http://c:8500' }, deletionGuard: { maxDeletePercent: 20 } }).deletionGuard, {
      enabled: true,
      maxDeletePercent: 20,
    });
  });

  test('the input is not modified and results do not share default objects', () => {
    const input: VmRegistrySourceSpecInput = { consul: { address: 'http://c:8500' }, workloadEntry: { relabelings: [{ targetLabel: 'x' }] } };
    const before = structuredClone(input);
    const a = applyDefaults(input);
    assert.deepEqual(input, before);
    a.deletionGuard.maxDeletePercent = 1;
    if (a.consul) a.consul.health.mode = 'status';
    const b = applyDefaults(input);
    assert.equal(b.deletionGuard.maxDeletePercent, 50);
    assert.equal(b.consul?.health.mode, 'exclude');
  });

  test('applying defaults twice changes nothing', () => {
    const once = applyDefaults({ ec2: { region: 'eu-west-1', credentialsSecretRef: { name: 'aws' } }, workloadEntry: { relabelings: [{ targetLabel: 't' }] } });
    assert.deepEqual(applyDefaults(structuredClone(once)), once);
  });

  test('values of the wrong type are left for validation to report', () => {
    assert.equal(defaultValue({ type: 'object', properties: { a: { type: 'string', default: 'x' } } }, 'not an object'), 'not an object');
    assert.equal(defaultValue({ type: 'string', default: 'x' }, null), null);
    assert.deepEqual(defaultValue({ type: 'array', items: { type: 'object', properties: { a: { type: 'string', default: 'x' } } } }, [{}, 3]), [{ a: 'x' }, 3]);
  });
});
