/**
 * Reading the deployment manifests under config/ and checking them against the
 * permissions and security settings the operator is meant to have.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../../src/dev/paths.ts';

export const CONFIG_DIR = join(REPO_ROOT, 'config');
export const OPERATOR_NAME = 'vm-registry-operator';

// Loose shapes of the Kubernetes objects the checks read.
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}
export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}
interface RoleObject extends K8sObject {
  rules?: PolicyRule[];
}
interface BindingObject extends K8sObject {
  roleRef: { apiGroup: string; kind: string; name: string };
  subjects?: Array<{ kind: string; name: string; namespace?: string }>;
}

/** Every YAML document of a (multi-document) text, empty documents dropped. */
export function parseDocs(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`invalid YAML: ${d.errors.map((e) => e.message).join('; ')}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((d): d is K8sObject => d !== null && typeof d === 'object');
}

export async function readDocs(path: string): Promise<K8sObject[]> {
  return parseDocs(await readFile(path, 'utf8'));
}

/** The resource files a kustomization.yaml lists (files only, not directories). */
export async function kustomizationFiles(dir: string): Promise<string[]> {
  const [k] = await readDocs(join(dir, 'kustomization.yaml'));
  const resources = (k as unknown as { resources?: string[] } | undefined)?.resources ?? [];
  return resources.filter((r) => /\.ya?ml$/.test(r)).map((r) => join(dir, r));
}

export async function yamlFilesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').sort().map((f) => join(dir, f));
}

/**
 * The operator's permissions, all of them. `scope: 'namespace'` rules may only be
 * granted by a Role in the operator's own namespace.
 */
export const EXPECTED_PERMISSIONS: ReadonlyArray<{ group: string; resource: string; verbs: readonly string[]; scope: 'cluster' | 'namespace' }> = [
  { group: 'networking.istio.io', resource: 'workloadentries', verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'], scope: 'cluster' },
  { group: 'networking.istio.io', resource: 'workloadentries/status', verbs: ['get', 'patch', 'update'], scope: 'cluster' },
  { group: 'networking.istio.io', resource: 'serviceentries', verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'], scope: 'cluster' },
  { group: 'vmregistry.io', resource: 'vmregistrysources', verbs: ['get', 'list', 'watch'], scope: 'cluster' },
  { group: 'vmregistry.io', resource: 'vmregistrysources/status', verbs: ['get', 'patch', 'update'], scope: 'cluster' },
  { group: 'coordination.k8s.io', resource: 'leases', verbs: ['get', 'create', 'update'], scope: 'namespace' },
  { group: '', resource: 'events', verbs: ['create', 'get', 'patch'], scope: 'cluster' },
  { group: 'events.k8s.io', resource: 'events', verbs: ['create', 'patch'], scope: 'cluster' },
  { group: '', resource: 'secrets', verbs: ['get'], scope: 'cluster' },
];

/**
 * Checks the RBAC objects among docs: the operator's ServiceAccount is granted exactly
 * EXPECTED_PERMISSIONS, no rule grants anything beyond them, and namespace-scoped
 * permissions come from a Role in the operator's namespace. Returns the violations.
 */
export function checkRbac(docs: readonly K8sObject[], operatorNamespace: string): string[] {
  const problems: string[] = [];
  const roles = new Map<string, RoleObject>();
  for (const d of docs) {
    if (d.kind === 'ClusterRole') roles.set(`ClusterRole/${d.metadata.name}`, d as RoleObject);
    if (d.kind === 'Role') roles.set(`Role/${d.metadata.namespace ?? ''}/${d.metadata.name}`, d as RoleObject);
  }
  const allowed = (group: string, resource: string, verb: string, scope: 'cluster' | 'namespace'): boolean =>
    EXPECTED_PERMISSIONS.some((p) => p.group === group && p.resource === resource && p.verbs.includes(verb) && (p.scope === scope || scope === 'namespace'));

  for (const [id, role] of roles) {
    if ((role as { aggregationRule?: unknown }).aggregationRule !== undefined) problems.push(`${id}: aggregationRule is not allowed`);
    const scope = role.kind === 'Role' ? 'namespace' : 'cluster';
    if (role.kind === 'Role' && role.metadata.namespace !== operatorNamespace) problems.push(`${id}: a Role outside the operator namespace`);
    for (const rule of role.rules ?? []) {
      if (rule.nonResourceURLs?.length) problems.push(`${id}: nonResourceURLs ${rule.nonResourceURLs.join(',')}`);
      for (const group of rule.apiGroups ?? []) {
        for (const resource of rule.resources ?? []) {
          for (const verb of rule.verbs) {
            if (group === '*' || resource === '*' || verb === '*') problems.push(`${id}: wildcard in ${group}/${resource}:${verb}`);
            else if (!allowed(group, resource, verb, scope)) problems.push(`${id}: grants ${verb} on ${group || 'core'}/${resource} (${scope})`);
          }
        }
      }
    }
  }

  // What the operator's ServiceAccount actually gets through bindings.
  const granted = new Set<string>();
  for (const d of docs) {
    if (d.kind !== 'ClusterRoleBinding' && d.kind !== 'RoleBinding') continue;
    const b = d as BindingObject;
    const id = `${b.kind}/${b.metadata.name}`;
    for (const s of b.subjects ?? []) {
      if (s.kind !== 'ServiceAccount' || s.name !== OPERATOR_NAME || s.namespace !== operatorNamespace) {
        problems.push(`${id}: unexpected subject ${s.kind}/${s.namespace ?? ''}/${s.name}`);
      }
    }
    const roleKey = b.roleRef.kind === 'Role' ? `Role/${b.metadata.namespace ?? ''}/${b.roleRef.name}` : `ClusterRole/${b.roleRef.name}`;
    const role = roles.get(roleKey);
    if (!role) {
      problems.push(`${id}: refers to ${roleKey}, which is not in the manifests`);
      continue;
    }
    const scope = b.kind === 'RoleBinding' ? 'namespace' : 'cluster';
    if (b.kind === 'RoleBinding' && b.metadata.namespace !== operatorNamespace) problems.push(`${id}: a RoleBinding outside the operator namespace`);
    for (const rule of role.rules ?? []) {
      for (const group of rule.apiGroups ?? []) for (const resource of rule.resources ?? []) for (const verb of rule.verbs) granted.add(`${scope}:${group}/${resource}:${verb}`);
    }
  }
  for (const p of EXPECTED_PERMISSIONS) {
    for (const verb of p.verbs) {
      if (!granted.has(`${p.scope}:${p.group}/${p.resource}:${verb}`)) problems.push(`missing: ${verb} on ${p.group || 'core'}/${p.resource} (${p.scope})`);
    }
  }
  return problems;
}

interface Container {
  name: string;
  image?: string;
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  livenessProbe?: { httpGet?: { path: string; port: number | string } };
  readinessProbe?: { httpGet?: { path: string; port: number | string } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
}
export interface DeploymentObject extends K8sObject {
  spec: {
    replicas?: number;
    template: { spec: { serviceAccountName?: string; securityContext?: Record<string, unknown>; containers: Container[] } };
  };
}

/** Checks the operator Deployment's replicas, probes, ports, env and security settings. */
export function checkDeployment(d: DeploymentObject): string[] {
  const problems: string[] = [];
  const expect = (ok: boolean, what: string): void => {
    if (!ok) problems.push(what);
  };
  const pod = d.spec.template.spec;
  expect(d.spec.replicas === 2, 'replicas is 2');
  expect(pod.serviceAccountName === OPERATOR_NAME, 'runs as the operator ServiceAccount');
  expect(pod.securityContext?.['runAsNonRoot'] === true, 'pod runAsNonRoot');
  expect((pod.securityContext?.['seccompProfile'] as { type?: string } | undefined)?.type === 'RuntimeDefault', 'pod seccompProfile RuntimeDefault');
  expect(pod.containers.length === 1, 'one container');
  for (const c of pod.containers) {
    const sc = c.securityContext ?? {};
    expect(sc['runAsNonRoot'] === true, `${c.name}: runAsNonRoot`);
    expect(sc['readOnlyRootFilesystem'] === true, `${c.name}: readOnlyRootFilesystem`);
    expect(sc['allowPrivilegeEscalation'] === false, `${c.name}: allowPrivilegeEscalation false`);
    expect(sc['privileged'] !== true, `${c.name}: not privileged`);
    const caps = sc['capabilities'] as { drop?: string[]; add?: string[] } | undefined;
    expect(caps?.drop?.includes('ALL') === true && !caps.add?.length, `${c.name}: capabilities drop ALL, add none`);
    expect((sc['seccompProfile'] as { type?: string } | undefined)?.type === 'RuntimeDefault', `${c.name}: seccompProfile RuntimeDefault`);
    const args = c.args ?? [];
    expect(args[0] === 'run', `${c.name}: runs "vmreg run"`);
    expect(args.includes('--leader-elect=true'), `${c.name}: --leader-elect=true`);
    expect(args.includes('--metrics-bind-address=:8080'), `${c.name}: metrics on :8080`);
    expect(args.includes('--health-probe-bind-address=:8081'), `${c.name}: probes on :8081`);
    const env = new Map((c.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
    expect(env.get('POD_NAMESPACE') === 'metadata.namespace', `${c.name}: POD_NAMESPACE from the downward API`);
    expect(env.get('POD_NAME') === 'metadata.name', `${c.name}: POD_NAME from the downward API`);
    const ports = new Map((c.ports ?? []).map((p) => [p.name, p.containerPort]));
    expect(ports.get('metrics') === 8080, `${c.name}: port 8080 named metrics`);
    const probePort = (p: number | string | undefined): number | undefined => (typeof p === 'string' ? ports.get(p) : p);
    expect(c.livenessProbe?.httpGet?.path === '/healthz' && probePort(c.livenessProbe.httpGet.port) === 8081, `${c.name}: liveness /healthz on 8081`);
    expect(c.readinessProbe?.httpGet?.path === '/readyz' && probePort(c.readinessProbe.httpGet.port) === 8081, `${c.name}: readiness /readyz on 8081`);
    for (const r of ['cpu', 'memory']) {
      expect(c.resources?.requests?.[r] !== undefined, `${c.name}: ${r} request`);
      expect(c.resources?.limits?.[r] !== undefined, `${c.name}: ${r} limit`);
    }
  }
  return problems;
}
