/** Runs a command-line tool and returns its exit code and output, whatever the code. */
import { execFile } from 'node:child_process';

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runTool(bin: string, args: readonly string[], options: { input?: string; cwd?: string } = {}): Promise<ToolResult> {
  return new Promise((resolvePromise) => {
    const child = execFile(bin, [...args], { maxBuffer: 64 * 1024 * 1024, ...(options.cwd ? { cwd: options.cwd } : {}) }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolvePromise({ code, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** Like runTool, but a non-zero exit is an error carrying the tool's output. */
export async function runToolOk(bin: string, args: readonly string[], options: { input?: string; cwd?: string } = {}): Promise<string> {
  const r = await runTool(bin, args, options);
  if (r.code !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}
