/** Where the project's own files and the build cache are. */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is src/dev/paths.ts, or dist/dev/paths.js when built). */
export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** Cache for binaries built from Go modules; outside the repo, shared by every clone. */
export function cacheRoot(): string {
  const base = process.env['VMREG_CACHE_DIR'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'vm-registry-operator');
  return base;
}

export function toolsDir(name: string): string {
  return join(REPO_ROOT, 'tools', name);
}
