#!/usr/bin/env node
/** vmreg: the operator (run), a registry preview (preview), and the local environment (dev, demo). */
import { ValidationError } from '../api/validate.ts';
import { isProviderError } from '../providers/errors.ts';
import { UsageError } from './errors.ts';

const HELP = `vmreg — keeps Istio WorkloadEntries in step with VM registries (Consul, AWS EC2, Google Compute Engine)

Commands:
  run       run the operator against a cluster
  preview   print the WorkloadEntries a VmRegistrySource would produce (no cluster needed)
  dev       start a local control plane with the CRDs installed, for trying sources by hand
  demo      the whole thing on this machine: control plane, a Consul agent with sample VMs, the operator

Run "vmreg <command> --help" for the options of a command.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  switch (command) {
    case 'run': {
      const m = await import('./run.ts');
      if (wantsHelp) return print(m.RUN_HELP);
      return m.runOperator(rest);
    }
    case 'preview': {
      const m = await import('./preview.ts');
      if (wantsHelp) return print(m.PREVIEW_HELP);
      return m.preview(rest);
    }
    case 'dev': {
      const m = await import('./dev.ts');
      if (wantsHelp) return print(m.DEV_HELP);
      return m.dev(rest);
    }
    case 'demo': {
      const m = await import('./demo.ts');
      if (wantsHelp) return print(m.DEMO_HELP);
      return m.demo(rest);
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
    } else if (e instanceof ValidationError) {
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
