/**
 * Runs config/argocd/health.lua the way Argo CD runs a resource health customization:
 * in gopher-lua (Lua 5.1), with the live object as the global `obj`, taking the table
 * the script returns. Argo CD opens only a safe subset of the standard library, so the
 * script runs in an environment without io, os, require or load*: a script that works
 * here does not depend on anything Argo CD withholds.
 *
 * gopher-lua has no JSON decoder, so the object is written as a Lua table literal,
 * converted the way Argo CD converts JSON (objects → tables with string keys, arrays →
 * tables indexed from 1, numbers → Lua numbers, null → nil).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureGoTools } from '../../src/dev/gobuild.ts';
import { REPO_ROOT } from '../../src/dev/paths.ts';

const execFileP = promisify(execFile);

export const HEALTH_SCRIPT = join(REPO_ROOT, 'config', 'argocd', 'health.lua');

/** The statuses Argo CD accepts from a health script. */
export const HEALTH_STATUSES = ['Healthy', 'Progressing', 'Degraded', 'Suspended', 'Missing', 'Unknown'] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

export interface HealthResult {
  readonly status: HealthStatus;
  readonly message: string;
}

/** Builds glua (gopher-lua's command) from tools/lua once; returns the binary's path. */
export async function ensureGlua(log?: (line: string) => void): Promise<string> {
  const dir = await ensureGoTools({ module: 'lua', label: 'gopher-lua', binaries: { glua: 'github.com/yuin/gopher-lua/cmd/glua' } }, log);
  return join(dir, 'glua');
}

/** A Lua 5.1 string literal holding exactly the UTF-8 bytes of s. */
export function luaString(s: string): string {
  let out = '"';
  for (const byte of Buffer.from(s, 'utf8')) {
    const printable = byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c;
    // A decimal escape is always three digits, so a following digit cannot extend it.
    out += printable ? String.fromCharCode(byte) : `\\${byte.toString().padStart(3, '0')}`;
  }
  return out + '"';
}

/** A Lua table-literal expression for a JSON-compatible value. */
export function toLuaLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  switch (typeof value) {
    case 'string':
      return luaString(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`cannot express ${value} in JSON`);
      return Number.isInteger(value) ? value.toString() : value.toPrecision(17);
    case 'object': {
      if (Array.isArray(value)) return `{${value.map((v) => toLuaLiteral(v)).join(', ')}}`;
      const fields = Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined && v !== null)
        .map(([k, v]) => `[${luaString(k)}] = ${toLuaLiteral(v)}`);
      return `{${fields.join(', ')}}`;
    }
    default:
      throw new TypeError(`cannot express a ${typeof value} in JSON`);
  }
}

// The driver: loads the health script, runs it in a restricted environment with the
// object as `obj`, checks the result as Argo CD does and writes it length-prefixed.
const DRIVER = (scriptPath: string, objLiteral: string): string => `
local obj = ${objLiteral}
local env = {
  obj = obj,
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
  select = select, tonumber = tonumber, tostring = tostring, type = type, unpack = unpack,
  string = string, table = table, math = math,
}
local chunk = assert(loadfile(${luaString(scriptPath)}))
setfenv(chunk, env)
local hs = chunk()
if type(hs) ~= "table" then error("health script returned " .. type(hs) .. ", not a table") end
local status = hs.status
local message = hs.message
if type(status) ~= "string" then error("hs.status is " .. type(status) .. ", not a string") end
if message == nil then message = "" end
if type(message) ~= "string" then error("hs.message is " .. type(message) .. ", not a string") end
io.write(#status, ":", status, #message, ":", message)
`;

function parseOutput(out: Buffer): { status: string; message: string } {
  const fields: string[] = [];
  let at = 0;
  for (let i = 0; i < 2; i++) {
    const colon = out.indexOf(0x3a, at);
    if (colon < 0) throw new Error(`unexpected output from glua: ${out.toString()}`);
    const len = Number(out.subarray(at, colon).toString());
    fields.push(out.subarray(colon + 1, colon + 1 + len).toString('utf8'));
    at = colon + 1 + len;
  }
  if (at !== out.length) throw new Error(`unexpected trailing output from glua: ${out.subarray(at).toString()}`);
  return { status: fields[0] ?? '', message: fields[1] ?? '' };
}

/**
 * Evaluates the health script against one object (a VmRegistrySource as the apiserver
 * returns it). Throws when the script fails or returns something Argo CD would reject.
 */
export async function runHealthCheck(obj: unknown, options: { script?: string; glua?: string } = {}): Promise<HealthResult> {
  const glua = options.glua ?? (await ensureGlua());
  const dir = await mkdtemp(join(tmpdir(), 'vmreg-health-'));
  try {
    const driver = join(dir, 'driver.lua');
    await writeFile(driver, DRIVER(options.script ?? HEALTH_SCRIPT, toLuaLiteral(obj)));
    const { stdout } = await execFileP(glua, [driver], { encoding: 'buffer', timeout: 30_000 });
    const { status, message } = parseOutput(stdout);
    if (!(HEALTH_STATUSES as readonly string[]).includes(status)) throw new Error(`health script returned unknown status "${status}"`);
    return { status: status as HealthStatus, message };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The script's text, e.g. to compare with what a ConfigMap embeds. */
export function readHealthScript(): Promise<string> {
  return readFile(HEALTH_SCRIPT, 'utf8');
}
