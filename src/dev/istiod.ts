/** istiod (pilot-discovery), built from tools/istio into the cache outside the repo. */
import { join } from 'node:path';
import { ensureGoTools } from './gobuild.ts';
import { VERSIONS } from './versions.ts';

export async function ensurePilotDiscovery(log?: (line: string) => void): Promise<string> {
  const dir = await ensureGoTools(
    {
      module: 'istio',
      label: VERSIONS.istio.slice(-12),
      binaries: { 'pilot-discovery': 'istio.io/istio/pilot/cmd/pilot-discovery' },
    },
    log,
  );
  return join(dir, 'pilot-discovery');
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '\0')) {
  const started = Date.now();
  const bin = await ensurePilotDiscovery();
  process.stdout.write(`${bin} ready in ${Math.round((Date.now() - started) / 1000)}s\n`);
}
