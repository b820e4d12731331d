/**
 * The Helm chart against the real apiserver, with helm built from its Go module: the
 * default render grants the same permissions and carries the same Deployment settings as
 * config/default (one source of truth, compared, not hard-coded); the render is applied
 * to the local control plane; and the operator runs under the chart's RBAC identity,
 * cluster-wide and limited to a list of namespaces, doing a real sync that reads a Secret.
 * helm lint and values.schema.json: helm-chart.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ensureHelm } from '../../src/dev/ops-tools.ts';
import type { LocalCluster } from '../../src/dev/cluster.ts';
import { SOURCE_LABEL } from '../../src/api/ownership.ts';
import { MemoryRegistry, memoryProviderFactory } from '../fixtures/memory-provider.ts';
import { CONFIG_DIR, OPERATOR_NAME, checkDeployment, checkRbac, parseDocs, type DeploymentObject, type K8sObject } from '../harness/manifests.ts';
import { CHART_DIR } from '../harness/observability.ts';
import { deploymentSettings, grantedPermissions, selects } from '../harness/chart-render.ts';
import { applyYaml, condition, eventually, getEntries, getSource, startLocalCluster, startOperator, type RunningOperator } from '../harness/operator-env.ts';
import { runTool, runToolOk } from '../harness/tool-run.ts';
import { ALLOWED_ENDPOINTS_ANNOTATION } from '../../src/controller/consent.ts';

const NS = 'vm-registry-system';
const RELEASE = 'vm-registry-operator';
const registries = new Map<string, MemoryRegistry>();
const REGISTRY_URL = 'http://chart.registry.test';
const reg = new MemoryRegistry();
registries.set(REGISTRY_URL, reg);

let helm = '';
let cluster: LocalCluster;
let kustomized: K8sObject[] = [];
let charted: K8sObject[] = [];

function template(release: string, namespace: string, args: readonly string[] = []): Promise<string> {
  return runToolOk(helm, ['template', release, CHART_DIR, '--namespace', namespace, ...args]);
}

const byKind = (docs: readonly K8sObject[], kind: string): K8sObject[] => docs.filter((d) => d.kind === kind);
function one(docs: readonly K8sObject[], kind: string): K8sObject {
  const found = byKind(docs, kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0] as K8sObject;
}

before(async () => {
  helm = await ensureHelm();
  cluster = await startLocalCluster({ controllerManager: false });
  kustomized = parseDocs(await cluster.kubectl(['kustomize', join(CONFIG_DIR, 'default')]));
  charted = parseDocs(await template(RELEASE, NS, ['--include-crds']));
});

after(async () => {
  await cluster?.stop();
});

describe('one source of truth: the chart with default values renders what config/default does', () => {
  test('the same permissions for the operator ServiceAccount, and nothing beyond what it needs', () => {
    assert.deepEqual(grantedPermissions(charted, NS), grantedPermissions(kustomized, NS));
    assert.deepEqual(checkRbac(charted, NS), []);
  });

  test('the same Deployment settings: image, args, env, ports, probes, resources, security contexts, volumes', () => {
    const fromChart = one(charted, 'Deployment') as DeploymentObject;
    const fromConfig = one(kustomized, 'Deployment') as DeploymentObject;
    assert.deepEqual(deploymentSettings(fromChart), deploymentSettings(fromConfig));
    assert.deepEqual(checkDeployment(fromChart), []);
  });

  test('the same CRD, PodDisruptionBudget and metrics Service port, all selecting the operator pods', () => {
    const crd = (o: K8sObject): unknown => ({ name: o.metadata.name, spec: (o as unknown as { spec: unknown }).spec });
    assert.deepEqual(crd(one(charted, 'CustomResourceDefinition')), crd(one(kustomized, 'CustomResourceDefinition')));
    const spec = (o: K8sObject): Record<string, unknown> => (o as unknown as { spec: Record<string, unknown> }).spec;
    const pdb = (o: K8sObject): unknown => ({ ...spec(o), selector: undefined });
    assert.deepEqual(pdb(one(charted, 'PodDisruptionBudget')), pdb(one(kustomized, 'PodDisruptionBudget')));
    assert.deepEqual(spec(one(charted, 'Service'))['ports'], spec(one(kustomized, 'Service'))['ports']);
    const d = one(charted, 'Deployment') as DeploymentObject & { spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } } };
    const podLabels = d.spec.template.metadata.labels;
    assert.ok(selects(d.spec.selector.matchLabels, podLabels), 'the Deployment selects its pods');
    assert.ok(selects((spec(one(charted, 'PodDisruptionBudget'))['selector'] as { matchLabels: Record<string, string> }).matchLabels, podLabels), 'the PDB selects the pods');
    assert.ok(selects(spec(one(charted, 'Service'))['selector'] as Record<string, string>, podLabels), 'the Service selects the pods');
  });

  test('the optional ServiceMonitor, PrometheusRule and dashboard equal config/prometheus and config/grafana', async () => {
    const optional = parseDocs(await template(RELEASE, NS, ['--set', 'serviceMonitor.enabled=true,prometheusRule.enabled=true,dashboard.enabled=true']));
    const prometheus = parseDocs(await cluster.kubectl(['kustomize', join(CONFIG_DIR, 'prometheus')]));
    const grafana = parseDocs(await cluster.kubectl(['kustomize', join(CONFIG_DIR, 'grafana')]));
    const field = (o: K8sObject, f: string): unknown => (o as unknown as Record<string, unknown>)[f];
    assert.deepEqual(field(one(optional, 'PrometheusRule'), 'spec'), field(one(prometheus, 'PrometheusRule'), 'spec'));
    const endpoints = (o: K8sObject): unknown => (field(o, 'spec') as { endpoints: unknown }).endpoints;
    assert.deepEqual(endpoints(one(optional, 'ServiceMonitor')), endpoints(one(prometheus, 'ServiceMonitor')));
    const monitor = field(one(optional, 'ServiceMonitor'), 'spec') as { selector: { matchLabels: Record<string, string> } };
    assert.ok(selects(monitor.selector.matchLabels, one(optional, 'Service').metadata.labels), 'the ServiceMonitor selects the metrics Service');
    const dashboards = byKind(optional, 'ConfigMap');
    assert.equal(dashboards.length, 1);
    const dashboardOf = (o: K8sObject): unknown => JSON.parse((field(o, 'data') as Record<string, string>)['vm-registry-operator.json'] ?? 'null');
    assert.deepEqual(dashboardOf(dashboards[0] as K8sObject), dashboardOf(one(grafana, 'ConfigMap')));
    assert.equal(dashboards[0]?.metadata.labels?.['grafana_dashboard'], '1');
  });
});

/** Requests the operator made that the apiserver refused (401/403), from its own metrics. */
async function refusedRequests(op: RunningOperator): Promise<string[]> {
  const m = await op.metrics.restRequests.get();
  return m.values.filter((v) => v.labels['code'] === '403' || v.labels['code'] === '401').map((v) => `${v.labels['method']} ${v.labels['code']} x${v.value}`);
}

async function applyRendered(rendered: string): Promise<void> {
  const r = await runTool(cluster.cp.bins.kubectl, [`--kubeconfig=${cluster.cp.kubeconfig}`, 'apply', '--server-side', '--force-conflicts', '--field-manager=helm-chart-test', '-f', '-'], { input: rendered });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /warning/i, 'applied without warnings');
}

async function namespaces(...names: string[]): Promise<void> {
  await applyYaml(cluster, names.map((n) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${n}, labels: {pod-security.kubernetes.io/enforce: restricted}}\n`).join('---\n'));
}

async function tokenKubeconfig(serviceAccount: string, namespace: string): Promise<string> {
  const token = (await cluster.kubectl(['create', 'token', serviceAccount, '-n', namespace, '--duration=1h'])).trim();
  return cluster.cp.tokenKubeconfig(`${namespace}-${serviceAccount}`, token);
}

/** A source reading the in-memory registry with a token Secret, in namespace ns. */
async function sourceWithSecret(ns: string, name: string): Promise<void> {
  await applyYaml(cluster, `apiVersion: v1
kind: Secret
metadata: {name: ${name}-token, namespace: ${ns}, annotations: {${ALLOWED_ENDPOINTS_ANNOTATION}: "${REGISTRY_URL}"}}
stringData: {token: secret-${name}}
---
apiVersion: vmregistry.io/v1alpha1
kind: VmRegistrySource
metadata: {name: ${name}, namespace: ${ns}}
spec:
  interval: 1h
  consul: {address: "${REGISTRY_URL}", tokenSecretRef: {name: ${name}-token, key: token}}
  workloadEntry:
    ports: [{name: http, number: 8080}]
`);
}

async function waitForSync(ns: string, name: string, addresses: readonly string[]): Promise<void> {
  await eventually(`${ns}/${name} Ready with ${addresses.length} entries`, async () => {
    const s = await getSource(cluster, ns, name);
    if (condition(s, 'Ready')?.status !== 'True') return undefined;
    const got = (await getEntries(cluster, ns, `${SOURCE_LABEL}=${name}`)).map((e) => e.spec.address).sort();
    return JSON.stringify(got) === JSON.stringify([...addresses].sort()) ? true : undefined;
  }, 40_000);
}

const canI = async (user: string, ...args: string[]): Promise<boolean> => {
  const r = await runTool(cluster.cp.bins.kubectl, [`--kubeconfig=${cluster.cp.kubeconfig}`, 'auth', 'can-i', `--as=${user}`, ...args]);
  return r.stdout.trim() === 'yes';
};

describe('helm template applied to the local control plane', () => {
  test('cluster-wide: applies cleanly, and the operator under the chart identity syncs a source reading its Secret', async () => {
    await namespaces(NS, 'chart-workloads');
    await applyRendered(await template(RELEASE, NS, ['--include-crds', '--set', 'dashboard.enabled=true']));
    const kubeconfig = await tokenKubeconfig(OPERATOR_NAME, NS);
    reg.set('vm-1', '10.30.0.1');
    reg.set('vm-2', '10.30.0.2');
    // Served as consul: the chart installs the shipped CRD, which has no spec.memory.
    const op = await startOperator(cluster, [memoryProviderFactory(registries, { servedAs: 'consul' })], { kubeconfig, leaderElection: { namespace: NS, name: 'vm-registry-operator', identity: 'chart-test' } });
    try {
      await eventually('leadership', async () => op.operator.isLeader);
      await sourceWithSecret('chart-workloads', 'shop');
      await waitForSync('chart-workloads', 'shop', ['10.30.0.1', '10.30.0.2']);
      assert.deepEqual(await refusedRequests(op), [], 'no request of the operator was refused');
    } finally {
      await op.stop();
    }
  });

  test('limited to listed namespaces: RoleBindings only there, and the operator syncs a source in one of them', async () => {
    const ns = 'vmreg-limited';
    const release = 'limited';
    await namespaces(ns, 'team-a', 'team-b', 'team-c');
    const rendered = await template(release, ns, ['--set', 'watchNamespaces={team-a,team-c}']);
    const docs = parseDocs(rendered);
    assert.deepEqual(byKind(docs, 'ClusterRoleBinding'), [], 'no ClusterRoleBinding');
    assert.deepEqual([...new Set(byKind(docs, 'RoleBinding').map((b) => b.metadata.namespace))].sort(), ['team-a', 'team-c', ns]);
    const args = (one(docs, 'Deployment') as DeploymentObject).spec.template.spec.containers[0]?.args ?? [];
    assert.ok(args.includes('--namespaces=team-a,team-c'), args.join(' '));
    await applyRendered(rendered);

    const sa = `${release}-${OPERATOR_NAME}`;
    const user = `system:serviceaccount:${ns}:${sa}`;
    assert.equal(await canI(user, 'list', 'vmregistrysources.vmregistry.io', '-n', 'team-a'), true);
    assert.equal(await canI(user, 'get', 'secrets', '-n', 'team-c'), true);
    assert.equal(await canI(user, 'create', 'leases.coordination.k8s.io', '-n', ns), true);
    assert.equal(await canI(user, 'list', 'vmregistrysources.vmregistry.io', '-n', 'team-b'), false, 'not outside the list');
    assert.equal(await canI(user, 'get', 'secrets', '-n', 'team-b'), false, 'no Secret outside the list');
    assert.equal(await canI(user, 'patch', 'workloadentries.networking.istio.io', '-n', 'team-b'), false);
    assert.equal(await canI(user, 'list', 'vmregistrysources.vmregistry.io', '--all-namespaces'), false, 'nothing cluster-wide');

    const kubeconfig = await tokenKubeconfig(sa, ns);
    reg.set('vm-3', '10.30.0.3');
    const op = await startOperator(cluster, [memoryProviderFactory(registries, { servedAs: 'consul' })], {
      kubeconfig,
      namespaces: ['team-a', 'team-c'],
      leaderElection: { namespace: ns, name: 'vm-registry-operator', identity: 'limited-test' },
    });
    try {
      await eventually('leadership', async () => op.operator.isLeader);
      await sourceWithSecret('team-a', 'orders');
      await waitForSync('team-a', 'orders', ['10.30.0.1', '10.30.0.2', '10.30.0.3']);
      assert.deepEqual(await refusedRequests(op), [], 'no request of the operator was refused');
    } finally {
      await op.stop();
    }
  });
});
