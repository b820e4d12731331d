/**
 * Loads client-node's KubeConfig without its generated API layer. KubeConfig (credentials:
 * kubeconfig files, in-cluster tokens, exec plugins, client certificates, proxies) is all
 * the operator uses of client-node; its own requests, lists and watches go through
 * api-request.ts. But dist/config.js imports `createConfiguration` and
 * `ServerConfiguration` from the generated barrel, whose evaluation builds every API
 * class and ~800 models: 16 MB of heap and 40 MiB resident for code never called. This
 * resolve hook sends that one import to kubeconfig-deps.ts, which re-exports the same two
 * names from the files that define them, so KubeConfig keeps working unchanged
 * (makeApiClient included). It must run before the first import of client-node (the
 * CLI registers it first and loads its commands after); without it everything still
 * works, only heavier.
 */
import { registerHooks } from 'node:module';

const CONFIG_MODULE = '/@kubernetes/client-node/dist/config.js';
const GENERATED_BARREL = './gen/index.js';

let registered = false;

/** Registers the hook (once). */
export function registerLeanClientNode(): void {
  if (registered) return;
  // Running from src/ (type stripping) the sibling is .ts; from dist/ it is .js.
  const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const target = new URL(`./kubeconfig-deps${extension}`, import.meta.url).href;
  registerHooks({
    resolve(specifier, context, next) {
      if (specifier === GENERATED_BARREL && context.parentURL?.endsWith(CONFIG_MODULE)) return next(target, context);
      return next(specifier, context);
    },
  });
  registered = true;
}
