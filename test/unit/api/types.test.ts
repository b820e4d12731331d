/**
 * The types inferred from schema.ts: a spec using every field compiles as written by a
 * user (defaults optional) and after defaulting (defaults present), wrong values do not
 * compile, and the runtime agrees (the typed constants validate).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  providerOf,
  type Condition,
  type Policy,
  type RelabelRule,
  type VmRegistrySourceSpec,
  type VmRegistrySourceSpecInput,
  type VmRegistrySourceStatus,
} from '../../../src/api/types.ts';
import type { ConsulSpec } from '../../../src/providers/consul/spec-schema.ts';
import { BUILTIN_API } from '../../../src/providers/builtin.ts';

const { applyDefaults, validateSpec } = BUILTIN_API;

/** true only when A and B are the same type (checked by the compiler). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const typeIs = <T extends true>(_proof: T): void => undefined;

/** A spec as a user writes it, with every field of every provider and of the template. */
const fullConsul = {
  consul: {
    address: 'https://consul.example.com:8501',
    datacenter: 'dc1',
    services: ['web', 'db'],
    tags: ['mesh'],
    nodeMeta: { rack: 'r1' },
    namespace: 'team-a',
    partition: 'part-a',
    health: { mode: 'status', includeWarning: true },
    tokenSecretRef: { name: 'consul-token', key: 'token' },
    tls: { caSecretRef: { name: 'consul-ca', key: 'ca.crt' }, serverName: 'consul.example.com', insecureSkipVerify: false },
    timeout: '5s',
    tagSeparator: '=',
  },
  workloadEntry: {
    serviceLabel: 'app',
    ports: [{ name: 'http', number: 8080 }, { name: 'grpc' }],
    labels: { team: 'pay', 'example.com/tier': 'front' },
    network: 'net-1',
    locality: 'eu/west/a',
    weight: 10,
    serviceAccount: 'web-sa',
    relabelings: [
      { action: 'replace', sourceLabels: ['__meta_consul_dc'], separator: ';', regex: '(.*)', targetLabel: 'dc', replacement: '$1' },
      { action: 'labelmap', regex: '__meta_consul_tag_(.+)' },
      { action: 'keep', sourceLabels: ['__meta_consul_service'], regex: 'web|db' },
    ],
  },
  interval: '1m',
  policy: 'sync',
  suspend: false,
  adopt: true,
  deletionGuard: { enabled: true, maxDeletePercent: 30 },
} satisfies VmRegistrySourceSpecInput;

const fullEc2: VmRegistrySourceSpecInput = {
  ec2: {
    region: 'eu-west-1',
    endpoint: 'http://127.0.0.1:5000',
    filters: [{ name: 'tag:mesh', values: ['true'] }],
    addressType: 'private-dns',
    serviceTagKey: 'service',
    portsTagKey: 'ports',
    networkTagKey: 'network',
    serviceAccountTagKey: 'sa',
    vpcNetworks: { 'vpc-1': 'net-1' },
    credentialsSecretRef: { name: 'aws', accessKeyIdKey: 'id', secretAccessKeyKey: 'secret', sessionTokenKey: 'session' },
    assumeRole: { roleArn: 'arn:aws:iam::123456789012:role/reader', externalId: 'ext', sessionName: 'vmreg' },
    retryMode: 'adaptive',
    maxAttempts: 5,
  },
};

const fullGce: VmRegistrySourceSpecInput = {
  gce: {
    project: 'my-project-1',
    zones: ['europe-west1-b'],
    filter: 'status = RUNNING',
    addressType: 'external',
    networkInterface: 'nic1',
    serviceLabelKey: 'service',
    portsMetadataKey: 'ports',
    credentialsSecretRef: { name: 'gce-key', key: 'key.json' },
    endpoint: 'http://127.0.0.1:8085',
  },
  policy: 'create-only',
};

/** The same consul spec after defaulting: every defaulted field is required by the type. */
const storedConsul: VmRegistrySourceSpec = {
  ...fullConsul,
  workloadEntry: { ...fullConsul.workloadEntry, relabelings: applyDefaults(fullConsul).workloadEntry.relabelings },
};

const status: VmRegistrySourceStatus = {
  observedGeneration: 2,
  provider: 'gce',
  conditions: [{ type: 'Ready', status: 'True', reason: 'Synced', message: 'ok', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 2 }],
  desiredEntries: 1,
  managedEntries: 1,
  conflicts: 0,
  skipped: 0,
  heldBackDeletes: 0,
  lastSyncTime: '2026-01-01T00:00:00Z',
};

// Types the compiler must infer exactly.
typeIs<Equal<Policy, 'sync' | 'upsert-only' | 'create-only'>>(true);
typeIs<Equal<VmRegistrySourceSpec['interval'], string>>(true);
typeIs<Equal<VmRegistrySourceSpecInput['interval'], string | undefined>>(true);
typeIs<Equal<ConsulSpec['health']['mode'], 'exclude' | 'status'>>(true);
typeIs<Equal<RelabelRule['action'], 'replace' | 'keep' | 'drop' | 'labelmap' | 'labeldrop' | 'labelkeep' | 'lowercase' | 'uppercase'>>(true);
typeIs<Equal<RelabelRule['targetLabel'], string | undefined>>(true);
typeIs<Equal<Condition['status'], 'True' | 'False' | 'Unknown'>>(true);
typeIs<Equal<NonNullable<VmRegistrySourceSpec['workloadEntry']['ports']>[number], { name: string; number?: number }>>(true);
typeIs<Equal<NonNullable<VmRegistrySourceSpec['workloadEntry']['labels']>, Record<string, string>>>(true);

// Values the schema forbids do not compile.
// @ts-expect-error policy is an enum
const badPolicy: VmRegistrySourceSpecInput = { consul: { address: 'http://c:8500' }, policy: 'mirror' };
// @ts-expect-error consul.address is required
const noAddress: VmRegistrySourceSpecInput = { consul: {} };
// @ts-expect-error weight is a number
const stringWeight: VmRegistrySourceSpecInput = { consul: { address: 'http://c:8500' }, workloadEntry: { weight: '1' } };
// @ts-expect-error undeclared fields are not part of the type
const extraField: VmRegistrySourceSpecInput = { consul: { address: 'http://c:8500' }, mode: 'fast' };
// @ts-expect-error after defaulting, interval is required
const notDefaulted: VmRegistrySourceSpec = { consul: { address: 'http://c:8500' } };

describe('types inferred from the schema', () => {
  test('the typed full specs are valid at run time, and validate to their defaulted types', () => {
    for (const spec of [fullConsul, fullEc2, fullGce]) {
      const stored: VmRegistrySourceSpec = validateSpec(spec);
      assert.deepEqual(stored, applyDefaults(spec));
    }
    assert.deepEqual(validateSpec(fullConsul), storedConsul);
    assert.deepEqual([fullConsul, fullEc2, fullGce].map(providerOf), ['consul', 'ec2', 'gce']);
  });

  test('the values the compiler rejects are rejected at run time too', () => {
    for (const spec of [badPolicy, noAddress, stringWeight, extraField]) assert.throws(() => validateSpec(spec), JSON.stringify(spec));
    assert.equal(notDefaulted.interval, undefined);
  });

  test('a status with every field has the shape the schema describes', () => {
    assert.equal(status.conditions?.[0]?.type, 'Ready');
    assert.equal(status.provider, 'gce');
  });
});
