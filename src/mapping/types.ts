/** The shapes the engine works with between endpoint mapping and apply. */
import type { WorkloadEntrySpec } from '../api/istio.ts';

/** What one endpoint should look like as a WorkloadEntry; kinds.ts adds the ownership labels, reference and applied hash when it is written. */
export interface DesiredEntry {
  /** Deterministic, DNS-1123, at most 63 characters, unique per source. */
  readonly name: string;
  readonly endpointId: string;
  readonly scope: string;
  /** Metadata labels: the WorkloadEntry's own labels (the same set as spec.labels). */
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly spec: WorkloadEntrySpec;
  /** Registry health verdict, written to the Healthy condition in Consul's status mode. */
  readonly healthy?: boolean;
  /** Label keys the mapping could not make valid (dropped from labels); reported in a LabelsDropped Event. */
  readonly droppedLabels?: readonly string[];
}

export interface SkippedEndpoint {
  readonly endpointId: string;
  readonly reason: string;
}

export interface DesiredState {
  readonly entries: readonly DesiredEntry[];
  readonly skipped: readonly SkippedEndpoint[];
}
