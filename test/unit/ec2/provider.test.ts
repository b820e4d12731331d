import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DescribeInstancesCommandOutput, Filter, Instance } from '@aws-sdk/client-ec2';
import { Registry } from 'prom-client';
import { silentLogger } from '../../../src/metrics/logger.ts';
import { ProviderMetrics } from '../../../src/metrics/provider-metrics.ts';
import { isProviderError } from '../../../src/providers/errors.ts';
import { createEc2Provider, ec2Filters, ec2ProviderFactory, type Ec2InstancesApi } from '../../../src/providers/ec2/index.ts';
import { BUILTIN_API } from '../../../src/providers/builtin.ts';

const { applyDefaults } = BUILTIN_API;

type Page = DescribeInstancesCommandOutput | Error;

/** Stands in for the SDK: yields the given pages (or throws an Error page) and records the filters. */
function fakeApi(pages: Page[]): Ec2InstancesApi & { filters: Filter[][] } {
  const filters: Filter[][] = [];
  return {
    filters,
    async *describeInstances(f) {
      filters.push([...f]);
      for (const p of pages) {
        if (p instanceof Error) throw p;
        yield p;
      }
    },
    close() {},
  };
}

function page(instances: Instance[], next?: string): DescribeInstancesCommandOutput {
  return { $metadata: {}, Reservations: [{ OwnerId: '123456789012', Instances: instances }], ...(next ? { NextToken: next } : {}) };
}

const vm = (id: string, zone = 'eu-west-1a'): Instance => ({ InstanceId: id, PrivateIpAddress: '10.0.0.1', Placement: { AvailabilityZone: zone } });

function provider(api: Ec2InstancesApi, ec2: Record<string, unknown> = {}) {
  const spec = applyDefaults({ ec2: { region: 'eu-west-1', ...ec2 } });
  return createEc2Provider({ source: 'ns/src', spec, secrets: new Map(), metrics: new ProviderMetrics(new Registry()), log: silentLogger }, { api });
}

describe('EC2 provider logic', () => {
  test('joins all pages, sorted by id, each instance once, scoped by zone', async () => {
    const api = fakeApi([page([vm('i-3'), vm('i-1')], 't1'), page([vm('i-2', 'eu-west-1c'), vm('i-1')])]);
    const s = await provider(api).snapshot(AbortSignal.timeout(5000));
    assert.deepEqual(s.endpoints.map((e) => [e.id, e.scope]), [['i-1', 'eu-west-1a'], ['i-2', 'eu-west-1c'], ['i-3', 'eu-west-1a']]);
    assert.deepEqual(s.unknownScopes, []);
  });

  test('a failure on a later page fails the whole snapshot (never partial)', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'RequestLimitExceeded' });
    const api = fakeApi([page([vm('i-1')], 't1'), throttled]);
    await assert.rejects(provider(api).snapshot(AbortSignal.timeout(5000)), (e) => isProviderError(e) && e.kind === 'Throttled');
  });

  test('an instance without id is a BadResponse', async () => {
    const api = fakeApi([page([{ PrivateIpAddress: '10.0.0.9' }])]);
    await assert.rejects(provider(api).snapshot(AbortSignal.timeout(5000)), (e) => isProviderError(e) && e.kind === 'BadResponse');
  });

  test('an aborted snapshot is a Timeout', async () => {
    const api = fakeApi([page([vm('i-1')])]);
    await assert.rejects(provider(api).snapshot(AbortSignal.abort()), (e) => isProviderError(e) && e.kind === 'Timeout');
  });

  test('an empty answer is a valid empty snapshot', async () => {
    const s = await provider(fakeApi([{ $metadata: {} }])).snapshot(AbortSignal.timeout(5000));
    assert.deepEqual(s, { endpoints: [], unknownScopes: [], warnings: [] });
  });

  test('sends the user\'s filters plus running-only, unless the state is filtered', async () => {
    assert.deepEqual(ec2Filters({ filters: [{ name: 'tag:mesh', values: ['true'] }] }), [
      { Name: 'tag:mesh', Values: ['true'] },
      { Name: 'instance-state-name', Values: ['running'] },
    ]);
    assert.deepEqual(ec2Filters({ filters: [{ name: 'instance-state-name', values: ['running', 'stopped'] }] }), [
      { Name: 'instance-state-name', Values: ['running', 'stopped'] },
    ]);
    const api = fakeApi([page([])]);
    await provider(api, { filters: [{ name: 'vpc-id', values: ['vpc-1'] }] }).snapshot(AbortSignal.timeout(5000));
    assert.deepEqual(api.filters[0], [
      { Name: 'vpc-id', Values: ['vpc-1'] },
      { Name: 'instance-state-name', Values: ['running'] },
    ]);
  });

  test('the factory asks for no Secret without credentialsSecretRef and has no watch', () => {
    const spec = applyDefaults({ ec2: { region: 'eu-west-1' } });
    assert.deepEqual(ec2ProviderFactory.secretRefs(spec), []);
    assert.equal(ec2ProviderFactory.descriptor.name, 'ec2');
    assert.equal(provider(fakeApi([])).watch, undefined);
  });
});
