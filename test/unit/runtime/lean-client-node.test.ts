/**
 * KubeConfig loads without client-node's generated API layer once the hook is
 * registered, and still works: a kubeconfig is read and the credentials applied. (Each
 * test file runs in its own process, so nothing here has loaded client-node before.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registerHooks } from 'node:module';
import { registerLeanClientNode } from '../../../src/runtime/lean-client-node.ts';

test('KubeConfig and its credentials, without the generated barrel, models or API classes', async () => {
  registerLeanClientNode();
  const loaded: string[] = [];
  registerHooks({
    resolve(specifier, context, next) {
      const resolved = next(specifier, context);
      loaded.push(resolved.url);
      return resolved;
    },
  });
  const { KubeConfig } = await import('@kubernetes/client-node/dist/config.js');
  const { RequestContext, HttpMethod } = await import('@kubernetes/client-node/dist/gen/http/http.js');
  const generated = loaded.filter((url) => /\/client-node\/dist\/gen\/(index|models\/|apis\/)/.test(url));
  assert.deepEqual(generated, [], 'no generated API or model module was loaded');
  assert.ok(loaded.some((url) => url.endsWith('/src/runtime/kubeconfig-deps.ts')), "config.js's barrel import went to kubeconfig-deps.ts");

  const kc = new KubeConfig();
  kc.loadFromString(`apiVersion: v1
clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443', insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: secret-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`);
  const context = new RequestContext('https://127.0.0.1:6443/api', HttpMethod.GET);
  await kc.applySecurityAuthentication(context);
  assert.equal(context.getHeaders()['Authorization'], 'Bearer secret-token');
  assert.ok(context.getDispatcher(), 'an Agent for the TLS options');
  // The stand-in barrel hands config.js the very definitions the generated barrel would.
  const deps = await import('../../../src/runtime/kubeconfig-deps.ts');
  assert.equal(deps.createConfiguration, (await import('@kubernetes/client-node/dist/gen/configuration.js')).createConfiguration);
  assert.equal(deps.ServerConfiguration, (await import('@kubernetes/client-node/dist/gen/servers.js')).ServerConfiguration);
});
