/**
 * Which nodes a /v1/catalog/nodes answer shows changed: every node carries its own
 * ModifyIndex, so the nodes added or changed (e.g. re-addressed) after the index of the
 * previous answer are known without keeping the list. Their services are then looked up
 * with one request per node (/v1/catalog/node-services/<node>), instead of waiting for a
 * sweep to probe every service.
 */
import { ProviderError } from '../errors.ts';
import { forEachElement, integerAt, stringAt } from './json-bytes.ts';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Names of the nodes whose ModifyIndex is above `since`. The answer is MBs for a large
 * fleet and comes on every node change: as bytes (the client's raw mode) it is scanned
 * without building an object per node (scanNodeList).
 */
export function nodesChangedSince(body: unknown, since: number): string[] {
  if (Buffer.isBuffer(body)) return scanNodeList(body, since);
  if (!Array.isArray(body)) throw notAList();
  const out: string[] = [];
  for (const node of body) {
    if (isRecord(node) && typeof node['Node'] === 'string' && typeof node['ModifyIndex'] === 'number' && node['ModifyIndex'] > since) out.push(node['Node']);
  }
  return out;
}

/** Service names from a /v1/catalog/node-services/<node> answer (Services is null when the node is gone). */
export function servicesOfNode(body: unknown): string[] {
  const services = isRecord(body) ? body['Services'] : undefined;
  if (services === null) return [];
  if (!Array.isArray(services)) throw new ProviderError('consul', 'BadResponse', 'GET /v1/catalog/node-services: answer has no Services list');
  return [...new Set(services.filter(isRecord).map((s) => s['Service']).filter((n): n is string => typeof n === 'string'))];
}

function notAList(): ProviderError {
  return new ProviderError('consul', 'BadResponse', 'GET /v1/catalog/nodes: answer is not a list');
}

const NODE_LIST_KEYS = [Buffer.from('Node'), Buffer.from('ModifyIndex')];

/** nodesChangedSince over the raw JSON of a node list (json-bytes.ts): no object is built but the names returned. */
export function scanNodeList(buf: Buffer, since: number): string[] {
  const out: string[] = [];
  forEachElement(buf, NODE_LIST_KEYS, 'GET /v1/catalog/nodes', ([node, modifyIndex]) => {
    const name = stringAt(buf, node);
    const index = integerAt(buf, modifyIndex);
    if (name !== undefined && index !== undefined && index > since) out.push(name);
  });
  return out;
}
