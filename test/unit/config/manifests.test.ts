/**
 * The raw kustomize bases (no kustomize needed): the Deployment's settings and the
 * RBAC rules. test/integration/manifests.test.ts checks the rendered output against a
 * real apiserver.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../../../src/dev/paths.ts';
import { DEPLOYMENT_ENV, DEPLOYMENT_NODE_FLAGS } from '../../../bench/operator-process.ts';
import { CONFIG_DIR, checkDeployment, checkRbac, kustomizationFiles, readDocs, type DeploymentObject, type K8sObject } from '../../harness/manifests.ts';

async function base(name: string): Promise<K8sObject[]> {
  const files = await kustomizationFiles(join(CONFIG_DIR, name));
  return (await Promise.all(files.map((f) => readDocs(f)))).flat();
}

describe('config/ bases', () => {
  test('the Deployment meets the security and probe requirements', async () => {
    const deployment = (await base('manager')).find((d) => d.kind === 'Deployment') as DeploymentObject | undefined;
    assert.ok(deployment);
    assert.deepEqual(checkDeployment(deployment), []);
  });

  test("the Deployment's Node and malloc settings are the ones make bench measures", async () => {
    const deployment = (await base('manager')).find((d) => d.kind === 'Deployment') as DeploymentObject | undefined;
    const env = new Map((deployment?.spec.template.spec.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    for (const flag of DEPLOYMENT_NODE_FLAGS) assert.ok(env.get('NODE_OPTIONS')?.split(' ').includes(flag), flag);
    for (const [name, value] of Object.entries(DEPLOYMENT_ENV)) assert.equal(env.get(name), value, name);
  });

  test('checkDeployment notices a weakened securityContext', async () => {
    const deployment = (await base('manager')).find((d) => d.kind === 'Deployment') as DeploymentObject;
    const c = deployment.spec.template.spec.containers[0];
    assert.ok(c);
    c.securityContext = { ...c.securityContext, readOnlyRootFilesystem: false, capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] } };
    assert.deepEqual(checkDeployment(deployment), ['manager: readOnlyRootFilesystem', 'manager: capabilities drop ALL, add none']);
  });

  test('RBAC grants exactly the expected permissions', async () => {
    assert.deepEqual(checkRbac(await base('rbac'), 'system'), []);
  });

  test('checkRbac rejects wildcards, extra verbs and leases outside the own namespace', async () => {
    const docs = await base('rbac');
    const extra: K8sObject = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'too-much' },
      rules: [
        { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get'] },
        { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
      ],
    };
    assert.deepEqual(checkRbac([...docs, extra], 'system'), [
      'ClusterRole/too-much: grants list on core/secrets (cluster)',
      'ClusterRole/too-much: grants get on coordination.k8s.io/leases (cluster)',
      'ClusterRole/too-much: wildcard in */*:*',
    ]);
    const withoutLeases = docs.filter((d) => d.kind !== 'RoleBinding');
    assert.ok(checkRbac(withoutLeases, 'system').some((p) => p.startsWith('missing: get on coordination.k8s.io/leases')));
  });

  test('the metrics Service targets the Deployment\'s metrics port', async () => {
    const docs = await base('manager');
    const svc = docs.find((d) => d.kind === 'Service') as K8sObject & { spec: { selector: Record<string, string>; ports: Array<{ name: string; targetPort: string }> } };
    const deployment = docs.find((d) => d.kind === 'Deployment') as DeploymentObject & { spec: { template: { metadata: { labels: Record<string, string> } } } };
    for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(deployment.spec.template.metadata.labels[k], v, `selector ${k}`);
    assert.deepEqual(svc.spec.ports.map((p) => [p.name, p.targetPort]), [['metrics', 'metrics']]);
    const [monitor] = await base('prometheus');
    const sel = (monitor as unknown as { spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string }> } }).spec;
    for (const [k, v] of Object.entries(sel.selector.matchLabels)) assert.equal(svc.metadata.labels?.[k], v, `ServiceMonitor selects the Service by ${k}`);
    assert.equal(sel.endpoints[0]?.port, 'metrics');
  });

  test('the image tag is the package version', async () => {
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const [k] = await readDocs(join(CONFIG_DIR, 'manager', 'kustomization.yaml'));
    const images = (k as unknown as { images: Array<{ name: string; newTag: string }> }).images;
    assert.deepEqual(images, [{ name: 'vm-registry-operator', newTag: pkg.version }]);
  });
});
