/**
 * Provider modules are imported only when a source names the provider: an operator
 * without GCE or EC2 sources never loads @google-cloud/compute or @aws-sdk/client-ec2.
 */
import assert from 'node:assert/strict';
import { registerHooks } from 'node:module';
import { test } from 'node:test';

const resolved = new Set<string>();
registerHooks({
  resolve(specifier, context, next) {
    const r = next(specifier, context);
    resolved.add(r.url);
    return r;
  },
});
const loadedPackage = (name: string): boolean => [...resolved].some((u) => u.includes(`/node_modules/${name}/`));

const { builtinProviders } = await import('../../../src/providers/builtin.ts');
const { PROVIDERS } = await import('../../../src/providers/index.ts');
const { gceDescriptor } = await import('../../../src/providers/gce/descriptor.ts');
const { ec2Descriptor } = await import('../../../src/providers/ec2/descriptor.ts');
const { factoriesOf, lazyFactories, ProviderLoadError } = await import('../../../src/providers/registry.ts');

test('the registry loads no provider module until one is asked for', async () => {
  const factories = builtinProviders();
  assert.deepEqual([...factories.names].sort(), ['consul', 'ec2', 'gce']);
  assert.deepEqual(factories.descriptors, PROVIDERS);
  assert.deepEqual(factories.loaded(), []);
  assert.equal(loadedPackage('@google-cloud/compute'), false);
  assert.equal(loadedPackage('@aws-sdk/client-ec2'), false);
  assert.equal(loadedPackage('consul'), false);

  const consul = await factories.load('consul');
  assert.equal(consul?.descriptor.name, 'consul');
  assert.deepEqual(factories.loaded(), ['consul']);
  assert.equal(loadedPackage('@google-cloud/compute'), false, 'a Consul source does not load the Compute client');
  assert.equal(loadedPackage('@aws-sdk/client-ec2'), false, 'a Consul source does not load the EC2 client');

  const again = await factories.load('consul');
  assert.equal(again, consul, 'a module is imported once');

  await factories.load('gce');
  assert.equal(loadedPackage('@google-cloud/compute'), false, 'the GCE provider calls the REST API without the generated client');
  assert.equal(loadedPackage('@aws-sdk/client-ec2'), false);
  await factories.load('ec2');
  assert.equal(loadedPackage('@aws-sdk/client-ec2'), true);
  assert.deepEqual([...factories.loaded()].sort(), ['consul', 'ec2', 'gce']);
});

test('an unknown provider is undefined; a module that fails to import is a ProviderLoadError, retried on the next use', async () => {
  let calls = 0;
  const brokenGce = {
    ...gceDescriptor,
    load: async () => {
      calls++;
      throw new Error('Cannot find package');
    },
  };
  const factories = lazyFactories([brokenGce]);
  assert.equal(await factories.load('ec2'), undefined);
  await assert.rejects(factories.load('gce'), (e: unknown) => e instanceof ProviderLoadError && e.provider === 'gce' && /Cannot find package/.test(e.message));
  await assert.rejects(factories.load('gce'), ProviderLoadError);
  assert.equal(calls, 2);
  assert.deepEqual(factories.loaded(), []);
});

test('factoriesOf serves in-memory factories', async () => {
  const f = { descriptor: ec2Descriptor, secretRefs: () => [], credentialUse: () => ({ destinations: [], ambient: false }), create: () => { throw new Error('unused'); }, defaultMapping: () => [] };
  const factories = factoriesOf([f]);
  assert.equal(await factories.load('ec2'), f);
  assert.equal(await factories.load('gce'), undefined);
  assert.deepEqual(factories.api.providerNames, ['ec2'], 'the API knows the providers it was given');
});
