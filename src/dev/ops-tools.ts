/**
 * helm and promtool, built from their published Go modules (tools/helm, tools/promtool)
 * for the tests of the Helm chart and of the Prometheus alert rules.
 */
import { join } from 'node:path';
import { ensureGoTools } from './gobuild.ts';

/** Pinned in tools/<name>/go.mod; repeated here for the version stamped into the binary. */
export const OPS_TOOL_VERSIONS = {
  helm: 'v3.22.0',
  prometheus: 'v0.316.0',
} as const;

export async function ensureHelm(log?: (line: string) => void): Promise<string> {
  const v = OPS_TOOL_VERSIONS.helm;
  const dir = await ensureGoTools(
    {
      module: 'helm',
      label: v,
      ldflags: `-X helm.sh/helm/v3/internal/version.version=${v} -X helm.sh/helm/v3/internal/version.gitTreeState=clean`,
      binaries: { helm: 'helm.sh/helm/v3/cmd/helm' },
    },
    log,
  );
  return join(dir, 'helm');
}

export async function ensurePromtool(log?: (line: string) => void): Promise<string> {
  const v = OPS_TOOL_VERSIONS.prometheus;
  const dir = await ensureGoTools(
    {
      module: 'promtool',
      label: v,
      ldflags: `-X github.com/prometheus/common/version.Version=${v.replace(/^v0\./, '3.')}`,
      binaries: { promtool: 'github.com/prometheus/prometheus/cmd/promtool' },
    },
    log,
  );
  return join(dir, 'promtool');
}
