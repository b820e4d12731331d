/**
 * The two Istio resources the operator writes, as far as it writes them: where they live
 * in the API and the fields it sets. Istio's own CRDs define them; these types describe
 * only the part this operator owns.
 */
import type { ServiceEntryTemplate } from './types.ts';

export const WE_GROUP = 'networking.istio.io';
export const WE_VERSION = 'v1';
export const WE_PLURAL = 'workloadentries';
export const WE_API_VERSION = `${WE_GROUP}/${WE_VERSION}`;
/** The WorkloadEntry resource (runtime ResourceType). */
export const WORKLOAD_ENTRIES = { group: WE_GROUP, version: WE_VERSION, plural: WE_PLURAL } as const;

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

/** The metadata the operator reads and writes on the Istio objects it manages. */
export interface IstioObjectMeta {
  name: string;
  namespace: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  deletionTimestamp?: string;
}

export interface WorkloadEntry {
  apiVersion: typeof WE_API_VERSION;
  kind: 'WorkloadEntry';
  metadata: IstioObjectMeta;
  spec: WorkloadEntrySpec;
  status?: { conditions?: WorkloadEntryCondition[] };
}

export const SE_GROUP = 'networking.istio.io';
export const SE_VERSION = 'v1';
export const SE_PLURAL = 'serviceentries';
export const SE_API_VERSION = `${SE_GROUP}/${SE_VERSION}`;
/** The ServiceEntry resource (runtime ResourceType). */
export const SERVICE_ENTRIES = { group: SE_GROUP, version: SE_VERSION, plural: SE_PLURAL } as const;

export interface ServiceEntryPort {
  number: number;
  name: string;
  /** Omitted when the port name names no protocol Istio knows: istiod then detects it (as for Kubernetes Services). */
  protocol?: string;
}

/** The fields of Istio's ServiceEntry spec this operator sets. */
export interface ServiceEntrySpec {
  hosts: string[];
  location: ServiceEntryTemplate['location'];
  resolution: 'STATIC';
  ports: ServiceEntryPort[];
  workloadSelector: { labels: Record<string, string> };
  exportTo?: string[];
}

export interface ServiceEntry {
  apiVersion: typeof SE_API_VERSION;
  kind: 'ServiceEntry';
  metadata: IstioObjectMeta;
  spec: ServiceEntrySpec;
}

/** Istio's switch for WorkloadEntry health conditions written by a controller (istiod then waits for Healthy). */
export const HEALTH_CHECKS_ANNOTATION = 'proxy.istio.io/health-checks-enabled';
