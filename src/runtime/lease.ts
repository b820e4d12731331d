/**
 * The coordination.k8s.io/v1 Lease as plain JSON. Leases go through the generic object
 * API: client-node's typed client serialises MicroTime with milliseconds, which the
 * apiserver rejects (it wants microseconds).
 */
export const LEASE_API = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' } as const;

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

/** RFC 3339 with microseconds, as metav1.MicroTime requires. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** The calls the elector makes; KubeClient implements them (counted, rate-limited, bounded by `signal`). */
export interface LeaseClient {
  /** The Lease, or undefined when there is none. */
  getLease(namespace: string, name: string, signal: AbortSignal): Promise<Lease | undefined>;
  /** Throws an error with code 409 when it exists already. */
  createLease(lease: Lease, signal: AbortSignal): Promise<Lease>;
  /** Throws an error with code 409 when the resourceVersion is stale. */
  replaceLease(lease: Lease, signal: AbortSignal): Promise<Lease>;
}
