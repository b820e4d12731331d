/**
 * The operator's typed door to the Kubernetes API. Every call is counted in
 * rest_client_requests_total (so tests and the benchmark can count writes), and API
 * errors become KubeApiError with the Status reason parsed out of the body.
 */
import {
  ApiException,
  CoreV1Api,
  type CoreV1Event,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type VmRegistrySource, type VmRegistrySourceStatus } from '../api/types.ts';
import { FIELD_MANAGER } from '../reconcile/ownership.ts';
import { WE_GROUP, WE_PLURAL, WE_VERSION, type WorkloadEntry, type WorkloadEntryCondition } from '../reconcile/types.ts';
import { SE_GROUP, SE_PLURAL, SE_VERSION, type ServiceEntry } from '../reconcile/service-entries.ts';
import type { ControllerMetrics } from '../metrics/controller-metrics.ts';
import { TokenBucket } from './rate-limit.ts';

export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  readonly code: number;
  readonly reason: string;
  constructor(operation: string, code: number, reason: string, message: string, options?: { cause?: unknown }) {
    super(`${operation}: ${code} ${reason}: ${message}`, options);
    this.code = code;
    this.reason = reason;
  }
}

/** Parses ApiException bodies (a JSON Status as a string) without logging headers. */
function toKubeError(operation: string, e: unknown): Error {
  if (e instanceof ApiException) {
    let reason = 'Unknown';
    let message = '';
    try {
      const status = (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as { reason?: string; message?: string };
      reason = status.reason ?? reason;
      message = status.message ?? '';
    } catch {
      message = String(e.body).slice(0, 300);
    }
    return new KubeApiError(operation, e.code, reason, message, { cause: e });
  }
  const err = e as { code?: string; message?: string };
  return new KubeApiError(operation, 0, err.code ?? 'ConnectionError', err.message ?? String(e), { cause: e });
}

export function isNotFound(e: unknown): boolean {
  return e instanceof KubeApiError && e.code === 404;
}

export function isConflict(e: unknown): boolean {
  return e instanceof KubeApiError && e.code === 409;
}

const SSA = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export interface KubeClientOptions {
  /** Client-side rate limit, like client-go's QPS and burst. */
  readonly qps?: number;
  readonly burst?: number;
}

export class KubeClient {
  readonly kc: KubeConfig;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly metrics: ControllerMetrics;
  private readonly bucket: TokenBucket;
  private readonly host: string;

  constructor(kc: KubeConfig, metrics: ControllerMetrics, options: KubeClientOptions = {}) {
    this.kc = kc;
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
    this.metrics = metrics;
    this.bucket = new TokenBucket(options.qps ?? 50, options.burst ?? 100);
    const server = kc.getCurrentCluster()?.server ?? '';
    this.host = server.replace(/^https?:\/\//, '');
  }

  private async call<T>(method: string, operation: string, fn: () => Promise<unknown>): Promise<T> {
    await this.bucket.take();
    try {
      const result = (await fn()) as T;
      this.metrics.restRequest(method, '200', this.host);
      return result;
    } catch (e) {
      const err = toKubeError(operation, e);
      this.metrics.restRequest(method, err instanceof KubeApiError && err.code > 0 ? String(err.code) : '<error>', this.host);
      throw err;
    }
  }

  // --- WorkloadEntries -------------------------------------------------------------

  getWorkloadEntry(namespace: string, name: string): Promise<WorkloadEntry> {
    return this.call('GET', `get workloadentry ${namespace}/${name}`, () =>
      this.custom.getNamespacedCustomObject({ group: WE_GROUP, version: WE_VERSION, namespace, plural: WE_PLURAL, name }),
    );
  }

  async listWorkloadEntries(namespace: string, labelSelector?: string): Promise<WorkloadEntry[]> {
    const items: WorkloadEntry[] = [];
    let cont: string | undefined;
    do {
      const page = await this.call<{ items: WorkloadEntry[]; metadata?: { continue?: string } }>('LIST', `list workloadentries in ${namespace}`, () =>
        this.custom.listNamespacedCustomObject({
          group: WE_GROUP,
          version: WE_VERSION,
          namespace,
          plural: WE_PLURAL,
          limit: 500,
          ...(labelSelector ? { labelSelector } : {}),
          ...(cont ? { _continue: cont } : {}),
        }),
      );
      items.push(...page.items);
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return items;
  }

  /** Server-side apply of the fields we own, taking them over from anyone who changed them. */
  applyWorkloadEntry(entry: WorkloadEntry): Promise<WorkloadEntry> {
    const { namespace, name } = entry.metadata;
    return this.call('PATCH', `apply workloadentry ${namespace}/${name}`, () =>
      this.custom.patchNamespacedCustomObject(
        { group: WE_GROUP, version: WE_VERSION, namespace, plural: WE_PLURAL, name, body: entry, fieldManager: FIELD_MANAGER, force: true },
        SSA,
      ),
    );
  }

  /** Deletes only the object with this uid (a precondition), never a newer one of the same name. */
  async deleteWorkloadEntry(namespace: string, name: string, uid: string | undefined): Promise<void> {
    await this.call('DELETE', `delete workloadentry ${namespace}/${name}`, () =>
      this.custom.deleteNamespacedCustomObject({
        group: WE_GROUP,
        version: WE_VERSION,
        namespace,
        plural: WE_PLURAL,
        name,
        propagationPolicy: 'Background',
        ...(uid ? { body: { preconditions: { uid } } } : {}),
      }),
    );
  }

  /** Writes the Healthy condition that istiod reads for entries with health checks enabled. */
  applyWorkloadEntryHealth(namespace: string, name: string, condition: WorkloadEntryCondition): Promise<WorkloadEntry> {
    const body = { apiVersion: `${WE_GROUP}/${WE_VERSION}`, kind: 'WorkloadEntry', metadata: { name, namespace }, status: { conditions: [condition] } };
    return this.call('PATCH', `apply workloadentry status ${namespace}/${name}`, () =>
      this.custom.patchNamespacedCustomObjectStatus(
        { group: WE_GROUP, version: WE_VERSION, namespace, plural: WE_PLURAL, name, body, fieldManager: FIELD_MANAGER, force: true },
        SSA,
      ),
    );
  }

  // --- ServiceEntries (spec.serviceEntries) ----------------------------------------

  async listServiceEntries(namespace: string, labelSelector?: string): Promise<ServiceEntry[]> {
    const items: ServiceEntry[] = [];
    let cont: string | undefined;
    do {
      const page = await this.call<{ items: ServiceEntry[]; metadata?: { continue?: string } }>('LIST', `list serviceentries in ${namespace}`, () =>
        this.custom.listNamespacedCustomObject({
          group: SE_GROUP,
          version: SE_VERSION,
          namespace,
          plural: SE_PLURAL,
          limit: 500,
          ...(labelSelector ? { labelSelector } : {}),
          ...(cont ? { _continue: cont } : {}),
        }),
      );
      items.push(...page.items);
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return items;
  }

  applyServiceEntry(se: ServiceEntry): Promise<ServiceEntry> {
    const { namespace, name } = se.metadata;
    return this.call('PATCH', `apply serviceentry ${namespace}/${name}`, () =>
      this.custom.patchNamespacedCustomObject(
        { group: SE_GROUP, version: SE_VERSION, namespace, plural: SE_PLURAL, name, body: se, fieldManager: FIELD_MANAGER, force: true },
        SSA,
      ),
    );
  }

  /** Deletes only the object with this uid, never a newer one of the same name. */
  async deleteServiceEntry(namespace: string, name: string, uid: string | undefined): Promise<void> {
    await this.call('DELETE', `delete serviceentry ${namespace}/${name}`, () =>
      this.custom.deleteNamespacedCustomObject({
        group: SE_GROUP,
        version: SE_VERSION,
        namespace,
        plural: SE_PLURAL,
        name,
        propagationPolicy: 'Background',
        ...(uid ? { body: { preconditions: { uid } } } : {}),
      }),
    );
  }

  // --- VmRegistrySources -----------------------------------------------------------

  getSource(namespace: string, name: string): Promise<VmRegistrySource> {
    return this.call('GET', `get vmregistrysource ${namespace}/${name}`, () =>
      this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name }),
    );
  }

  /** Replaces the whole status with a merge patch (conditions are computed in full each time). */
  patchSourceStatus(namespace: string, name: string, status: VmRegistrySourceStatus): Promise<VmRegistrySource> {
    return this.call('PATCH', `patch vmregistrysource status ${namespace}/${name}`, () =>
      this.custom.patchNamespacedCustomObjectStatus(
        { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: { status }, fieldManager: FIELD_MANAGER },
        MERGE,
      ),
    );
  }

  // --- Secrets ----------------------------------------------------------------------

  async getSecretValue(namespace: string, name: string, key: string): Promise<string> {
    const secret = await this.call<{ data?: Record<string, string> }>('GET', `get secret ${namespace}/${name}`, () =>
      this.core.readNamespacedSecret({ namespace, name }),
    );
    const b64 = secret.data?.[key];
    if (b64 === undefined) throw new KubeApiError(`get secret ${namespace}/${name}`, 404, 'KeyNotFound', `the Secret has no key "${key}"`);
    return Buffer.from(b64, 'base64').toString('utf8');
  }

  // --- Events -------------------------------------------------------------------------

  async createEvent(namespace: string, event: CoreV1Event): Promise<void> {
    await this.call('POST', 'create event', () => this.core.createNamespacedEvent({ namespace, body: event }));
  }
}
