/** Health of a service instance from its Consul checks (node checks and service checks). */

export type HealthStatus = 'passing' | 'warning' | 'critical';

export interface CheckLike {
  readonly Status: string;
}

/**
 * Consul's aggregation: any critical (maintenance mode is a critical check) or unknown
 * status → critical; else any warning → warning; else passing. No checks → passing.
 */
export function aggregateHealth(checks: readonly CheckLike[] | null | undefined): HealthStatus {
  let worst: HealthStatus = 'passing';
  for (const c of checks ?? []) {
    if (c.Status === 'passing') continue;
    if (c.Status === 'warning') worst = 'warning';
    else return 'critical';
  }
  return worst;
}

/** The instance counts as healthy: passing, or warning when warnings are accepted. */
export function isHealthy(status: HealthStatus, includeWarning: boolean): boolean {
  return status === 'passing' || (includeWarning && status === 'warning');
}

/** Whether an instance becomes an endpoint: in 'exclude' mode only healthy ones, in 'status' mode all. */
export function isSelected(status: HealthStatus, mode: 'exclude' | 'status', includeWarning: boolean): boolean {
  return mode === 'status' || isHealthy(status, includeWarning);
}
