/** Which services' checks changed, from one /v1/health/state/any answer to the next. */
import type { CheckState } from './api-types.ts';

/**
 * A fingerprint of the checks of each service: its own checks and the node-level checks
 * (serfHealth, maintenance) of every node it runs on, which count for its health too.
 */
export function serviceCheckFingerprints(checks: readonly CheckState[]): Map<string, string> {
  const nodeChecks = new Map<string, string[]>();
  for (const c of checks) {
    if (c.ServiceName === '') nodeChecks.set(c.Node, [...(nodeChecks.get(c.Node) ?? []), `${c.CheckID}=${c.Status}`]);
  }
  const parts = new Map<string, string[]>();
  for (const c of checks) {
    if (c.ServiceName === '') continue;
    const list = parts.get(c.ServiceName) ?? [];
    list.push(`${c.Node}/${c.CheckID}=${c.Status}`, `${c.Node}#${(nodeChecks.get(c.Node) ?? []).sort().join(',')}`);
    parts.set(c.ServiceName, list);
  }
  return new Map([...parts].map(([name, list]) => [name, [...new Set(list)].sort().join('|')]));
}
