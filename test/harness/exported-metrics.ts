/**
 * The series the operator exports, read from a real ControllerMetrics registry with
 * prom-client's default process metrics (what `vmreg run` serves on /metrics): series
 * name → its label names. Histograms give _bucket (with le), _sum and _count.
 */
import { Registry } from 'prom-client';
import { ControllerMetrics } from '../../src/metrics/controller-metrics.ts';

/** Labels Prometheus adds when scraping (the Prometheus Operator adds the Kubernetes ones). */
export const SCRAPE_LABELS: readonly string[] = ['job', 'instance', 'namespace', 'pod', 'service', 'container', 'endpoint'];

function labelNamesOf(metric: object): string[] {
  const names = (metric as { labelNames?: unknown }).labelNames;
  return Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [];
}

export function exportedSeries(): Map<string, ReadonlySet<string>> {
  const { registry } = new ControllerMetrics(new Registry(), { defaultMetrics: true });
  const out = new Map<string, ReadonlySet<string>>();
  for (const m of registry.getMetricsAsArray()) {
    const labels = labelNamesOf(m);
    const type = String(m.type);
    if (type === 'histogram') {
      out.set(`${m.name}_bucket`, new Set([...labels, 'le']));
      out.set(`${m.name}_sum`, new Set(labels));
      out.set(`${m.name}_count`, new Set(labels));
    } else if (type === 'summary') {
      out.set(m.name, new Set([...labels, 'quantile']));
      out.set(`${m.name}_sum`, new Set(labels));
      out.set(`${m.name}_count`, new Set(labels));
    } else {
      out.set(m.name, new Set(labels));
    }
  }
  return out;
}
