/** The WorkloadEntry shapes the engine works with, from endpoint mapping to apply. */

export const WE_GROUP = 'networking.istio.io';
export const WE_VERSION = 'v1';
export const WE_PLURAL = 'workloadentries';
export const WE_API_VERSION = `${WE_GROUP}/${WE_VERSION}`;

/** The fields of Istio's WorkloadEntry spec this operator sets. */
export interface WorkloadEntrySpec {
  address: string;
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  network?: string;
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface WorkloadEntryCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  lastProbeTime?: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface WorkloadEntry {
  apiVersion: typeof WE_API_VERSION;
  kind: 'WorkloadEntry';
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    deletionTimestamp?: string;
  };
  spec: WorkloadEntrySpec;
  status?: { conditions?: WorkloadEntryCondition[] };
}

/** What one endpoint should look like as a WorkloadEntry (ownership metadata is added by ownership.ts). */
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
