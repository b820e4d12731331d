/**
 * Istio's own CRDs for WorkloadEntry, ServiceEntry and WorkloadGroup, read from the
 * published istio.io/api Go module at a pinned version (never hand-written here).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { VERSIONS } from './versions.ts';

const execFileP = promisify(execFile);
const WANTED = new Set(['workloadentries.networking.istio.io', 'serviceentries.networking.istio.io', 'workloadgroups.networking.istio.io']);

/** Returns the three CRDs as a multi-document YAML string. */
export async function istioCrdsYaml(): Promise<string> {
  let dir: string;
  try {
    const { stdout } = await execFileP('go', ['mod', 'download', '-json', `istio.io/api@${VERSIONS.istioApi}`], { cwd: '/' });
    dir = (JSON.parse(stdout) as { Dir: string }).Dir;
  } catch (e) {
    throw new Error(`cannot download istio.io/api@${VERSIONS.istioApi} with Go: ${(e as Error).message}`, { cause: e });
  }
  const text = await readFile(join(dir, 'kubernetes', 'customresourcedefinitions.gen.yaml'), 'utf8');
  const docs = parseAllDocuments(text)
    .map((d) => d.toJSON() as { metadata?: { name?: string } } | null)
    .filter((d) => d?.metadata?.name !== undefined && WANTED.has(d.metadata.name));
  if (docs.length !== WANTED.size) throw new Error(`istio.io/api@${VERSIONS.istioApi} does not hold the expected Istio networking CRDs`);
  return docs.map((d) => JSON.stringify(d)).join('\n---\n');
}
