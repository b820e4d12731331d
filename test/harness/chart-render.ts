/**
 * Comparing what the Helm chart and config/default render: the permissions the operator's
 * ServiceAccount gets, and the settings of its Deployment.
 */
import type { DeploymentObject, K8sObject, PolicyRule } from './manifests.ts';

interface RoleLike extends K8sObject {
  rules?: PolicyRule[];
}
interface BindingLike extends K8sObject {
  roleRef: { kind: string; name: string };
  subjects?: Array<{ kind: string; name: string; namespace?: string }>;
}

/**
 * Every permission a ServiceAccount of operatorNamespace is granted, as sorted
 * "scope group/resource verb" lines; scope is "cluster", "operator-namespace" or
 * "namespace <name>". Names of roles and bindings do not matter.
 */
export function grantedPermissions(docs: readonly K8sObject[], operatorNamespace: string): string[] {
  const roles = new Map<string, RoleLike>();
  for (const d of docs) {
    if (d.kind === 'ClusterRole') roles.set(`ClusterRole/${d.metadata.name}`, d as RoleLike);
    if (d.kind === 'Role') roles.set(`Role/${d.metadata.namespace ?? ''}/${d.metadata.name}`, d as RoleLike);
  }
  const out = new Set<string>();
  for (const d of docs) {
    if (d.kind !== 'ClusterRoleBinding' && d.kind !== 'RoleBinding') continue;
    const b = d as BindingLike;
    if (!(b.subjects ?? []).some((s) => s.kind === 'ServiceAccount' && s.namespace === operatorNamespace)) continue;
    const ns = b.metadata.namespace ?? '';
    const scope = b.kind === 'ClusterRoleBinding' ? 'cluster' : ns === operatorNamespace ? 'operator-namespace' : `namespace ${ns}`;
    const role = roles.get(b.roleRef.kind === 'Role' ? `Role/${ns}/${b.roleRef.name}` : `ClusterRole/${b.roleRef.name}`);
    if (!role) throw new Error(`${b.kind}/${b.metadata.name} refers to ${b.roleRef.kind}/${b.roleRef.name}, which is not rendered`);
    for (const r of role.rules ?? []) {
      const names = r.resourceNames?.length ? ` (${[...r.resourceNames].sort().join(',')})` : '';
      for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) for (const v of r.verbs) out.add(`${scope} ${g || 'core'}/${res} ${v}${names}`);
    }
  }
  return [...out].sort();
}

/** The Deployment settings that must not drift between the chart and config/. */
export function deploymentSettings(d: DeploymentObject): Record<string, unknown> {
  const pod = d.spec.template.spec as unknown as Record<string, unknown> & { containers: Array<Record<string, unknown>> };
  const c = pod.containers[0] ?? {};
  const containerKeys = ['image', 'imagePullPolicy', 'args', 'env', 'ports', 'livenessProbe', 'readinessProbe', 'resources', 'securityContext', 'volumeMounts'];
  return {
    replicas: d.spec.replicas,
    podSecurityContext: pod['securityContext'],
    terminationGracePeriodSeconds: pod['terminationGracePeriodSeconds'],
    volumes: pod['volumes'],
    containers: pod.containers.map((x) => x['name']),
    ...Object.fromEntries(containerKeys.map((k) => [k, c[k]])),
  };
}

/** True when every label of selector is on labels. */
export function selects(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v) && Object.keys(selector ?? {}).length > 0;
}
