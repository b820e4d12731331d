/**
 * Which nodes a /v1/catalog/nodes answer shows changed: every node carries its own
 * ModifyIndex, so the nodes added or changed (e.g. re-addressed) after the index of the
 * previous answer are known without keeping the list. Their services are then looked up
 * with one request per node (/v1/catalog/node-services/<node>), instead of waiting for a
 * sweep to probe every service.
 */
import { ProviderError } from '../errors.ts';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Names of the nodes whose ModifyIndex is above `since`. */
export function nodesChangedSince(body: unknown, since: number): string[] {
  if (!Array.isArray(body)) throw new ProviderError('consul', 'BadResponse', 'GET /v1/catalog/nodes: answer is not a list');
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
