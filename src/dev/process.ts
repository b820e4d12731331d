/**
 * Child processes of the local control plane and test registries: output goes to a
 * log file, readiness is polled, and every process is killed with its group when the
 * parent exits, is interrupted, or the owner stops it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export class ProcessStartError extends Error {
  override readonly name = 'ProcessStartError';
}

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let hooked = false;

/** Removes dir when the process exits, however it exits (normal end, error, Ctrl-C). */
export function removeOnExit(dir: string): void {
  hookExit();
  tempDirs.add(dir);
}

/** The owner removed dir itself. */
export function forgetOnExit(dir: string): void {
  tempDirs.delete(dir);
}

function cleanUp(): void {
  for (const c of live) killGroup(c, 'SIGKILL');
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanUp);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanUp();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

/** Distinct free ports: the OS may hand the same free port out twice in a row. */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** A free TCP port on 127.0.0.1 (the OS picks; a small race with other processes remains). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePromise(port));
    });
  });
}

export class ManagedProcess {
  readonly name: string;
  readonly logFile: string;
  private readonly child: ChildProcess;
  private exited: Promise<number | null>;

  private constructor(name: string, child: ChildProcess, logFile: string) {
    this.name = name;
    this.child = child;
    this.logFile = logFile;
    this.exited = new Promise((r) => child.on('exit', (code) => r(code)));
    void this.exited.then(() => live.delete(child));
  }

  static start(name: string, command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): ManagedProcess {
    hookExit();
    const out = createWriteStream(logFile, { flags: 'a' });
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    child.on('error', (e) => out.write(`spawn error: ${e.message}\n`));
    live.add(child);
    return new ManagedProcess(name, child, logFile);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  async logTail(chars = 3000): Promise<string> {
    try {
      return (await readFile(this.logFile, 'utf8')).slice(-chars);
    } catch {
      return '';
    }
  }

  /** Polls probe until it returns true; fails early if the process exits. */
  async waitUntil(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new ProcessStartError(`${this.name} exited before ${what}; its log (${this.logFile}) ends with:\n${await this.logTail()}`);
      }
      try {
        if (await probe()) return;
      } catch {
        /* not yet */
      }
      await sleep(100);
    }
    throw new ProcessStartError(`${this.name} did not become ready (${what}) within ${timeoutMs} ms; log ${this.logFile}:\n${await this.logTail()}`);
  }

  /** SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    killGroup(this.child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(this.child, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Immediate SIGKILL (to simulate a crash). */
  async kill(): Promise<void> {
    killGroup(this.child, 'SIGKILL');
    await this.exited;
  }
}
