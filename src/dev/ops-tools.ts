/**
 * helm and promtool, built from their published Go modules (tools/helm, tools/promtool)
 * for the tests of the Helm chart and of the Prometheus alert rules.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureGoTools, ToolBuildError } from './gobuild.ts';
import { toolsDir } from './paths.ts';

/** Pinned in tools/<name>/go.mod; repeated here for the version stamped into the binary. */
export const OPS_TOOL_VERSIONS = {
  helm: 'v3.22.0',
  prometheus: 'v0.316.0',
} as const;

/**
 * The Kubernetes minor version helm's client-go speaks (k8s.io/client-go v0.M.x), stamped
 * as helm's default `.Capabilities.KubeVersion` the way helm's own Makefile does; without
 * it helm assumes 1.20 and refuses the chart's kubeVersion.
 */
async function helmKubeMinor(): Promise<string> {
  const goMod = await readFile(join(toolsDir('helm'), 'go.mod'), 'utf8');
  const minor = /^\s*k8s\.io\/client-go v0\.(\d+)\./m.exec(goMod)?.[1];
  if (!minor) throw new ToolBuildError('tools/helm/go.mod does not require k8s.io/client-go v0.M.P');
  return minor;
}

export async function ensureHelm(log?: (line: string) => void): Promise<string> {
  const v = OPS_TOOL_VERSIONS.helm;
  const minor = await helmKubeMinor();
  const kube = ['helm.sh/helm/v3/pkg/lint/rules', 'helm.sh/helm/v3/pkg/chartutil'].flatMap((p) => [`-X ${p}.k8sVersionMajor=1`, `-X ${p}.k8sVersionMinor=${minor}`]);
  const dir = await ensureGoTools(
    {
      module: 'helm',
      label: v,
      ldflags: [`-X helm.sh/helm/v3/internal/version.version=${v}`, '-X helm.sh/helm/v3/internal/version.gitTreeState=clean', ...kube].join(' '),
      binaries: { helm: 'helm.sh/helm/v3/cmd/helm' },
    },
    log,
  );
  return join(dir, 'helm');
}

/** The Go module's v0.MNN.P is Prometheus M.NN.P (v0.316.0 is 3.16.0). */
export function prometheusRelease(moduleVersion: string): string {
  const m = /^v0\.(\d)(\d{2})\.(\d+)$/.exec(moduleVersion);
  if (!m) throw new ToolBuildError(`unexpected Prometheus module version ${moduleVersion}`);
  return `${m[1]}.${Number(m[2])}.${m[3]}`;
}

export async function ensurePromtool(log?: (line: string) => void): Promise<string> {
  const v = OPS_TOOL_VERSIONS.prometheus;
  const dir = await ensureGoTools(
    {
      module: 'promtool',
      label: v,
      ldflags: `-X github.com/prometheus/common/version.Version=${prometheusRelease(v)}`,
      binaries: { promtool: 'github.com/prometheus/prometheus/cmd/promtool' },
    },
    log,
  );
  return join(dir, 'promtool');
}
