/**
 * Kubernetes Events about a VmRegistrySource. The same reason and message for the same
 * source is recorded at most once per quiet period (a periodic sync must not flood the
 * event stream); failures to record are logged, never fatal.
 */
import type { CoreV1Event } from '@kubernetes/client-node';
import { API_VERSION, KIND, type VmRegistrySource } from '../api/types.ts';
import type { Logger } from '../metrics/logger.ts';
import type { KubeClient } from './kube-client.ts';

export type EventType = 'Normal' | 'Warning';

const QUIET_PERIOD_MS = 10 * 60_000;

export class EventRecorder {
  private readonly last = new Map<string, { message: string; at: number }>();
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly component: string;

  constructor(client: KubeClient, log: Logger, component = 'vm-registry-operator') {
    this.client = client;
    this.log = log;
    this.component = component;
  }

  record(source: VmRegistrySource, type: EventType, reason: string, message: string): void {
    const key = `${source.metadata.namespace}/${source.metadata.name}/${reason}`;
    const previous = this.last.get(key);
    if (previous?.message === message && Date.now() - previous.at < QUIET_PERIOD_MS) return;
    this.last.set(key, { message, at: Date.now() });
    const now = new Date();
    const event: CoreV1Event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${source.metadata.name}.`, namespace: source.metadata.namespace },
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
      message: message.slice(0, 1024),
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: process.env['POD_NAME'] ?? this.component,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    this.client.createEvent(source.metadata.namespace, event).catch((e: unknown) => this.log.warn('could not record event', { reason, error: e }));
  }

  /** Forgets a deleted source's history. */
  forget(namespace: string, name: string): void {
    const prefix = `${namespace}/${name}/`;
    for (const key of this.last.keys()) if (key.startsWith(prefix)) this.last.delete(key);
  }
}
