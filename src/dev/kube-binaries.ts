/** etcd, kube-apiserver, kube-controller-manager and kubectl, built from tools/kube. */
import { join } from 'node:path';
import { ensureGoTools } from './gobuild.ts';
import { VERSIONS } from './versions.ts';

export interface KubeBinaries {
  readonly etcd: string;
  readonly apiserver: string;
  readonly controllerManager: string;
  readonly kubectl: string;
}

export async function ensureKubeBinaries(log?: (line: string) => void): Promise<KubeBinaries> {
  const v = VERSIONS.kubernetes;
  const minor = v.split('.')[1] ?? '';
  const stamp = ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']
    .flatMap((p) => [`-X ${p}.gitVersion=${v}`, `-X ${p}.gitMajor=1`, `-X ${p}.gitMinor=${minor}`])
    .join(' ');
  const dir = await ensureGoTools(
    {
      module: 'kube',
      label: v,
      ldflags: stamp,
      binaries: {
        etcd: 'go.etcd.io/etcd/server/v3',
        'kube-apiserver': 'k8s.io/kubernetes/cmd/kube-apiserver',
        'kube-controller-manager': 'k8s.io/kubernetes/cmd/kube-controller-manager',
        kubectl: 'k8s.io/kubernetes/cmd/kubectl',
      },
    },
    log,
  );
  return {
    etcd: join(dir, 'etcd'),
    apiserver: join(dir, 'kube-apiserver'),
    controllerManager: join(dir, 'kube-controller-manager'),
    kubectl: join(dir, 'kubectl'),
  };
}
