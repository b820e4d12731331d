/** Versions of the real components the harness and the demo run: pinned in one place. */
export const VERSIONS = {
  /** k8s.io/kubernetes; its go.mod pins etcd (tools/kube/go.mod requires the same etcd). */
  kubernetes: 'v1.35.4',
  etcd: 'v3.6.5',
  /** github.com/hashicorp/consul release required by tools/consul/go.mod, and its commit (stamped into `consul version`). */
  consul: 'v1.22.2',
  consulCommit: '71f21bf33d6070fc1522b3ba225b4aac0a390049',
  /** istio.io/api module that carries Istio's CRDs. */
  istioApi: 'v1.31.1',
  /** istio.io/istio pseudo-version required by tools/istio/go.mod (istiod's pilot-discovery and crd-all.gen.yaml). */
  istio: 'v0.0.0-20260827124520-eed52ebb66ad',
} as const;
