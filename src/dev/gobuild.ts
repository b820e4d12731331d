/**
 * Builds main packages of one of the project's wrapper modules (tools/<name>) with the
 * machine's Go, once, into a cache directory keyed by the module's go.mod and go.sum.
 * Later calls return the cached binaries at once.
 */
import { createHash } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cacheRoot, toolsDir } from './paths.ts';

const execFileP = promisify(execFile);

export class ToolBuildError extends Error {
  override readonly name = 'ToolBuildError';
}

export interface GoToolSpec {
  /** tools/<module> holds go.mod and go.sum. */
  readonly module: string;
  /** Binary name → Go package path. */
  readonly binaries: Readonly<Record<string, string>>;
  readonly ldflags?: string;
  /** Extra key material for the cache key (e.g. the version stamped by ldflags). */
  readonly label: string;
}

async function goVersion(): Promise<string> {
  try {
    const { stdout } = await execFileP('go', ['env', 'GOVERSION']);
    return stdout.trim();
  } catch (e) {
    throw new ToolBuildError('Go is required to build the local control plane and Consul; install Go 1.25 or newer and put it on PATH', { cause: e });
  }
}

function run(cmd: string, args: string[], cwd: string, log: (line: string) => void): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GOFLAGS: '-mod=mod -buildvcs=false' } });
    let tail = '';
    const onData = (d: Buffer): void => {
      tail = (tail + d.toString()).slice(-4000);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const ticker = setInterval(() => log(`  still building ${args.at(-1) ?? ''}...`), 30_000);
    child.on('error', (e) => {
      clearInterval(ticker);
      reject(new ToolBuildError(`cannot run ${cmd}: ${e.message}`));
    });
    child.on('close', (code) => {
      clearInterval(ticker);
      if (code === 0) resolvePromise();
      else reject(new ToolBuildError(`${cmd} ${args.join(' ')} failed (exit ${code}) in ${cwd}:\n${tail}`));
    });
  });
}

/** Returns the directory holding the built binaries, building them first if needed. */
export async function ensureGoTools(spec: GoToolSpec, log: (line: string) => void = (l) => process.stderr.write(l + '\n')): Promise<string> {
  const dir = toolsDir(spec.module);
  const hash = createHash('sha256');
  hash.update(await readFile(join(dir, 'go.mod')));
  hash.update(await readFile(join(dir, 'go.sum')));
  hash.update(await goVersion());
  hash.update(JSON.stringify(spec));
  const key = `${spec.module}-${spec.label}-${hash.digest('hex').slice(0, 12)}`;
  const binDir = join(cacheRoot(), key);
  const names = Object.keys(spec.binaries);
  if (names.every((n) => existsSync(join(binDir, n)))) return binDir;

  log(`Building ${names.join(', ')} (${spec.label}) from Go modules into ${binDir}; the first build takes several minutes.`);
  await mkdir(cacheRoot(), { recursive: true });
  const tmp = await mkdtemp(join(cacheRoot(), `.build-${spec.module}-`));
  try {
    for (const [name, pkg] of Object.entries(spec.binaries)) {
      const started = Date.now();
      const args = ['build', '-trimpath', '-ldflags', `-s -w ${spec.ldflags ?? ''}`.trim(), '-o', join(tmp, name), pkg];
      await run('go', args, dir, log);
      log(`  built ${name} in ${Math.round((Date.now() - started) / 1000)}s`);
    }
    await rm(binDir, { recursive: true, force: true });
    await rename(tmp, binDir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return binDir;
}
