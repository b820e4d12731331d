/**
 * Twins: a hand-written WorkloadEntry that describes the same workload as one of ours.
 * As for duplicates in the mapping (docs/decisions.md, "a duplicate is the same
 * workload"), that means the same network, address, service and ports; one VM often
 * runs several services, so the address alone says nothing.
 */
import type { VmRegistrySourceSpec } from '../api/types.ts';
import { parseAddress, sanitizeLabelKey } from '../mapping/sanitize.ts';
import type { WorkloadEntrySpec } from '../api/istio.ts';

/** The label that names an entry's service: spec.workloadEntry.serviceLabel, the same rule as the mapping. */
export function serviceLabelOf(spec: VmRegistrySourceSpec): string {
  return sanitizeLabelKey(spec.workloadEntry.serviceLabel) ?? 'app';
}

/**
 * The labels Istio selects an entry by: spec.labels merged with metadata.labels, the
 * metadata winning (istiod does the same when it converts a WorkloadEntry).
 */
export function effectiveLabels(spec: Partial<WorkloadEntrySpec> | undefined, metadataLabels: Readonly<Record<string, string>> | undefined): Record<string, string> {
  return { ...spec?.labels, ...metadataLabels };
}

/**
 * The identity of the workload an entry stands for, or undefined when its address is
 * not one (such an entry is nobody's twin).
 */
export function workloadKey(spec: Partial<WorkloadEntrySpec> | undefined, labels: Readonly<Record<string, string>>, serviceLabel: string): string | undefined {
  const address = spec?.address === undefined ? null : parseAddress(spec.address);
  if (address === null) return undefined;
  const ports = Object.entries(spec?.ports ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([spec?.network ?? '', address.key, labels[serviceLabel] ?? '', ports]);
}
