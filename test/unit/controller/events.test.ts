import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CoreV1Event } from '@kubernetes/client-node';
import { EventRecorder, eventName, type EventsClient } from '../../../src/controller/events.ts';
import { KubeApiError } from '../../../src/runtime/kube-client.ts';
import { silentLogger } from '../../../src/metrics/logger.ts';
import type { VmRegistrySource } from '../../../src/api/types.ts';
import { source as sourceBuilder } from '../../fixtures/builders.ts';

/** Events stored by name, with the apiserver's 409s for a taken name or a stale resourceVersion. */
class StoredEvents implements EventsClient {
  readonly events = new Map<string, CoreV1Event>();
  private version = 0;
  calls: string[] = [];
  async createEvent(namespace: string, event: CoreV1Event): Promise<void> {
    this.calls.push('create');
    const name = event.metadata?.name ?? '';
    if (this.events.has(name)) throw new KubeApiError('create event', 409, 'AlreadyExists', `events "${name}" already exists`);
    this.events.set(name, { ...event, metadata: { ...event.metadata, namespace, resourceVersion: String(++this.version) } });
  }
  async readEvent(_namespace: string, name: string): Promise<CoreV1Event> {
    this.calls.push('get');
    const e = this.events.get(name);
    if (!e) throw new KubeApiError('get event', 404, 'NotFound', 'not found');
    return structuredClone(e);
  }
  async patchEvent(_namespace: string, name: string, patch: Record<string, unknown>): Promise<void> {
    this.calls.push('patch');
    const e = this.events.get(name);
    if (!e) throw new KubeApiError('patch event', 404, 'NotFound', 'not found');
    const rv = (patch['metadata'] as { resourceVersion?: string } | undefined)?.resourceVersion;
    if (rv !== e.metadata?.resourceVersion) throw new KubeApiError('patch event', 409, 'Conflict', 'the object has been modified');
    this.events.set(name, { ...e, count: patch['count'] as number, lastTimestamp: new Date(patch['lastTimestamp'] as string), metadata: { ...e.metadata, resourceVersion: String(++this.version) } });
  }
}

function theSource(): VmRegistrySource {
  const s = sourceBuilder('web').consul({ address: 'http://127.0.0.1:8500' }).build();
  return { ...s, metadata: { ...s.metadata, uid: 'uid-1' } };
}

async function settle(store: StoredEvents, calls: number): Promise<void> {
  while (store.calls.length < calls) await new Promise((r) => setImmediate(r));
}

describe('EventRecorder', () => {
  test('a fresh recorder (a restarted process) bumps the existing Event instead of creating another', async () => {
    const store = new StoredEvents();
    new EventRecorder(store, silentLogger).record(theSource(), 'Warning', 'Conflict', 'x exists');
    await settle(store, 1);
    new EventRecorder(store, silentLogger).record(theSource(), 'Warning', 'Conflict', 'x exists');
    await settle(store, 4);
    assert.deepEqual(store.calls, ['create', 'create', 'get', 'patch']);
    assert.equal(store.events.size, 1);
    const [event] = store.events.values();
    assert.equal(event?.count, 2);
    assert.ok((event?.lastTimestamp?.getTime() ?? 0) >= (event?.firstTimestamp?.getTime() ?? Infinity));
  });

  test('within the quiet period a repeat is not written at all; another message is another Event', async () => {
    const store = new StoredEvents();
    const recorder = new EventRecorder(store, silentLogger);
    recorder.record(theSource(), 'Warning', 'Conflict', 'a');
    recorder.record(theSource(), 'Warning', 'Conflict', 'a');
    recorder.record(theSource(), 'Warning', 'Conflict', 'b');
    await settle(store, 2);
    assert.deepEqual(store.calls, ['create', 'create']);
    assert.equal(store.events.size, 2);
  });

  test('names are stable, differ by what makes an Event different, and are valid object names', () => {
    const s = theSource();
    const name = eventName(s, 'Warning', 'Conflict', 'a', 'c');
    assert.equal(name, eventName(s, 'Warning', 'Conflict', 'a', 'c'));
    assert.match(name, /^web\.[0-9a-f]{16}$/);
    assert.notEqual(name, eventName(s, 'Warning', 'Conflict', 'b', 'c'));
    assert.notEqual(name, eventName(s, 'Normal', 'Conflict', 'a', 'c'));
    assert.notEqual(name, eventName({ ...s, metadata: { ...s.metadata, uid: 'uid-2' } }, 'Warning', 'Conflict', 'a', 'c'));
  });
});
