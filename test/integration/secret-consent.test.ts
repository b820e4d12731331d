/**
 * A source author cannot get a Secret's value, or anything signed with it, sent anywhere
 * the Secret has not consented to, and cannot borrow the operator's own identity unless
 * the admin allows it. "mallory" may write VmRegistrySources in her namespace and nothing
 * else (she is impersonated with kubectl --as from the admin kubeconfig). Her sources
 * point Consul, EC2 and GCE at a listener on loopback that records every connection and
 * request; the same sources pointed at the real Consul agent, moto and the local GCE
 * server work once the Secret consents to those endpoints.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConsulAgent } from '../../src/dev/consul-agent.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import { MOTO_CREDENTIALS, launchInstances, motoEc2Client, startMoto, type MotoServer } from '../../src/dev/moto.ts';
import { ambientPolicyOf, ALLOWED_ENDPOINTS_ANNOTATION } from '../../src/controller/consent.ts';
import { builtinProviders } from '../../src/providers/builtin.ts';
import type { VmRegistrySource } from '../../src/api/types.ts';
import { GceFakeServer } from '../harness/gce-server.ts';
import { applyYaml, condition, eventually, getEntries, getSource, startLocalCluster, startOperator, type RunningOperator } from '../harness/operator-env.ts';

// The operator's own AWS identity in these tests: the default chain finds it in the environment.
process.env['AWS_ACCESS_KEY_ID'] = MOTO_CREDENTIALS.accessKeyId;
process.env['AWS_SECRET_ACCESS_KEY'] = MOTO_CREDENTIALS.secretAccessKey;
process.env['AWS_EC2_METADATA_DISABLED'] = 'true';

const REGION = 'eu-west-1';
const TENANT = 'tenant';
const MALLORY = 'mallory';
const CONSUL_TOKEN = '6d1c7a40-5f9e-4c0b-9d3e-2b7f0c1e8a55';

interface Recorded {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

/** A server of mallory's: records every connection and request it receives. */
class Listener {
  readonly requests: Recorded[] = [];
  connections = 0;
  private readonly server: Server;
  constructor() {
    this.server = createServer((req, res) => {
      this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      res.writeHead(503).end();
    });
    this.server.on('connection', () => this.connections++);
  }
  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let cluster: LocalCluster;
let agent: ConsulAgent;
let moto: MotoServer;
let gce: GceFakeServer;
let op: RunningOperator;
let gceKey: string;
const listener = new Listener();

before(async () => {
  [cluster, agent, moto, gce] = await Promise.all([startLocalCluster(), ConsulAgent.start(), startMoto(), GceFakeServer.start({ zones: ['europe-west1-b'] }), listener.listen()]);
  gceKey = gce.createServiceAccountKey('reader@test-project.iam.gserviceaccount.com');
  gce.requireAuth();
  op = await startOperator(cluster, builtinProviders(), {
    resyncPeriodMs: 60 * 60_000,
    ambient: ambientPolicyOf('amb-ok', moto.endpoint),
  });
});

after(async () => {
  await op?.stop();
  await Promise.allSettled([listener.close(), agent?.stop(), moto?.stop(), gce?.stop()]);
  await cluster?.stop();
});

const asMallory = (args: string[], input?: string): Promise<string> => cluster.kubectl([...args, `--as=${MALLORY}`], input !== undefined ? { input } : {});

function secret(name: string, data: Record<string, string>, allowed?: string): object {
  const annotations = allowed !== undefined ? { [ALLOWED_ENDPOINTS_ANNOTATION]: allowed } : undefined;
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: TENANT, ...(annotations ? { annotations } : {}) }, type: 'Opaque', stringData: data };
}

function source(namespace: string, name: string, provider: Record<string, unknown>): object {
  return {
    apiVersion: 'vmregistry.io/v1alpha1',
    kind: 'VmRegistrySource',
    metadata: { name, namespace },
    spec: { interval: '1s', ...provider, workloadEntry: { ports: [{ name: 'http', number: 8080 }] } },
  };
}

const consulSpec = (address: string) => ({ consul: { address, services: ['billing'], tokenSecretRef: { name: 'consul-token' } } });
const ec2Spec = (endpoint: string, secretName?: string) => ({
  ec2: { region: REGION, endpoint, maxAttempts: 1, filters: [{ name: 'tag:suite', values: ['consent'] }], ...(secretName ? { credentialsSecretRef: { name: secretName } } : {}) },
});
const gceSpec = (endpoint: string) => ({ gce: { project: gce.project, endpoint, credentialsSecretRef: { name: 'gce-key' } } });

async function waitForReason(namespace: string, name: string, reason: string, timeoutMs = 30_000): Promise<VmRegistrySource> {
  return eventually(`${namespace}/${name} ProviderReady reason ${reason}`, async () => {
    const s = await getSource(cluster, namespace, name);
    return condition(s, 'ProviderReady')?.reason === reason ? s : undefined;
  }, timeoutMs);
}

async function waitReady(namespace: string, name: string, entries: number): Promise<VmRegistrySource> {
  return eventually(`${namespace}/${name} Ready with ${entries} entries`, async () => {
    const s = await getSource(cluster, namespace, name);
    return condition(s, 'Ready')?.status === 'True' && s.status?.managedEntries === entries && s.status.observedGeneration === s.metadata.generation ? s : undefined;
  }, 60_000);
}

async function warningEvent(namespace: string, name: string, reason: string): Promise<{ message: string; type: string }> {
  return eventually(`a ${reason} Event on ${namespace}/${name}`, async () => {
    const list = JSON.parse(await cluster.kubectl(['get', 'events', '-n', namespace, '--field-selector', `reason=${reason},involvedObject.name=${name}`, '-o', 'json'])) as {
      items: Array<{ message: string; type: string }>;
    };
    return list.items[0];
  });
}

/** Waits until the operator has run `n` more failed reconciles (the refused sources are retried every interval). */
async function failedReconciles(n: number): Promise<void> {
  const errors = async () => (await op.metrics.reconcileTotal.get()).values.filter((v) => v.labels['result'] === 'error').reduce((a, v) => a + v.value, 0);
  const start = await errors();
  await eventually(`${n} more failed reconciles`, async () => (await errors()) >= start + n, 60_000);
}

describe('Secrets only with their consent', () => {
  before(async () => {
    // The admin's part: the namespace, mallory's Role (VmRegistrySources only), the Secrets.
    await applyYaml(cluster, [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: TENANT } },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'source-author', namespace: TENANT },
        rules: [{ apiGroups: ['vmregistry.io'], resources: ['vmregistrysources'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] }],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'mallory-source-author', namespace: TENANT },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'source-author' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: MALLORY }],
      },
      secret('consul-token', { token: CONSUL_TOKEN }, agent.address),
      secret('aws-keys', { AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey }, moto.endpoint),
      secret('gce-key', { 'key.json': gceKey }, gce.url),
    ].map((o) => JSON.stringify(o)).join('\n---\n'));
    await agent.registerService({ ID: 'billing-1', Name: 'billing', Address: '10.60.0.1', Port: 8080 });
    const seed = motoEc2Client(moto, REGION);
    await launchInstances(seed, { count: 2, tags: { suite: 'consent', service: 'inventory' } });
    seed.destroy();
    gce.addInstance({ name: 'web-1', zone: 'europe-west1-b', labels: { service: 'web' } });
  });

  test('mallory may write sources but not read Secrets', async () => {
    assert.equal((await asMallory(['auth', 'can-i', 'create', 'vmregistrysources.vmregistry.io', '-n', TENANT])).trim(), 'yes');
    await assert.rejects(asMallory(['get', 'secret', 'consul-token', '-n', TENANT, '-o', 'json']), /forbidden/i);
  });

  test('sources pointed at her listener: SecretNotPermitted with an Event naming the annotation; the listener receives nothing', { timeout: 180_000 }, async (t) => {
    await asMallory(['apply', '-f', '-'], [
      source(TENANT, 'steal-consul', consulSpec(listener.url)),
      source(TENANT, 'steal-ec2', ec2Spec(listener.url, 'aws-keys')),
      source(TENANT, 'steal-gce', gceSpec(listener.url)),
    ].map((o) => JSON.stringify(o)).join('\n---\n'));

    for (const name of ['steal-consul', 'steal-ec2', 'steal-gce']) {
      const s = await waitForReason(TENANT, name, 'SecretNotPermitted');
      assert.equal(condition(s, 'Ready')?.status, 'False');
      const message = condition(s, 'ProviderReady')?.message ?? '';
      assert.match(message, new RegExp(`does not permit sending its values to ${listener.url.replace(/[.]/g, '\\.')}`));
      const event = await warningEvent(TENANT, name, 'SecretNotPermitted');
      assert.equal(event.type, 'Warning');
      assert.ok(event.message.includes(`${ALLOWED_ENDPOINTS_ANNOTATION}=`), 'the Event says which annotation to add');
      assert.ok(event.message.includes(listener.url), 'and the value that would allow it');
      t.diagnostic(`${name}: ${message}`);
    }
    // Not a moment's luck: the refused sources have been retried many times since.
    await failedReconciles(9);
    assert.equal(listener.connections, 0, 'no connection reached the listener');
    assert.deepEqual(listener.requests, [], 'no request, so no X-Consul-Token, no Authorization, no SigV4 signature');
    assert.doesNotMatch(JSON.stringify((await getSource(cluster, TENANT, 'steal-consul')).status), new RegExp(CONSUL_TOKEN), 'the token never shows in status');
  });

  test('the same sources pointed at the registries the Secrets consent to work', { timeout: 180_000 }, async () => {
    await asMallory(['apply', '-f', '-'], [
      source(TENANT, 'steal-consul', consulSpec(agent.address)),
      source(TENANT, 'steal-ec2', ec2Spec(moto.endpoint, 'aws-keys')),
      source(TENANT, 'steal-gce', gceSpec(gce.url)),
    ].map((o) => JSON.stringify(o)).join('\n---\n'));
    await waitReady(TENANT, 'steal-consul', 1);
    await waitReady(TENANT, 'steal-ec2', 2);
    await waitReady(TENANT, 'steal-gce', 1);
    // The GCE server requires signed requests (requireAuth): answers of 200 mean the key was used.
    assert.ok(gce.requests.some((r) => r.status === 200), 'the GCE server answered requests signed with the key');
    assert.equal(listener.connections, 0);
  });

  test('consent is read at each sync: withdrawn, the source stops; given to the listener, the token does travel there', { timeout: 180_000 }, async () => {
    const entriesBefore = (await getEntries(cluster, TENANT, 'vmregistry.io/source=steal-consul')).map((e) => e.metadata.uid);
    await cluster.kubectl(['annotate', 'secret', 'consul-token', '-n', TENANT, `${ALLOWED_ENDPOINTS_ANNOTATION}-`]);
    const s = await waitForReason(TENANT, 'steal-consul', 'SecretNotPermitted');
    assert.match(condition(s, 'ProviderReady')?.message ?? '', /has no annotation vmregistry\.io\/allowed-endpoints/);
    assert.deepEqual((await getEntries(cluster, TENANT, 'vmregistry.io/source=steal-consul')).map((e) => e.metadata.uid), entriesBefore, 'entries are kept');

    // The listener is a working registry stand-in: with consent, what it receives is the token.
    await asMallory(['apply', '-f', '-'], JSON.stringify(source(TENANT, 'steal-consul', consulSpec(listener.url))));
    await cluster.kubectl(['annotate', 'secret', 'consul-token', '-n', TENANT, `${ALLOWED_ENDPOINTS_ANNOTATION}=${listener.url}`]);
    await eventually('a request at the listener', async () => listener.requests.length > 0);
    assert.equal(listener.requests[0]?.headers['x-consul-token'], CONSUL_TOKEN);
    await asMallory(['delete', 'vmrs', 'steal-consul', 'steal-ec2', 'steal-gce', '-n', TENANT]);
  });
});

describe("the operator's own identity only where the admin allows it", () => {
  before(async () => {
    await applyYaml(cluster, ['amb-ok', 'amb-no'].map((n) => JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: n } })).join('\n---\n'));
  });

  test('allowed namespace and allowed endpoint: works; other namespace or endpoint: AmbientCredentialsNotPermitted, nothing sent', { timeout: 180_000 }, async () => {
    await applyYaml(cluster, [
      source('amb-ok', 'own', ec2Spec(moto.endpoint)),
      source('amb-no', 'own', ec2Spec(moto.endpoint)),
      source('amb-ok', 'elsewhere', ec2Spec(listener.url)),
    ].map((o) => JSON.stringify(o)).join('\n---\n'));
    await waitReady('amb-ok', 'own', 2);

    const refusedNs = await waitForReason('amb-no', 'own', 'AmbientCredentialsNotPermitted');
    assert.match(condition(refusedNs, 'ProviderReady')?.message ?? '', /--ambient-credentials-namespaces/);
    const refusedEndpoint = await waitForReason('amb-ok', 'elsewhere', 'AmbientCredentialsNotPermitted');
    assert.match(condition(refusedEndpoint, 'ProviderReady')?.message ?? '', /--ambient-credentials-endpoints/);
    assert.equal((await warningEvent('amb-no', 'own', 'AmbientCredentialsNotPermitted')).type, 'Warning');
    assert.equal((await getEntries(cluster, 'amb-no')).length, 0);

    await failedReconciles(6);
    // The Consul source of the previous test may still be winding down against the
    // listener; EC2 requests are POSTs signed in an Authorization header, Consul's are not.
    const signed = listener.requests.filter((r) => r.method === 'POST' || r.headers.authorization !== undefined);
    assert.deepEqual(signed, [], 'no request with the operator identity reached the listener');
  });
});
