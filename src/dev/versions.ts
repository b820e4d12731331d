/** Versions of the real components the harness and the demo run: pinned in one place. */
export const VERSIONS = {
  /** k8s.io/kubernetes; its go.mod pins etcd (tools/kube/go.mod requires the same etcd). */
  kubernetes: 'v1.35.4',
  etcd: 'v3.6.5',
  /** istio.io/api module that carries Istio's CRDs. */
  istioApi: 'v1.31.1',
} as const;
