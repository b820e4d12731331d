/** The versions the harness stamps and prints agree with the wrapper modules that build them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../../src/dev/paths.ts';
import { VERSIONS } from '../../../src/dev/versions.ts';

function required(module: string, path: string): string | undefined {
  const gomod = readFileSync(join(REPO_ROOT, 'tools', module, 'go.mod'), 'utf8');
  const escaped = path.replaceAll('.', '\\.').replaceAll('/', '\\/');
  return new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, 'm').exec(gomod)?.[1];
}

test('tools/kube/go.mod requires the Kubernetes and etcd versions of versions.ts', () => {
  assert.equal(required('kube', 'k8s.io/kubernetes'), VERSIONS.kubernetes);
  assert.equal(required('kube', 'go.etcd.io/etcd/server/v3'), VERSIONS.etcd);
});

test('tools/consul/go.mod requires the Consul version of versions.ts', () => {
  assert.equal(required('consul', 'github.com/hashicorp/consul'), VERSIONS.consul);
});

test('tools/istio/go.mod requires the istio.io/istio version of versions.ts', () => {
  assert.equal(required('istio', 'istio.io/istio'), VERSIONS.istio);
});
