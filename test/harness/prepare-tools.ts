/**
 * `make tools`: builds or installs every real component the tests run (control plane,
 * Consul agent, istiod, helm, promtool, Lua VM, moto, Istio's CRDs) before the test runner starts, so that the
 * first, long build on a fresh machine prints its progress instead of running silently
 * inside a test's `before` hook. With a warm cache every step returns at once.
 */
import { ensureConsulBinary } from '../../src/dev/consul-agent.ts';
import { istioCrdsYaml } from '../../src/dev/istio-crds.ts';
import { ensurePilotDiscovery, istioAllCrdsYaml } from '../../src/dev/istiod.ts';
import { ensureKubeBinaries } from '../../src/dev/kube-binaries.ts';
import { ensureMoto } from '../../src/dev/moto.ts';
import { ensureHelm, ensurePromtool } from '../../src/dev/ops-tools.ts';
import { ensureGlua } from './argocd-health.ts';

type Step = readonly [what: string, run: (log: (line: string) => void) => Promise<unknown>];

const STEPS: readonly Step[] = [
  ['moto (EC2 API server, from PyPI)', (log) => ensureMoto(log)],
  ["Istio's CRDs (istio.io/api module)", () => istioCrdsYaml()],
  ['etcd, kube-apiserver, kube-controller-manager, kubectl', (log) => ensureKubeBinaries(log)],
  ['Consul agent', (log) => ensureConsulBinary(log)],
  ['gopher-lua (Argo CD health scripts)', (log) => ensureGlua(log)],
  ["istiod's pilot-discovery and Istio's full CRD set (istio.io/istio module)", async (log) => Promise.all([ensurePilotDiscovery(log), istioAllCrdsYaml()])],
  ['helm (chart tests)', (log) => ensureHelm(log)],
  ['promtool (alert rule tests)', (log) => ensurePromtool(log)],
];

const started = Date.now();
const seconds = (since: number): string => `${Math.round((Date.now() - since) / 1000)}s`;
const log = (line: string): void => void process.stdout.write(`  ${line}\n`);
for (const [what, run] of STEPS) {
  const t = Date.now();
  process.stdout.write(`tools: ${what}\n`);
  await run(log);
  process.stdout.write(`tools: ${what} ready (${seconds(t)})\n`);
}
process.stdout.write(`tools: all components ready in ${seconds(started)}\n`);
