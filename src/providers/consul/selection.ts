/** Which services and instances a spec selects, and the query parameters that ask Consul for them. */
import type { ConsulSpec } from './spec-schema.ts';
import type { Endpoint } from '../provider.ts';
import type { CatalogServices, HealthEntry } from './api-types.ts';
import { toEndpoint } from './labels.ts';
import { hasAllTags } from './tags.ts';

type Query = Array<readonly [string, string]>;

function nodeMetaQuery(spec: ConsulSpec): Query {
  return Object.entries(spec.nodeMeta ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => ['node-meta', `${k}:${v}`] as const);
}

/** /v1/health/service/<name>: every tag must match (repeated `tag`), and node meta. No `passing`: health is judged here. */
export function healthQuery(spec: ConsulSpec): Query {
  return [...(spec.tags ?? []).map((t) => ['tag', t] as const), ...nodeMetaQuery(spec)];
}

/** Names of the selected services, sorted. The catalog's tags are the union over instances, so this is a first cut. */
export function selectServices(catalog: CatalogServices, spec: ConsulSpec): string[] {
  const wanted = spec.services && spec.services.length > 0 ? new Set(spec.services) : undefined;
  const tags = spec.tags ?? [];
  const out: string[] = [];
  for (const [name, unionTags] of catalog) {
    if (wanted && !wanted.has(name)) continue;
    if (!hasAllTags(unionTags, tags)) continue;
    out.push(name);
  }
  return out.sort();
}

function nodeMetaMatches(entry: HealthEntry, nodeMeta: Readonly<Record<string, string>>): boolean {
  return Object.entries(nodeMeta).every(([k, v]) => entry.Node.Meta[k] === v);
}

/** Endpoints of one service's health entries, sorted by id. Filters are re-checked here in case a server ignored one. */
export function endpointsOf(entries: readonly HealthEntry[], spec: ConsulSpec): Endpoint[] {
  const out: Endpoint[] = [];
  for (const entry of entries) {
    if (!hasAllTags(entry.Service.Tags, spec.tags ?? [])) continue;
    if (!nodeMetaMatches(entry, spec.nodeMeta ?? {})) continue;
    const ep = toEndpoint(entry, {
      tagSeparator: spec.tagSeparator,
      mode: spec.health.mode,
      includeWarning: spec.health.includeWarning,
      ...(spec.datacenter !== undefined ? { datacenter: spec.datacenter } : {}),
    });
    if (ep) out.push(ep);
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
