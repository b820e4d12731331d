/** The few shapes the runtime needs to talk about objects of any resource type. */

/** Where a (custom) resource lives in the API: /apis/<group>/<version>/…/<plural>. */
export interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
}

/** An object as the runtime writes it: its name and namespace are all it reads. */
export interface NamedObject {
  readonly metadata: { readonly name: string; readonly namespace?: string };
}

export interface ListOptions {
  readonly labelSelector?: string;
  readonly limit?: number;
  readonly continue?: string;
}

export interface ListPage<T> {
  readonly items: T[];
  readonly metadata?: { readonly continue?: string; readonly resourceVersion?: string };
}

/** The API path of a resource type, in one namespace or the whole cluster (informers watch it). */
export function resourcePath(type: ResourceType, namespace?: string): string {
  return namespace === undefined ? `/apis/${type.group}/${type.version}/${type.plural}` : `/apis/${type.group}/${type.version}/namespaces/${namespace}/${type.plural}`;
}
