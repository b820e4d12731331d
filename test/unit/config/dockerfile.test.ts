/**
 * The Dockerfile cannot be built in the test environment; these checks pin the
 * properties the Deployment relies on (Node version, entry point, non-root user,
 * production-only dependencies).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../../../src/dev/paths.ts';
import { IMAGE_NODE_FLAGS } from '../../../bench/operator-process.ts';

interface Instruction {
  op: string;
  args: string;
}

function instructions(text: string): Instruction[] {
  const joined = text.replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [op = '', ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(' ') };
    });
}

/** The stages, each a list of instructions starting with its FROM. */
function stages(ins: Instruction[]): Instruction[][] {
  const out: Instruction[][] = [];
  for (const i of ins) {
    if (i.op === 'FROM') out.push([i]);
    else out.at(-1)?.push(i);
  }
  return out;
}

const read = async () => {
  const [dockerfile, pkg] = await Promise.all([readFile(join(REPO_ROOT, 'Dockerfile'), 'utf8'), readFile(join(REPO_ROOT, 'package.json'), 'utf8')]);
  return { ins: instructions(dockerfile), pkg: JSON.parse(pkg) as { bin: Record<string, string>; engines: { node: string }; devDependencies: Record<string, string> } };
};

describe('Dockerfile', () => {
  test('every stage uses the same exactly pinned node:24 image, the version package.json pins', async () => {
    const { ins, pkg } = await read();
    const arg = ins.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_VERSION='));
    assert.ok(arg, 'ARG NODE_VERSION');
    const version = arg.args.split('=')[1] ?? '';
    assert.match(version, /^24\.\d+\.\d+$/, 'an exact Node 24 version');
    assert.equal(version, pkg.devDependencies['node'], 'the same Node as the pinned development Node');
    const froms = ins.filter((i) => i.op === 'FROM');
    assert.ok(froms.length >= 2, 'multi-stage');
    for (const f of froms) assert.match(f.args, /^node:\$\{NODE_VERSION\}-[a-z]+-slim\b/, `FROM ${f.args}`);
  });

  test('the runtime stage installs production dependencies only and runs as a non-root user', async () => {
    const { ins } = await read();
    const all = stages(ins);
    const runtime = all.at(-1) ?? [];
    const user = runtime.filter((i) => i.op === 'USER').at(-1);
    assert.ok(user, 'USER in the runtime stage');
    const uid = Number(user.args.split(':')[0]);
    assert.ok(Number.isInteger(uid) && uid > 0, `numeric non-root USER (${user.args}), so runAsNonRoot can verify it`);
    // Dependencies reach the runtime only from a stage that ran `npm ci --omit=dev`.
    const copied = runtime.filter((i) => i.op === 'COPY' && i.args.includes('node_modules'));
    assert.equal(copied.length, 1);
    const from = /--from=(\S+)/.exec(copied[0]?.args ?? '')?.[1];
    const depStage = all.find((s) => s[0]?.args.endsWith(` AS ${from ?? ''}`) || s[0]?.args.endsWith(` as ${from ?? ''}`));
    assert.ok(depStage, `stage ${from ?? '?'} exists`);
    const ci = depStage.filter((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args));
    assert.ok(ci.length === 1 && ci.every((i) => i.args.includes('--omit=dev')), 'npm ci --omit=dev');
    assert.ok(!runtime.some((i) => i.op === 'RUN' && /\bnpm (ci|install)\b/.test(i.args)), 'no npm install in the runtime stage');
  });

  test('the entry point is the package bin, and CMD runs the operator', async () => {
    const { ins, pkg } = await read();
    const entry = ins.filter((i) => i.op === 'ENTRYPOINT').at(-1);
    assert.deepEqual(JSON.parse(entry?.args ?? 'null'), ['node', ...IMAGE_NODE_FLAGS, pkg.bin['vmreg']], 'with the Node flags make bench measures');
    assert.deepEqual(JSON.parse(ins.filter((i) => i.op === 'CMD').at(-1)?.args ?? 'null'), ['run']);
    const runtime = stages(ins).at(-1) ?? [];
    assert.ok(runtime.some((i) => i.op === 'COPY' && /package\.json/.test(i.args)), 'package.json (type: module) is in the image');
  });

  test('.dockerignore keeps dependencies, build output, git data and tests out of the context', async () => {
    const lines = (await readFile(join(REPO_ROOT, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    assert.equal(lines[0], '*', 'deny by default');
    const allowed = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    for (const bad of ['node_modules', 'dist', '.git', 'test', 'tools']) assert.ok(!allowed.includes(bad), `${bad} is not sent`);
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src']) assert.ok(allowed.includes(needed), `${needed} is sent`);
  });
});
