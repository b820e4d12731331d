/**
 * The narrow interface the reconcile layer writes through: reads and writes of the
 * objects it manages, nothing else. The runtime's KubeClient satisfies it as it is;
 * unit tests use a Map-backed one (test/fixtures/memory-writer.ts).
 */
import type { NamedObject, ResourceType } from '../runtime/resource.ts';

export interface ObjectWriter {
  /** One object; rejects with a 404 KubeApiError (runtime isNotFound) when there is none. */
  get<T>(type: ResourceType, namespace: string, name: string): Promise<T>;
  list<T>(type: ResourceType, namespace: string | undefined, options?: { labelSelector?: string; keep?: (item: T) => T }): Promise<T[]>;
  /** Server-side apply of our fields. */
  apply<T extends NamedObject>(type: ResourceType, object: T): Promise<void>;
  /** Server-side apply of the status subresource. */
  applyStatus<T extends NamedObject>(type: ResourceType, object: T): Promise<void>;
  /** Deletes only the object with this uid (a precondition). */
  delete(type: ResourceType, namespace: string, name: string, uid: string | undefined): Promise<void>;
}
