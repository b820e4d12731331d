#!/usr/bin/env node
/** vmreg: the operator (run), a registry preview (preview), and the local environment (dev, demo). */
import type { ValidationError } from '../api/validate.ts';
import type { ProviderError } from '../providers/errors.ts';
import { UsageError } from './errors.ts';
import { registerLeanClientNode } from '../runtime/lean-client-node.ts';

const HELP = `vmreg — keeps Istio WorkloadEntries in step with VM registries (Consul, AWS EC2, Google Compute Engine)

Commands:
  run       run the operator against a cluster
  preview   print the WorkloadEntries a VmRegistrySource would produce (no cluster needed)
  dev       start a local control plane with the CRDs installed, for trying sources by hand
  demo      the whole thing on this machine: control plane, a Consul agent with sample VMs, the operator

Run "vmreg <command> --help" for the options of a command.
`;

async function main(argv: string[]): Promise<number> {
  // Before any command (and so client-node) is loaded: KubeConfig without the generated API layer.
  registerLeanClientNode();
  const [command, ...rest] = argv;
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  switch (command) {
    case 'run': {
      if (wantsHelp) return print((await import('./help.ts')).RUN_HELP);
      const m = await import('./run.ts');
      return m.runOperator(rest);
    }
    case 'preview': {
      if (wantsHelp) return print((await import('./help.ts')).PREVIEW_HELP);
      const m = await import('./preview.ts');
      return m.preview(rest);
    }
    case 'dev':
    case 'demo': {
      const m = await importDevCommand(command);
      if (wantsHelp) return print(m.help);
      return m.run(rest);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      return print(HELP);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/**
 * dev and demo build a local control plane from Go modules: they exist in a checkout, not
 * in the image. The specifier is computed so that the production build does not follow it.
 */
async function importDevCommand(command: 'dev' | 'demo'): Promise<{ help: string; run: (argv: string[]) => Promise<number> }> {
  const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  let m: Record<string, unknown>;
  try {
    m = (await import(new URL(`./${command}${extension}`, import.meta.url).href)) as Record<string, unknown>;
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    throw new UsageError(`"vmreg ${command}" runs a local control plane and is available from a source checkout (make ${command}), not in this build`);
  }
  const help = m[`${command.toUpperCase()}_HELP`];
  const run = m[command];
  if (typeof help !== 'string' || typeof run !== 'function') throw new Error(`src/cli/${command} does not export its help and command`);
  return { help, run: (argv) => (run as (a: string[]) => Promise<number>)(argv) };
}

/**
 * By name rather than instanceof: importing validate.ts (the schema and the RE2 engine)
 * only to format an error would make every command, `--help` included, pay for it.
 */
function isValidationError(e: unknown): e is ValidationError {
  return e instanceof Error && e.name === 'ValidationError' && Array.isArray((e as { errors?: unknown }).errors);
}

/** By name too: errors.ts reads the provider descriptors (and their schemas) for the reason prefixes. */
function isProviderError(e: unknown): e is ProviderError {
  return e instanceof Error && e.name === 'ProviderError' && typeof (e as { kind?: unknown }).kind === 'string';
}

function print(text: string): number {
  process.stdout.write(text);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`vmreg: ${(e as Error).message}\nRun "vmreg --help" for usage.\n`);
      process.exitCode = 2;
    } else if (isValidationError(e)) {
      process.stderr.write(`vmreg: invalid VmRegistrySource:\n${e.errors.map((x) => `  ${x.path}: ${x.message}`).join('\n')}\n`);
      process.exitCode = 2;
    } else if (isProviderError(e)) {
      process.stderr.write(`vmreg: ${e.reason}: ${e.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`vmreg: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    }
  },
);
