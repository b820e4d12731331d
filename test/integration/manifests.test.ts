/**
 * The deployment manifests against a real apiserver: the rendered kustomize output is
 * applied for real (server-side), the RBAC it grants is checked with the apiserver's
 * own authorizer, and every sample passes a server-side dry run (CRD schema and CEL
 * rules included).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { startLocalCluster, type LocalCluster } from '../../src/dev/cluster.ts';
import { CONFIG_DIR, OPERATOR_NAME, checkDeployment, checkRbac, parseDocs, yamlFilesIn, type DeploymentObject, type K8sObject } from '../harness/manifests.ts';

const NS = 'vm-registry-system';
const SAMPLES_NS = 'vm-workloads';
const SA = `system:serviceaccount:${NS}:${OPERATOR_NAME}`;

let cluster: LocalCluster;
let rendered = '';

/** kubectl with stdout, stderr and the exit code, whatever it is. */
function kubectlRaw(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = execFile(cluster.cp.bins.kubectl, [`--kubeconfig=${cluster.cp.kubeconfig}`, ...args], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolvePromise({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

before(async () => {
  cluster = await startLocalCluster({ controllerManager: false });
  rendered = await cluster.kubectl(['kustomize', join(CONFIG_DIR, 'default')]);
});

after(async () => {
  await cluster?.stop();
});

describe('config/default rendered by kubectl kustomize', () => {
  test('holds the CRD, RBAC, Deployment and metrics Service, all in the operator namespace', () => {
    const docs = parseDocs(rendered);
    const kinds = docs.map((d) => d.kind).sort();
    assert.deepEqual(kinds, [
      'ClusterRole',
      'ClusterRole',
      'ClusterRoleBinding',
      'ClusterRoleBinding',
      'CustomResourceDefinition',
      'Deployment',
      'Namespace',
      'PodDisruptionBudget',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);
    const clusterScoped = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding']);
    for (const d of docs) {
      if (clusterScoped.has(d.kind)) assert.equal(d.metadata.namespace, undefined, `${d.kind}/${d.metadata.name}`);
      else assert.equal(d.metadata.namespace, NS, `${d.kind}/${d.metadata.name}`);
    }
    assert.equal(docs.find((d) => d.kind === 'Namespace')?.metadata.name, NS);
  });

  test('no RBAC rule grants more than the operator needs, and nothing it needs is missing', () => {
    assert.deepEqual(checkRbac(parseDocs(rendered), NS), []);
  });

  test('the Deployment runs restricted, with probes, metrics port and leader election', () => {
    const deployment = parseDocs(rendered).find((d) => d.kind === 'Deployment') as DeploymentObject;
    assert.deepEqual(checkDeployment(deployment), []);
  });

  test('server-side apply accepts it without warnings (Pod Security "restricted" included)', async () => {
    const applied = await kubectlRaw(['apply', '--server-side', '--field-manager=manifests-test', '-f', '-'], rendered);
    assert.equal(applied.code, 0, applied.stderr);
    assert.doesNotMatch(applied.stderr, /warning/i);
    assert.match(applied.stdout, new RegExp(`deployment.apps/${OPERATOR_NAME} serverside-applied`));
    // What the apiserver stored still has every setting (nothing dropped as unknown).
    const stored = JSON.parse(await cluster.kubectl(['get', 'deployment', '-n', NS, OPERATOR_NAME, '-o', 'json'])) as DeploymentObject;
    assert.deepEqual(checkDeployment(stored), []);
    const ns = JSON.parse(await cluster.kubectl(['get', 'namespace', NS, '-o', 'json'])) as K8sObject;
    assert.equal(ns.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
  });

  test('the apiserver authorises exactly the intended access for the operator ServiceAccount', async () => {
    // "resource/status" means a subresource here (kubectl's --subresource flag).
    const can = async (verb: string, resource: string, ns?: string): Promise<boolean> => {
      const [res = '', sub] = resource.split('/');
      const r = await kubectlRaw(['auth', 'can-i', `--as=${SA}`, verb, res, ...(sub ? [`--subresource=${sub}`] : []), ...(ns ? ['-n', ns] : ['--all-namespaces'])]);
      return r.stdout.trim() === 'yes';
    };
    const yes: Array<[string, string, string?]> = [
      ['watch', 'workloadentries.networking.istio.io'],
      ['delete', 'workloadentries.networking.istio.io', 'any-ns'],
      ['patch', 'workloadentries.networking.istio.io/status', 'any-ns'],
      ['list', 'vmregistrysources.vmregistry.io'],
      ['update', 'vmregistrysources.vmregistry.io/status', 'any-ns'],
      ['create', 'events', 'any-ns'],
      ['get', 'events', 'any-ns'],
      ['patch', 'events', 'any-ns'],
      ['patch', 'serviceentries.networking.istio.io', 'any-ns'],
      ['list', 'serviceentries.networking.istio.io'],
      ['patch', 'events.events.k8s.io', 'any-ns'],
      ['get', 'secrets', 'any-ns'],
      ['update', 'leases.coordination.k8s.io', NS],
    ];
    const no: Array<[string, string, string?]> = [
      ['update', 'workloadentries.networking.istio.io', 'any-ns'],
      ['delete', 'workloadentries.networking.istio.io/status', 'any-ns'],
      ['patch', 'vmregistrysources.vmregistry.io', 'any-ns'],
      ['patch', 'vmregistrysources.vmregistry.io/finalizers', 'any-ns'],
      ['create', 'vmregistrysources.vmregistry.io', 'any-ns'],
      ['delete', 'vmregistrysources.vmregistry.io', 'any-ns'],
      ['list', 'secrets', 'any-ns'],
      ['watch', 'secrets'],
      ['create', 'secrets', NS],
      ['get', 'leases.coordination.k8s.io', 'kube-system'],
      ['delete', 'leases.coordination.k8s.io', NS],
      ['get', 'configmaps', NS],
      ['list', 'pods'],
      ['update', 'serviceentries.networking.istio.io', 'any-ns'],
      ['get', 'destinationrules.networking.istio.io', 'any-ns'],
    ];
    for (const [verb, resource, ns] of yes) assert.equal(await can(verb, resource, ns), true, `${verb} ${resource} ${ns ?? '(all namespaces)'}`);
    for (const [verb, resource, ns] of no) assert.equal(await can(verb, resource, ns), false, `${verb} ${resource} ${ns ?? '(all namespaces)'}`);
  });
});

describe('config/samples', () => {
  before(async () => {
    await cluster.kubectl(['create', 'namespace', SAMPLES_NS]);
  });

  test('every sample (Secret and VmRegistrySource) is accepted by a server-side dry run', async () => {
    const files = await yamlFilesIn(join(CONFIG_DIR, 'samples'));
    assert.equal(files.length, 3);
    for (const file of files) {
      const r = await kubectlRaw(['apply', '--dry-run=server', '-n', SAMPLES_NS, '-f', file]);
      assert.equal(r.code, 0, `${basename(file)}: ${r.stderr}`);
      for (const d of parseDocs(await readFile(file, 'utf8'))) {
        const kind = d.kind === 'Secret' ? 'secret' : 'vmregistrysource.vmregistry.io';
        assert.match(r.stdout, new RegExp(`${kind}/${d.metadata.name} created \\(server dry run\\)`), basename(file));
      }
    }
    // A dry run stores nothing.
    assert.equal((await cluster.kubectl(['get', 'vmregistrysources', '-n', SAMPLES_NS, '-o', 'name'])).trim(), '');
  });

  test('the same dry run rejects a sample broken against the CRD\'s rules (the check has teeth)', async () => {
    const docs = parseDocs(await readFile(join(CONFIG_DIR, 'samples', 'consul.yaml'), 'utf8'));
    const source = docs.find((d) => d.kind === 'VmRegistrySource') as K8sObject & { spec: Record<string, unknown> };
    source.spec['ec2'] = { region: 'eu-west-1' };
    const r = await kubectlRaw(['apply', '--dry-run=server', '-n', SAMPLES_NS, '-f', '-'], JSON.stringify(source));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /exactly one provider must be set/);
  });

  test('the samples kustomization renders all three sources with their Secrets', async () => {
    const docs = parseDocs(await cluster.kubectl(['kustomize', join(CONFIG_DIR, 'samples')]));
    assert.deepEqual(docs.filter((d) => d.kind === 'VmRegistrySource').map((d) => d.metadata.name).sort(), ['consul-payments', 'ec2-inventory', 'gce-frontends']);
    assert.equal(docs.filter((d) => d.kind === 'Secret').length, 3);
  });
});

describe('config/prometheus', () => {
  test('renders a ServiceMonitor that selects the metrics Service, and the alerts, in the operator namespace', async () => {
    const docs = parseDocs(await cluster.kubectl(['kustomize', join(CONFIG_DIR, 'prometheus')]));
    assert.deepEqual(docs.map((d) => d.kind).sort(), ['PrometheusRule', 'ServiceMonitor']);
    for (const d of docs) assert.equal(d.metadata.namespace, NS, d.kind);
    const monitor = docs.find((d) => d.kind === 'ServiceMonitor');
    const svc = parseDocs(rendered).find((d) => d.kind === 'Service');
    const labels = (monitor as unknown as { spec: { selector: { matchLabels: Record<string, string> } } }).spec.selector.matchLabels;
    for (const [k, v] of Object.entries(labels)) assert.equal(svc?.metadata.labels?.[k], v, k);
  });
});
