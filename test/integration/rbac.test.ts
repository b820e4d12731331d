/**
 * The operator running under exactly the permissions config/default grants: the rendered
 * manifests are applied to a real apiserver, a token is issued for the operator's
 * ServiceAccount, and the operator runs in-process with that token. Every behaviour it
 * needs (entries, drift, status, Events, Secrets, the Lease, the Healthy condition)
 * still works, no request of its own is refused, and writes outside the rules are
 * refused for the same identity.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MemoryRegistry, memoryProviderFactory } from '../fixtures/memory-provider.ts';
import { applyYaml, condition, eventually, getEntries, getSource, startLocalCluster, startOperator, type RunningOperator } from '../harness/operator-env.ts';
import { CONFIG_DIR, OPERATOR_NAME } from '../harness/manifests.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import type { ProviderFactory } from '../../src/providers/provider.ts';
import { HEALTH_CHECKS_ANNOTATION } from '../../src/controller/reconciler.ts';
import type { WorkloadEntry } from '../../src/api/istio.ts';
import { SOURCE_LABEL } from '../../src/api/ownership.ts';

const NS = 'vm-registry-system';
const WORKLOADS = 'rbac-workloads';
const LEASE = 'vm-registry-operator';
const IDENTITY = 'rbac-test-replica';
const SA_USER = `system:serviceaccount:${NS}:${OPERATOR_NAME}`;
const TOKEN_VALUE = 'consul-acl-token-value';

const registries = new Map<string, MemoryRegistry>();
const REGISTRY_URL = 'http://rbac.registry.test';
const HEALTH_URL = 'http://rbac-health.registry.test';
const reg = new MemoryRegistry();
const healthReg = new MemoryRegistry();
registries.set(REGISTRY_URL, reg);
registries.set(HEALTH_URL, healthReg);

/** The Secret values each source's provider was created with, as the engine handed them over. */
const secretsSeen = new Map<string, Map<string, string>>();
function recordingFactory(inner: ProviderFactory): ProviderFactory {
  return {
    ...inner,
    secretRefs: (spec) => inner.secretRefs(spec),
    defaultMapping: (spec) => inner.defaultMapping(spec),
    create: (ctx) => {
      secretsSeen.set(ctx.source, new Map(ctx.secrets));
      return inner.create(ctx);
    },
  };
}

let cluster: LocalCluster;
let op: RunningOperator | undefined;
let saKubeconfig = '';

before(async () => {
  cluster = await startLocalCluster();
  const rendered = await cluster.kubectl(['kustomize', join(CONFIG_DIR, 'default')]);
  await cluster.kubectl(['apply', '--server-side', '--field-manager=rbac-test', '-f', '-'], { input: rendered });
  const token = (await cluster.kubectl(['create', 'token', OPERATOR_NAME, '-n', NS, '--duration=1h'])).trim();
  assert.ok(token.length > 20, 'a ServiceAccount token is issued');
  saKubeconfig = await cluster.cp.tokenKubeconfig('operator-sa', token);
  // Served as consul: the health-mode test below uses spec.consul.health.
  op = await startOperator(cluster, [recordingFactory(memoryProviderFactory(registries, { servedAs: 'consul' }))], {
    kubeconfig: saKubeconfig,
    leaderElection: { namespace: NS, name: LEASE, identity: IDENTITY },
  });
});

after(async () => {
  await op?.stop();
  await cluster?.stop();
});

function sourceYaml(name: string, consul: string): string {
  return `apiVersion: vmregistry.io/v1alpha1
kind: VmRegistrySource
metadata: {name: ${name}, namespace: ${WORKLOADS}}
spec:
  interval: 1h
  consul: ${consul}
  workloadEntry:
    ports: [{name: http, number: 8080}]
`;
}

async function addresses(sourceName: string): Promise<Record<string, string>> {
  const items = await getEntries(cluster, WORKLOADS, `${SOURCE_LABEL}=${sourceName}`);
  return Object.fromEntries(items.map((e) => [e.metadata.annotations?.['vmregistry.io/endpoint'] ?? e.metadata.name, e.spec.address]));
}

async function waitForAddresses(sourceName: string, expected: Record<string, string>): Promise<void> {
  await eventually(`entries of ${sourceName} to be ${JSON.stringify(expected)}`, async () => {
    try {
      assert.deepEqual(await addresses(sourceName), expected);
      return true;
    } catch {
      return undefined;
    }
  });
}

/** Requests the operator made that the apiserver refused (401/403), from its own metrics. */
async function refusedRequests(): Promise<string[]> {
  const m = await op!.metrics.restRequests.get();
  return m.values.filter((v) => v.labels['code'] === '403' || v.labels['code'] === '401').map((v) => `${v.labels['method']} ${v.labels['code']} x${v.value}`);
}

describe('the operator under the RBAC rules of config/default', () => {
  test('runs as the ServiceAccount and holds the Lease in the operator namespace', async () => {
    const whoami = JSON.parse(await cluster.kubectl(['auth', 'whoami', '-o', 'json'], { kubeconfig: saKubeconfig })) as { status: { userInfo: { username: string } } };
    assert.equal(whoami.status.userInfo.username, SA_USER);
    await eventually('leadership', async () => op!.operator.isLeader);
    const lease = JSON.parse(await cluster.kubectl(['get', 'lease', LEASE, '-n', NS, '-o', 'json'])) as { spec: { holderIdentity: string; leaseDurationSeconds: number } };
    assert.equal(lease.spec.holderIdentity, IDENTITY);
    assert.equal(lease.spec.leaseDurationSeconds, 15);
    // The lease is renewed with an update (the Role grants get, create, update only).
    const renewed = await eventually('a renewal', async () => {
      const l = JSON.parse(await cluster.kubectl(['get', 'lease', LEASE, '-n', NS, '-o', 'json'])) as { spec: { renewTime: string; acquireTime: string } };
      return l.spec.renewTime !== l.spec.acquireTime ? l : undefined;
    }, 10_000);
    assert.ok(new Date(renewed.spec.renewTime) > new Date(renewed.spec.acquireTime));
  });

  test('creates, updates and deletes entries, puts drift back, writes status and records Events, reading the token Secret', async () => {
    await applyYaml(cluster, `apiVersion: v1
kind: Namespace
metadata: {name: ${WORKLOADS}}
---
apiVersion: v1
kind: Secret
metadata: {name: consul-acl, namespace: ${WORKLOADS}, annotations: {vmregistry.io/allowed-endpoints: "${REGISTRY_URL}"}}
stringData: {token: ${TOKEN_VALUE}}
`);
    reg.set('vm-1', '10.20.0.1');
    reg.set('vm-2', '10.20.0.2');
    await applyYaml(cluster, sourceYaml('pay', `{address: "${REGISTRY_URL}", tokenSecretRef: {name: consul-acl, key: token}}`));
    await waitForAddresses('pay', { 'vm-1': '10.20.0.1', 'vm-2': '10.20.0.2' });
    // The Secret was read with the operator's identity and its value reached the provider.
    assert.equal(secretsSeen.get(`${WORKLOADS}/pay`)?.get('consul-acl/token'), TOKEN_VALUE);

    // Update and delete follow the registry.
    reg.set('vm-2', '10.20.0.22');
    reg.set('vm-3', '10.20.0.3');
    reg.remove('vm-1');
    await waitForAddresses('pay', { 'vm-2': '10.20.0.22', 'vm-3': '10.20.0.3' });

    // Drift: an edit and a deletion by someone else are put back.
    const entries = await getEntries(cluster, WORKLOADS, `${SOURCE_LABEL}=pay`);
    const edited = entries.find((e) => e.spec.address === '10.20.0.22');
    const deleted = entries.find((e) => e.spec.address === '10.20.0.3');
    assert.ok(edited && deleted);
    await cluster.kubectl(['patch', 'workloadentry', edited.metadata.name, '-n', WORKLOADS, '--type=merge', '-p', '{"spec":{"address":"192.168.77.77"}}']);
    await cluster.kubectl(['delete', 'workloadentry', deleted.metadata.name, '-n', WORKLOADS]);
    await waitForAddresses('pay', { 'vm-2': '10.20.0.22', 'vm-3': '10.20.0.3' });

    // Status is written through the status subresource.
    const source = await eventually('Ready=True with 2 entries', async () => {
      const s = await getSource(cluster, WORKLOADS, 'pay');
      return condition(s, 'Ready')?.status === 'True' && s.status?.managedEntries === 2 ? s : undefined;
    });
    assert.equal(source.status?.observedGeneration, source.metadata.generation);
    assert.equal(condition(source, 'Synced')?.reason, 'InSync');

    // Events about the source were recorded by the operator.
    const events = await eventually('Synced events', async () => {
      const list = JSON.parse(await cluster.kubectl(['get', 'events', '-n', WORKLOADS, '--field-selector', 'reason=Synced,involvedObject.name=pay', '-o', 'json'])) as {
        items: Array<{ involvedObject: { kind: string; uid: string }; source?: { component?: string } }>;
      };
      return list.items.length > 0 ? list.items : undefined;
    });
    assert.equal(events[0]?.involvedObject.kind, 'VmRegistrySource');
    assert.equal(events[0]?.involvedObject.uid, source.metadata.uid);
    assert.equal(events[0]?.source?.component, 'vm-registry-operator');

    assert.deepEqual(await refusedRequests(), [], 'no request of the operator was refused');
  });

  test('a missing Secret is reported in status, and picked up once it exists', async () => {
    reg.set('vm-9', '10.20.0.9');
    await applyYaml(cluster, sourceYaml('late', `{address: "${REGISTRY_URL}", tokenSecretRef: {name: late-token, key: token}}`));
    const s = await eventually('SecretUnavailable', async () => {
      const got = await getSource(cluster, WORKLOADS, 'late');
      return condition(got, 'ProviderReady')?.reason === 'SecretUnavailable' ? got : undefined;
    });
    // Not found, not forbidden: the operator may read Secrets in the source's namespace.
    assert.match(condition(s, 'ProviderReady')?.message ?? '', /404|NotFound/);
    assert.doesNotMatch(condition(s, 'ProviderReady')?.message ?? '', /forbidden/i);
    await cluster.kubectl(['create', 'secret', 'generic', 'late-token', '-n', WORKLOADS, '--from-literal=token=later']);
    await cluster.kubectl(['annotate', 'secret', 'late-token', '-n', WORKLOADS, `vmregistry.io/allowed-endpoints=${REGISTRY_URL}`]);
    await eventually('the late source to sync', async () => condition(await getSource(cluster, WORKLOADS, 'late'), 'Ready')?.status === 'True', 40_000);
    assert.equal(secretsSeen.get(`${WORKLOADS}/late`)?.get('late-token/token'), 'later');
  });

  test('health mode "status" writes the Healthy condition of each entry through the status subresource', async () => {
    healthReg.set('vm-up', '10.21.0.1', {}, { healthy: true });
    healthReg.set('vm-down', '10.21.0.2', {}, { healthy: false });
    await applyYaml(cluster, sourceYaml('health', `{address: "${HEALTH_URL}", health: {mode: status}}`));
    const healthOf = async (): Promise<Record<string, string> | undefined> => {
      const items: WorkloadEntry[] = await getEntries(cluster, WORKLOADS, `${SOURCE_LABEL}=health`);
      const out: Record<string, string> = {};
      for (const e of items) {
        const c = (e as WorkloadEntry & { status?: { conditions?: Array<{ type: string; status: string }> } }).status?.conditions?.find((x) => x.type === 'Healthy');
        if (!c) return undefined;
        assert.equal(e.metadata.annotations?.[HEALTH_CHECKS_ANNOTATION], 'true');
        out[e.spec.address] = c.status;
      }
      return out;
    };
    await eventually('Healthy conditions', async () => {
      const h = await healthOf();
      return h?.['10.21.0.1'] === 'True' && h['10.21.0.2'] === 'False' ? true : undefined;
    });
    healthReg.set('vm-down', '10.21.0.2', {}, { healthy: true });
    await eventually('the failing instance to turn healthy', async () => ((await healthOf())?.['10.21.0.2'] === 'True' ? true : undefined));
    assert.deepEqual(await refusedRequests(), [], 'no request of the operator was refused');
  });
});

describe('writes outside the rules are refused for the operator identity', () => {
  const asOperator = (args: string[], input?: string): Promise<string> => cluster.kubectl(args, { kubeconfig: saKubeconfig, ...(input !== undefined ? { input } : {}) });
  /** The apiserver's 403 for this identity, verb and resource (kubectl prints the Status message). */
  const refused = (verb: string, resource: string, where = '') => (e: Error): boolean => {
    assert.match(e.message, /forbidden/i);
    assert.ok(e.message.includes(`User "${SA_USER}" cannot ${verb} resource "${resource}"${where}`), e.message);
    return true;
  };

  test('it can read what it needs with the same token (the refusals below are authorization, not authentication)', async () => {
    const out = await asOperator(['get', 'vmrs', '-n', WORKLOADS, '-o', 'name']);
    assert.match(out, /vmregistrysource/);
    assert.equal((await asOperator(['auth', 'can-i', 'patch', 'vmregistrysources.vmregistry.io', '--subresource=status', '-n', WORKLOADS])).trim(), 'yes');
  });

  test('creating a ConfigMap', async () => {
    await assert.rejects(asOperator(['create', 'configmap', 'nope', '-n', WORKLOADS, '--from-literal=a=b']), refused('create', 'configmaps'));
  });

  test('deleting a VmRegistrySource', async () => {
    await assert.rejects(asOperator(['delete', 'vmrs', 'pay', '-n', WORKLOADS]), refused('delete', 'vmregistrysources'));
    await getSource(cluster, WORKLOADS, 'pay'); // still there
  });

  test('patching a VmRegistrySource spec', async () => {
    await assert.rejects(asOperator(['patch', 'vmrs', 'pay', '-n', WORKLOADS, '--type=merge', '-p', '{"spec":{"suspend":true}}']), refused('patch', 'vmregistrysources'));
    assert.notEqual((await getSource(cluster, WORKLOADS, 'pay')).spec.suspend, true);
  });

  test('creating a Lease in another namespace', async () => {
    const lease = `apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: elsewhere, namespace: default}
spec: {holderIdentity: someone}
`;
    await assert.rejects(asOperator(['create', '-f', '-'], lease), refused('create', 'leases', ' in API group "coordination.k8s.io" in the namespace "default"'));
  });

  test('listing Secrets', async () => {
    await assert.rejects(asOperator(['get', 'secrets', '-n', WORKLOADS]), refused('list', 'secrets'));
    await assert.rejects(asOperator(['get', 'secrets', '--all-namespaces']), refused('list', 'secrets', ' in API group "" at the cluster scope'));
  });
});

describe('stopping', () => {
  test('gives the Lease up with the same identity', async () => {
    await op!.stop();
    op = undefined;
    const lease = JSON.parse(await cluster.kubectl(['get', 'lease', LEASE, '-n', NS, '-o', 'json'])) as { spec: { holderIdentity?: string } };
    assert.equal(lease.spec.holderIdentity ?? '', '', 'the lease is released on stop');
  });
});
