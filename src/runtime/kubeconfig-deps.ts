/**
 * The two names client-node's KubeConfig (dist/config.js) imports from its generated
 * barrel, taken from the files that define them. lean-client-node.ts points that one
 * import here, so loading KubeConfig does not evaluate every generated API and model.
 */
export { createConfiguration } from '@kubernetes/client-node/dist/gen/configuration.js';
export { ServerConfiguration } from '@kubernetes/client-node/dist/gen/servers.js';
