/**
 * Kubernetes Events about a VmRegistrySource. The same reason and message for the same
 * source is recorded at most once per quiet period (a periodic sync must not flood the
 * event stream); failures to record are logged, never fatal.
 *
 * Like client-go's event correlator, a repeat of an Event already in the cluster bumps
 * its count and lastTimestamp instead of creating another one. The Event's name is
 * derived from what makes it the same Event (object, type, reason, message, reporter),
 * so the repeat is found even by a freshly started process: a restart does not
 * re-create identical Events.
 */
import { createHash } from 'node:crypto';
import type { CoreV1Event } from '@kubernetes/client-node';
import { API_VERSION, KIND, type VmRegistrySource } from '../api/types.ts';
import type { Logger } from '../metrics/logger.ts';
import { isConflict } from '../runtime/kube-client.ts';

export type EventType = 'Normal' | 'Warning';

const QUIET_PERIOD_MS = 10 * 60_000;
const MAX_MESSAGE_LENGTH = 1024;
/** Event names are DNS subdomains (253); the object name part is cut to leave room for the hash. */
const MAX_NAME_PREFIX = 200;
/** Attempts to bump a repeated Event when another writer changed it in between. */
const PATCH_ATTEMPTS = 3;

/** The calls the recorder makes (KubeClient implements them). */
export interface EventsClient {
  createEvent(namespace: string, event: CoreV1Event): Promise<void>;
  readEvent(namespace: string, name: string): Promise<CoreV1Event>;
  patchEvent(namespace: string, name: string, patch: Record<string, unknown>): Promise<void>;
}

/**
 * The name of an Event: `<object>.<hash>`, the hash over what makes two Events the same
 * (client-go's aggregation key: involved object, type, reason, message, reporter).
 */
export function eventName(source: VmRegistrySource, type: EventType, reason: string, message: string, component: string): string {
  const identity = [source.metadata.uid ?? '', source.metadata.namespace, source.metadata.name, type, reason, message, component].join('\0');
  const hash = createHash('sha256').update(identity).digest('hex').slice(0, 16);
  return `${source.metadata.name.slice(0, MAX_NAME_PREFIX)}.${hash}`;
}

export class EventRecorder {
  private readonly last = new Map<string, { message: string; at: number }>();
  private readonly client: EventsClient;
  private readonly log: Logger;
  private readonly component: string;

  constructor(client: EventsClient, log: Logger, component = 'vm-registry-operator') {
    this.client = client;
    this.log = log;
    this.component = component;
  }

  record(source: VmRegistrySource, type: EventType, reason: string, message: string): void {
    const key = `${source.metadata.namespace}/${source.metadata.name}/${reason}`;
    const previous = this.last.get(key);
    if (previous?.message === message && Date.now() - previous.at < QUIET_PERIOD_MS) return;
    this.last.set(key, { message, at: Date.now() });
    this.write(source, type, reason, message.slice(0, MAX_MESSAGE_LENGTH)).catch((e: unknown) =>
      this.log.warn('could not record event', { reason, error: e }),
    );
  }

  /** Creates the Event, or bumps the count of the same Event when it exists already. */
  private async write(source: VmRegistrySource, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = source.metadata.namespace;
    const name = eventName(source, type, reason, message, this.component);
    const now = new Date();
    try {
      await this.client.createEvent(namespace, this.newEvent(source, name, type, reason, message, now));
      return;
    } catch (e) {
      if (!isConflict(e)) throw e;
    }
    for (let attempt = 1; ; attempt++) {
      const existing = await this.client.readEvent(namespace, name);
      try {
        // resourceVersion makes the bump conditional: a concurrent bump is not lost.
        await this.client.patchEvent(namespace, name, {
          metadata: { resourceVersion: existing.metadata?.resourceVersion },
          count: (existing.count ?? 1) + 1,
          lastTimestamp: now.toISOString(),
        });
        return;
      } catch (e) {
        if (!isConflict(e) || attempt >= PATCH_ATTEMPTS) throw e;
      }
    }
  }

  private newEvent(source: VmRegistrySource, name: string, type: EventType, reason: string, message: string, now: Date): CoreV1Event {
    return {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace: source.metadata.namespace },
      involvedObject: {
        apiVersion: API_VERSION,
        kind: KIND,
        name: source.metadata.name,
        namespace: source.metadata.namespace,
        uid: source.metadata.uid,
        resourceVersion: source.metadata.resourceVersion,
      },
      type,
      reason,
      message,
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: process.env['POD_NAME'] ?? this.component,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
  }

  /** Forgets a deleted source's history. */
  forget(namespace: string, name: string): void {
    const prefix = `${namespace}/${name}/`;
    for (const key of this.last.keys()) if (key.startsWith(prefix)) this.last.delete(key);
  }
}
