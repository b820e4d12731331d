/**
 * The operator as the benchmark measures it: `vmreg run` in a process of its own (as in
 * the Deployment), optionally with its heap capped, its memory and CPU read from /proc,
 * its counters from its own /metrics, and its heap after a full collection on demand
 * (memory-probe.mjs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export interface OperatorProcessOptions {
  /** The entry point: src/cli/main.ts (type stripping) or a compiled dist/cli/main.js. */
  readonly main: string;
  readonly kubeconfig: string;
  readonly namespaces: readonly string[];
  readonly maxOldSpaceMb?: number;
  readonly qps: number;
  readonly burst: number;
  readonly workDir: string;
  readonly onStderr?: (line: string) => void;
  /** More Node options for the operator (e.g. --cpu-prof for a profile). */
  readonly nodeOptions?: readonly string[];
}

export interface MemoryReading {
  readonly rssBytes: number;
  /** Peak resident memory of the process so far (VmHWM). */
  readonly peakRssBytes: number;
  readonly heapUsedBytes: number;
  readonly heapTotalBytes: number;
  /** Memory of C++ objects bound to JavaScript objects (buffers included), after the collection. */
  readonly externalBytes: number;
  /** Where the resident memory is, from /proc/<pid>/smaps. */
  readonly resident: ResidentBreakdown;
}

/** Resident memory by kind of mapping. */
export interface ResidentBreakdown {
  /** Pages of the node binary (code and read-only data). */
  readonly nodeBinaryBytes: number;
  /** malloc's main arena ([heap]). */
  readonly brkBytes: number;
  /** Anonymous mappings: V8's heap, other malloc arenas and large mallocs. */
  readonly anonymousBytes: number;
  /** Every other file mapping (shared libraries). */
  readonly otherFilesBytes: number;
}

/** Sums the Rss of each mapping in smaps by kind. */
export function residentBreakdown(smaps: string): ResidentBreakdown {
  const sums = { nodeBinaryBytes: 0, brkBytes: 0, anonymousBytes: 0, otherFilesBytes: 0 };
  let kind: keyof ResidentBreakdown = 'anonymousBytes';
  for (const line of smaps.split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping) {
      const name = mapping[1] ?? '';
      kind = name === '' || name.startsWith('[anon') ? 'anonymousBytes' : name === '[heap]' ? 'brkBytes' : name.endsWith('/node') ? 'nodeBinaryBytes' : name.startsWith('[') ? 'anonymousBytes' : 'otherFilesBytes';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) sums[kind] += Number(rss[1]) * 1024;
  }
  return sums;
}

const CLOCK_TICKS = 100;
/** What config/manager's Deployment sets besides the heap cap, so the bench measures what an install gets. */
export const DEPLOYMENT_NODE_FLAGS = ['--max-semi-space-size=4'] as const;
/** What the image's entry point gives node (flags NODE_OPTIONS refuses). */
export const IMAGE_NODE_FLAGS = ['--memory-saver-mode'] as const;
export const DEPLOYMENT_ENV = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '65536', MALLOC_TRIM_THRESHOLD_: '131072' } as const;
const BENCH_DIR = new URL('.', import.meta.url).pathname;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export class OperatorProcess {
  private readonly child: ChildProcess;
  private readonly memoryFile: string;
  readonly metricsPort: number;
  readonly probePort: number;
  readonly startedAt: number;
  private exited: Promise<number | null>;

  private constructor(child: ChildProcess, memoryFile: string, metricsPort: number, probePort: number) {
    this.child = child;
    this.memoryFile = memoryFile;
    this.metricsPort = metricsPort;
    this.probePort = probePort;
    this.startedAt = performance.now();
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static async start(o: OperatorProcessOptions): Promise<OperatorProcess> {
    const metricsPort = await freePort();
    const probePort = await freePort();
    const memoryFile = join(o.workDir, `memory-${Date.now()}.json`);
    const args = [
      '--expose-gc',
      ...IMAGE_NODE_FLAGS,
      ...DEPLOYMENT_NODE_FLAGS,
      ...(o.nodeOptions ?? []),
      ...(o.maxOldSpaceMb ? [`--max-old-space-size=${o.maxOldSpaceMb}`] : []),
      '--import',
      pathToFileURL(join(BENCH_DIR, 'memory-probe.mjs')).href,
      o.main,
      'run',
      `--kubeconfig=${o.kubeconfig}`,
      `--metrics-bind-address=127.0.0.1:${metricsPort}`,
      `--health-probe-bind-address=127.0.0.1:${probePort}`,
      `--kube-api-qps=${o.qps}`,
      `--kube-api-burst=${o.burst}`,
      '--log-level=warn',
      ...(o.namespaces.length > 0 ? [`--namespaces=${o.namespaces.join(',')}`] : []),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', process.env['BENCH_OPERATOR_STDOUT'] === '1' ? 'inherit' : 'ignore', 'pipe'], env: { ...process.env, ...DEPLOYMENT_ENV, BENCH_MEMORY_FILE: memoryFile } });
    let buffered = '';
    child.stderr?.on('data', (d: Buffer) => {
      buffered += d.toString();
      for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
        o.onStderr?.(buffered.slice(0, i));
        buffered = buffered.slice(i + 1);
      }
    });
    const p = new OperatorProcess(child, memoryFile, metricsPort, probePort);
    await p.waitReady();
    return p;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves once /readyz answers 200 (caches synced). */
  async waitReady(timeoutMs = 120_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`the operator exited with ${this.child.exitCode ?? this.child.signalCode}`);
      try {
        const r = await fetch(`http://127.0.0.1:${this.probePort}/readyz`, { signal: AbortSignal.timeout(1000) });
        if (r.status === 200) return performance.now();
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error('the operator did not become ready');
  }

  /** user + system CPU seconds of the process so far. */
  async cpuSeconds(): Promise<number> {
    const stat = await readFile(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  }

  /** Resident memory now and at its peak, and the heap after a full collection. */
  async memory(): Promise<MemoryReading> {
    const before = await readFile(this.memoryFile, 'utf8').catch(() => '');
    this.child.kill('SIGUSR2');
    let heap: { heapUsed: number; heapTotal: number; external: number } | undefined;
    for (let i = 0; i < 2400 && heap === undefined; i++) {
      await sleep(25);
      const text = await readFile(this.memoryFile, 'utf8').catch(() => '');
      if (text !== '' && text !== before) heap = JSON.parse(text) as { heapUsed: number; heapTotal: number; external: number };
    }
    const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    const resident = residentBreakdown(await readFile(`/proc/${this.pid}/smaps`, 'utf8'));
    return { rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM'), heapUsedBytes: heap?.heapUsed ?? NaN, heapTotalBytes: heap?.heapTotal ?? NaN, externalBytes: heap?.external ?? NaN, resident };
  }

  /** Sum of a counter over the label sets that match (a value `!x`: any value but x) on the operator's /metrics. */
  async counter(name: string, match: Readonly<Record<string, string>> = {}): Promise<number> {
    return (await this.scrape()).sum(name, match);
  }

  /** One scrape of the operator's /metrics, to read several counters from (each scrape costs the operator CPU). */
  async scrape(): Promise<Scrape> {
    const text = await (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
    return { sum: (name, match = {}) => sumOf(text, name, match) };
  }

  /** SIGTERM, and the exit code. */
  async stop(): Promise<number | null> {
    if (this.running) this.child.kill('SIGTERM');
    const code = await Promise.race([this.exited, sleep(30_000).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      this.child.kill('SIGKILL');
      return this.exited;
    }
    await rm(this.memoryFile, { force: true });
    return code;
  }
}

export interface Scrape {
  /** Sum of a counter over the label sets that match (a value `!x`: any value but x). */
  sum(name: string, match?: Readonly<Record<string, string>>): number;
}

function sumOf(text: string, name: string, match: Readonly<Record<string, string>>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = m[2] ?? '';
    const matches = ([k, v]: [string, string]): boolean => (v.startsWith('!') ? !labels.includes(`${k}="${v.slice(1)}"`) : labels.includes(`${k}="${v}"`));
    if (Object.entries(match).every(matches)) sum += Number(m[3]);
  }
  return sum;
}
