/**
 * The layering of src/: a folder may import only from itself and from folders below it.
 * Lowest first: API types, metrics and logging, the Kubernetes runtime, then the data
 * path (providers → mapping → plan → apply), the controller that runs it and reports, the
 * local harness, the CLI (docs/architecture.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../../src');
const LAYERS = ['api', 'metrics', 'runtime', 'providers', 'mapping', 'plan', 'apply', 'controller', 'dev', 'cli'] as const;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? sourceFiles(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : []));
}

/** Relative specifiers of static imports, re-exports and dynamic imports with a literal path. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.[^']+)'/g)].map((m) => m[1] as string);
  return found;
}

function layerOf(file: string): string {
  return relative(SRC, file).split('/')[0] as string;
}

test('every folder of src/ has a place in the layering', () => {
  const folders = readdirSync(SRC, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  assert.deepEqual(folders.filter((f) => !(LAYERS as readonly string[]).includes(f)), []);
});

test('no folder imports from a folder above it', () => {
  const upward: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = layerOf(file);
    for (const spec of importsOf(file)) {
      const to = layerOf(resolve(dirname(file), spec));
      if (LAYERS.indexOf(to as (typeof LAYERS)[number]) > LAYERS.indexOf(from as (typeof LAYERS)[number])) upward.push(`${relative(SRC, file)} → ${spec}`);
    }
  }
  assert.deepEqual(upward, []);
});

test('the check sees imports (it is not vacuous)', () => {
  const all = sourceFiles(SRC).flatMap(importsOf);
  assert.ok(all.length > 100, `${all.length} relative imports found`);
  assert.ok(all.some((s) => s.includes('../runtime/')), 'imports of the runtime are seen');
});
