/** Snapshot assembly over a scripted GceClient: paging, unknown zones, no partial answers. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ProviderMetrics } from '../../../src/metrics/provider-metrics.ts';
import { isProviderError, ProviderError } from '../../../src/providers/errors.ts';
import type { AggregatedPage, GceClient, GceInstance, ZonePage } from '../../../src/providers/gce/client.ts';
import { filterNamesStatus, GceProvider } from '../../../src/providers/gce/provider.ts';

const vm = (id: string, zone: string, status = 'RUNNING'): GceInstance => ({
  id,
  name: `vm-${id}`,
  status,
  zone: `https://h/compute/v1/projects/p/zones/${zone}`,
  networkInterfaces: [{ name: 'nic0', networkIP: `10.0.0.${id}` }],
});

const noResults = { warning: { code: 'NO_RESULTS_ON_PAGE', message: 'none' } };

function scripted(aggregated: Array<AggregatedPage | Error>, zones: Record<string, ZonePage | Error> = {}): GceClient & { calls: string[] } {
  const calls: string[] = [];
  let i = 0;
  return {
    calls,
    async aggregatedListPage(req) {
      calls.push(`agg:${req.pageToken ?? ''}`);
      const page = aggregated[i++];
      if (!page) throw new Error('no more pages scripted');
      if (page instanceof Error) throw page;
      return page;
    },
    async listPage(req) {
      calls.push(`zone:${req.zone}`);
      const page = zones[req.zone];
      if (!page) throw new Error('unscripted zone');
      if (page instanceof Error) throw page;
      return page;
    },
    async close() {},
  };
}

function provider(client: GceClient, extra: { zones?: string[]; filter?: string } = {}): GceProvider {
  return new GceProvider({
    project: 'p',
    zones: extra.zones ?? [],
    filter: extra.filter,
    labels: { project: 'p', addressType: 'internal', networkInterface: 'nic0' },
    metrics: new ProviderMetrics(new Registry()),
    client: () => client,
  });
}

const signal = () => AbortSignal.timeout(5000);

function httpError(code: number, httpStatusCode: number, message: string): Error {
  return Object.assign(new Error(message), { code, httpStatusCode });
}

describe('GceProvider snapshot', () => {
  test('NO_RESULTS_ON_PAGE on one page does not hide instances on another', async () => {
    const client = scripted([
      { items: { 'zones/a-b1-x': { instances: [vm('1', 'a-b1-x')] }, 'zones/a-b1-y': noResults }, unreachables: [], nextPageToken: 't1' },
      { items: { 'zones/a-b1-x': noResults, 'zones/a-b1-y': { instances: [vm('2', 'a-b1-y')] } }, unreachables: [] },
    ]);
    const s = await provider(client).snapshot(signal());
    assert.deepEqual(s.endpoints.map((e) => e.id), ['1', '2']);
    assert.deepEqual(s.unknownScopes, []);
    assert.deepEqual(client.calls, ['agg:', 'agg:t1']);
  });

  test('a zone with a warning on any page is unknown and its instances are not reported', async () => {
    const client = scripted([
      { items: { 'zones/a-b1-x': { instances: [vm('1', 'a-b1-x')] }, 'zones/a-b1-y': { instances: [vm('2', 'a-b1-y')] } }, unreachables: [], nextPageToken: 't1' },
      {
        items: { 'zones/a-b1-x': noResults, 'zones/a-b1-y': { warning: { code: 'UNREACHABLE', message: 'zone down' } } },
        unreachables: ['projects/p/zones/a-b1-z'],
      },
    ]);
    const s = await provider(client).snapshot(signal());
    assert.deepEqual(s.endpoints.map((e) => e.id), ['1']);
    assert.deepEqual(s.unknownScopes, ['a-b1-y', 'a-b1-z']);
    assert.match(s.warnings[0] ?? '', /a-b1-y.*UNREACHABLE: zone down/);
    assert.match(s.warnings[1] ?? '', /a-b1-z.*unreachable/);
  });

  test('an error on a later page fails the whole snapshot (no partial data)', async () => {
    const client = scripted([
      { items: { 'zones/a-b1-x': { instances: [vm('1', 'a-b1-x')] } }, unreachables: [], nextPageToken: 't1' },
      httpError(8, 429, 'Quota exceeded'),
    ]);
    await assert.rejects(provider(client).snapshot(signal()), (e: unknown) => isProviderError(e) && e.kind === 'Throttled');
  });

  test('a repeated page token is a bad response, not an endless loop', async () => {
    const page: AggregatedPage = { items: {}, unreachables: [], nextPageToken: 'same' };
    await assert.rejects(provider(scripted([page, page, page])).snapshot(signal()), (e: unknown) => isProviderError(e) && e.kind === 'BadResponse');
  });

  test('only RUNNING instances unless the filter decides about status', async () => {
    const page: AggregatedPage = { items: { 'zones/a-b1-x': { instances: [vm('1', 'a-b1-x'), vm('2', 'a-b1-x', 'TERMINATED')] } }, unreachables: [] };
    assert.deepEqual((await provider(scripted([page])).snapshot(signal())).endpoints.map((e) => e.id), ['1']);
    const all = await provider(scripted([page]), { filter: 'status != STOPPING' }).snapshot(signal());
    assert.deepEqual(all.endpoints.map((e) => e.id), ['1', '2']);
    assert.equal(filterNamesStatus('labels.status = x'), false);
    assert.equal(filterNamesStatus('(status eq RUNNING)'), true);
    assert.equal(filterNamesStatus(undefined), false);
  });

  test('listed zones: a zone warning or failure makes that zone unknown; all failing throws', async () => {
    const client = scripted([], {
      'a-b1-x': { items: [vm('1', 'a-b1-x')] },
      'a-b1-y': httpError(14, 503, 'unavailable'),
      'a-b1-z': { items: [], warning: { code: 'UNREACHABLE', message: 'down' } },
    });
    const s = await provider(client, { zones: ['a-b1-x', 'a-b1-y', 'a-b1-z'] }).snapshot(signal());
    assert.deepEqual(s.endpoints.map((e) => e.id), ['1']);
    assert.deepEqual(s.unknownScopes, ['a-b1-y', 'a-b1-z']);

    const failing = scripted([], { 'a-b1-y': httpError(16, 401, 'bad token') });
    await assert.rejects(provider(failing, { zones: ['a-b1-y'] }).snapshot(signal()), (e: unknown) => isProviderError(e) && e.kind === 'Unauthorized');
  });

  test('a cancelled snapshot is a Timeout', async () => {
    const ac = new AbortController();
    const client: GceClient = {
      async aggregatedListPage() {
        ac.abort();
        throw Object.assign(new Error('cancelled'), { code: 1 });
      },
      async listPage() {
        throw new Error('unused');
      },
      async close() {},
    };
    await assert.rejects(provider(client).snapshot(ac.signal), (e: unknown) => e instanceof ProviderError && e.kind === 'Timeout');
  });
});
