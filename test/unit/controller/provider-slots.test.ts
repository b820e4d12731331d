/**
 * ProviderSlots, where Secrets are resolved: a provider is created only after the consent
 * check, a consent change rebuilds it, a withdrawn consent closes it, and the operator's
 * own identity follows the admin's policy. The Secrets are served from memory; the
 * provider records what it was created with.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { VmRegistrySource, VmRegistrySourceSpec } from '../../../src/api/types.ts';
import { ALLOWED_ENDPOINTS_ANNOTATION, ConsentError, ambientPolicyOf, type AmbientPolicy } from '../../../src/controller/consent.ts';
import type { SecretContent } from '../../../src/runtime/kube-client.ts';
import { ProviderSlots } from '../../../src/controller/provider-slots.ts';
import { silentLogger } from '../../../src/metrics/logger.ts';
import { ProviderMetrics } from '../../../src/metrics/provider-metrics.ts';
import { originOf } from '../../../src/providers/credential-use.ts';
import type { ProviderContext, ProviderFactory } from '../../../src/providers/provider.ts';
import { factoriesOf } from '../../../src/providers/registry.ts';
import { consulDescriptor } from '../../../src/providers/consul/descriptor.ts';
import { BUILTIN_API } from '../../../src/providers/builtin.ts';

const { validateSpec } = BUILTIN_API;

/** A consul-named factory that records creations and closings, and never talks to anything. */
function recordingFactory(log: { created: ProviderContext[]; closed: number }, ambient = false): ProviderFactory {
  return {
    descriptor: consulDescriptor,
    secretRefs: (spec) => {
      const refs = [];
      if (spec.consul?.tokenSecretRef) refs.push({ name: spec.consul.tokenSecretRef.name, key: spec.consul.tokenSecretRef.key });
      if (spec.consul?.tls?.caSecretRef) refs.push({ name: spec.consul.tls.caSecretRef.name, key: spec.consul.tls.caSecretRef.key, use: 'trust' as const });
      return refs;
    },
    credentialUse: (spec) => ({
      destinations: [{ entry: originOf(spec.consul?.address ?? '') ?? '', field: 'spec.consul.address', override: true }],
      ambient: ambient && spec.consul?.tokenSecretRef === undefined,
    }),
    create: (ctx) => {
      log.created.push(ctx);
      return { name: 'consul', snapshot: async () => ({ endpoints: [], unknownScopes: [], warnings: [] }), close: async () => void log.closed++ };
    },
    defaultMapping: () => [],
  };
}

class MemorySecrets {
  readonly secrets = new Map<string, { annotations: Record<string, string>; data: Record<string, string> }>();
  reads = 0;
  async getSecret(namespace: string, name: string): Promise<SecretContent> {
    this.reads++;
    const s = this.secrets.get(`${namespace}/${name}`);
    if (!s) throw new Error(`get secret ${namespace}/${name}: 404 NotFound`);
    return { annotations: { ...s.annotations }, data: new Map(Object.entries(s.data)) };
  }
}

function sourceOf(consul: Record<string, unknown>, namespace = 'team-a'): VmRegistrySource {
  const spec: VmRegistrySourceSpec = validateSpec({ consul });
  return { apiVersion: 'vmregistry.io/v1alpha1', kind: 'VmRegistrySource', metadata: { name: 's', namespace, uid: 'u1', generation: 1 }, spec };
}

function slotsWith(secrets: MemorySecrets, log: { created: ProviderContext[]; closed: number }, ambient?: AmbientPolicy, ambientFactory = false): ProviderSlots {
  return new ProviderSlots({
    factories: factoriesOf([recordingFactory(log, ambientFactory)]),
    client: secrets,
    metrics: new ProviderMetrics(new Registry()),
    log: silentLogger,
    onChange: () => {},
    ...(ambient ? { ambient } : {}),
  });
}

const signal = () => AbortSignal.timeout(5000);

describe('ProviderSlots and consent', () => {
  test('without consent no provider is created; with it, the token reaches the provider', async () => {
    const secrets = new MemorySecrets();
    secrets.secrets.set('team-a/acl', { annotations: {}, data: { token: 't0k3n' } });
    const log = { created: [] as ProviderContext[], closed: 0 };
    const slots = slotsWith(secrets, log);
    const source = sourceOf({ address: 'http://127.0.0.1:9', tokenSecretRef: { name: 'acl' } });
    await assert.rejects(slots.snapshot('team-a/s', source, signal()), (e: unknown) => e instanceof ConsentError && e.reason === 'SecretNotPermitted');
    assert.equal(log.created.length, 0, 'nothing was created, so nothing could be sent');

    secrets.secrets.set('team-a/acl', { annotations: { [ALLOWED_ENDPOINTS_ANNOTATION]: 'http://127.0.0.1:9' }, data: { token: 't0k3n' } });
    await slots.snapshot('team-a/s', source, signal());
    assert.equal(log.created.length, 1);
    assert.equal(log.created[0]?.secrets.get('acl/token'), 't0k3n');
  });

  test('a consent change rebuilds the provider; a withdrawn consent closes it', async () => {
    const secrets = new MemorySecrets();
    secrets.secrets.set('team-a/acl', { annotations: { [ALLOWED_ENDPOINTS_ANNOTATION]: 'http://127.0.0.1:9' }, data: { token: 'x' } });
    const log = { created: [] as ProviderContext[], closed: 0 };
    const slots = slotsWith(secrets, log);
    const source = sourceOf({ address: 'http://127.0.0.1:9', tokenSecretRef: { name: 'acl' } });
    await slots.snapshot('team-a/s', source, signal());
    await slots.snapshot('team-a/s', source, signal());
    assert.equal(log.created.length, 1, 'same Secret, same consent: the provider is reused');

    secrets.secrets.set('team-a/acl', { annotations: { [ALLOWED_ENDPOINTS_ANNOTATION]: 'http://127.0.0.1:9,https://other.example' }, data: { token: 'x' } });
    await slots.snapshot('team-a/s', source, signal());
    assert.equal(log.created.length, 2, 'the consent is part of the fingerprint');
    assert.equal(log.closed, 1);

    secrets.secrets.set('team-a/acl', { annotations: {}, data: { token: 'x' } });
    await assert.rejects(slots.snapshot('team-a/s', source, signal()), ConsentError);
    assert.equal(log.closed, 2, 'the running provider (and its watches) is stopped');
  });

  test('the CA bundle needs no consent, and one GET serves every key of a Secret', async () => {
    const secrets = new MemorySecrets();
    secrets.secrets.set('team-a/ca', { annotations: {}, data: { 'ca.crt': 'PEM' } });
    const log = { created: [] as ProviderContext[], closed: 0 };
    const slots = slotsWith(secrets, log);
    await slots.snapshot('team-a/s', sourceOf({ address: 'https://127.0.0.1:9', tls: { caSecretRef: { name: 'ca' } } }), signal());
    assert.equal(log.created[0]?.secrets.get('ca/ca.crt'), 'PEM');
    assert.equal(secrets.reads, 1);
  });

  test("the operator's own identity: refused by default, allowed for listed namespaces", async () => {
    const log = { created: [] as ProviderContext[], closed: 0 };
    const source = sourceOf({ address: 'http://127.0.0.1:9' });
    await assert.rejects(slotsWith(new MemorySecrets(), log, undefined, true).snapshot('team-a/s', source, signal()), (e: unknown) => e instanceof ConsentError && e.reason === 'AmbientCredentialsNotPermitted');
    await assert.rejects(slotsWith(new MemorySecrets(), log, ambientPolicyOf('team-a', ''), true).snapshot('team-a/s', source, signal()), /--ambient-credentials-endpoints/);
    assert.equal(log.created.length, 0);
    await slotsWith(new MemorySecrets(), log, ambientPolicyOf('team-a', 'http://127.0.0.1:9'), true).snapshot('team-a/s', source, signal());
    assert.equal(log.created.length, 1);
  });
});

describe('ProviderSlots: snapshots', () => {
  test('a change reported while a snapshot is being read asks for another read, so it is not lost until the tick', async () => {
    let slots: ProviderSlots | undefined;
    let reads = 0;
    const factory: ProviderFactory = {
      ...recordingFactory({ created: [], closed: 0 }),
      create: () => ({
        name: 'consul',
        snapshot: async () => {
          reads++;
          // The registry changes under the first read (a watch reports it before the read returns).
          if (reads === 1) slots?.markStale('team-a/s');
          return { endpoints: [], unknownScopes: [], warnings: [] };
        },
        close: async () => {},
      }),
    };
    slots = new ProviderSlots({ factories: factoriesOf([factory]), client: new MemorySecrets(), metrics: new ProviderMetrics(new Registry()), log: silentLogger, onChange: () => {} });
    const source = sourceOf({ address: 'http://consul.test:8500' });
    const notStale = (): boolean => false;
    await slots.snapshot('team-a/s', source, signal(), notStale);
    await slots.snapshot('team-a/s', source, signal(), notStale);
    assert.equal(reads, 2, 'the change during the first read made the next reconcile read again');
    await slots.snapshot('team-a/s', source, signal(), notStale);
    assert.equal(reads, 2, 'without another change the snapshot is reused');
    await slots.closeAll();
  });
});
