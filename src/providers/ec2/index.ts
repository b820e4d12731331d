/**
 * The AWS EC2 provider: a polling provider that lists instances with DescribeInstances,
 * paged to the end, and describes each as an Endpoint (labels in labels.ts). It returns
 * a complete answer or throws a ProviderError, never part of a listing.
 */
import type { Filter } from '@aws-sdk/client-ec2';
import type { VmRegistrySourceSpec } from '../../api/types.ts';
import { ec2Descriptor } from './descriptor.ts';
import type { Ec2Spec } from './spec-schema.ts';
import { ProviderError } from '../errors.ts';
import { secretKey, type Endpoint, type Provider, type ProviderContext, type ProviderFactory, type Snapshot } from '../provider.ts';
import { clientKey, SharedClients, type Lease } from '../shared-clients.ts';
import { sdkInstancesApi, type Ec2InstancesApi } from './client.ts';
import { ec2Credentials, ec2CredentialUse, ec2SecretRefs } from './credentials.ts';
import { classifyEc2Error } from './errors.ts';
import { instanceLabels, instanceProblems } from './labels.ts';
import { ec2DefaultMapping } from './mapping.ts';

export { parsePortsTag } from './ports.ts';
export { instanceLabels } from './labels.ts';
export { classifyEc2Error } from './errors.ts';
export type { Ec2InstancesApi } from './client.ts';

export interface Ec2ProviderOptions {
  /** Reservations per DescribeInstances page (5–1000). Default 1000, the API's maximum. */
  readonly pageSize?: number;
  /** TCP connect timeout per attempt. Default 5 s. */
  readonly connectionTimeoutMs?: number;
  /** Whole-request timeout per attempt. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** Replaces the SDK client (tests of the provider logic without a server). */
  readonly api?: Ec2InstancesApi;
}

/** EC2 clients of this process, shared per region, endpoint, settings and credentials. */
export const ec2Clients = new SharedClients<Ec2InstancesApi>((c) => c.close());

function ec2SpecOf(spec: VmRegistrySourceSpec): Ec2Spec {
  if (spec.ec2 === undefined) throw new ProviderError('ec2', 'BadConfig', 'spec.ec2 is not set');
  return spec.ec2;
}

/** The spec's filters in the API's form; only running instances unless a filter names the state. */
export function ec2Filters(spec: Pick<Ec2Spec, 'filters'>): Filter[] {
  const filters: Filter[] = (spec.filters ?? []).map((f) => ({ Name: f.name, Values: [...f.values] }));
  if (!filters.some((f) => f.Name === 'instance-state-name')) filters.push({ Name: 'instance-state-name', Values: ['running'] });
  return filters;
}

export function createEc2Provider(ctx: ProviderContext, options: Ec2ProviderOptions = {}): Provider {
  const spec = ec2SpecOf(ctx.spec);
  const where = `EC2 ${spec.region}${spec.endpoint !== undefined ? ` at ${spec.endpoint}` : ''}`;
  const filters = ec2Filters(spec);
  // A Secret without the named keys is reported on every snapshot rather than failing create().
  let setupError: ProviderError | undefined;
  let api: Ec2InstancesApi | undefined = options.api;
  let lease: Lease<Ec2InstancesApi> | undefined;
  if (api === undefined) {
    try {
      const settings = {
        region: spec.region,
        endpoint: spec.endpoint,
        maxAttempts: spec.maxAttempts,
        retryMode: spec.retryMode,
        pageSize: options.pageSize ?? 1000,
        connectionTimeoutMs: options.connectionTimeoutMs ?? 5000,
        requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      };
      const credentials = ec2Credentials(spec, ctx.secrets);
      // Sources with the same region, endpoint, settings and identity share one client.
      const key = clientKey(
        { ...settings, roleArn: spec.assumeRole?.roleArn, externalId: spec.assumeRole?.externalId, sessionName: spec.assumeRole?.sessionName },
        ec2SecretRefs(spec).map((ref) => ctx.secrets.get(secretKey(ref))),
      );
      lease = ec2Clients.acquire(key, () => sdkInstancesApi({ ...settings, credentials }));
      api = lease.client;
    } catch (e) {
      setupError = classifyEc2Error(e, `${where}: credentials`);
    }
  }
  const log = ctx.log.with({ provider: 'ec2', source: ctx.source });

  async function snapshot(signal: AbortSignal): Promise<Snapshot> {
    if (setupError !== undefined || api === undefined) throw setupError ?? new ProviderError('ec2', 'BadConfig', 'no EC2 client');
    const pages = api.describeInstances(filters, signal)[Symbol.asyncIterator]();
    const byId = new Map<string, Endpoint>();
    let pageCount = 0;
    let token: string | undefined;
    // Stops at the page without NextToken itself, so every tracked call is one request.
    for (let more = true; more; ) {
      if (signal.aborted) throw new ProviderError('ec2', 'Timeout', `${where}: DescribeInstances aborted after ${pageCount} pages`);
      const page = await ctx.metrics.track('ec2', 'DescribeInstances', () =>
        pages.next().catch((e: unknown) => {
          throw classifyEc2Error(e, `${where}: DescribeInstances`);
        }),
      );
      if (page.done === true) break;
      pageCount++;
      const next = page.value.NextToken;
      more = next !== undefined && next !== '' && next !== token;
      token = next;
      for (const reservation of page.value.Reservations ?? []) {
        for (const instance of reservation.Instances ?? []) {
          const id = instance.InstanceId;
          if (id === undefined || id === '') {
            throw new ProviderError('ec2', 'BadResponse', `${where}: an instance in reservation ${reservation.ReservationId ?? '?'} has no InstanceId`);
          }
          // An instance can reappear on a later page when reservations shift while paging.
          const problems = instanceProblems(instance, spec);
          byId.set(id, {
            id,
            scope: instance.Placement?.AvailabilityZone ?? spec.region,
            labels: instanceLabels(instance, reservation.OwnerId, spec),
            ...(problems.length > 0 ? { problems } : {}),
          });
        }
      }
    }
    await pages.return?.(undefined);
    const endpoints = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    log.debug('listed instances', { instances: endpoints.length, pages: pageCount });
    return { endpoints, unknownScopes: [], warnings: [] };
  }

  return {
    name: 'ec2',
    snapshot,
    async close() {
      lease?.release();
      lease = undefined;
    },
  };
}

export const ec2ProviderFactory: ProviderFactory = {
  descriptor: ec2Descriptor,
  secretRefs: (spec) => (spec.ec2 !== undefined ? ec2SecretRefs(spec.ec2) : []),
  create: (ctx) => createEc2Provider(ctx),
  credentialUse: (spec) => ec2CredentialUse(ec2SpecOf(spec)),
  defaultMapping: (spec) => ec2DefaultMapping(ec2SpecOf(spec)),
};
