/** Request metrics every provider records, labelled by provider and operation only (bounded). */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { ProviderName } from '../api/types.ts';

export class ProviderMetrics {
  private readonly requests: Counter<'provider' | 'operation' | 'outcome'>;
  private readonly latency: Histogram<'provider' | 'operation'>;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'vmregistry_provider_requests_total',
      help: 'Requests made to VM registries, by outcome (success or an error kind).',
      labelNames: ['provider', 'operation', 'outcome'],
      registers: [registry],
    });
    this.latency = new Histogram({
      name: 'vmregistry_provider_request_duration_seconds',
      help: 'Latency of requests to VM registries (blocking queries excluded).',
      labelNames: ['provider', 'operation'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
  }

  /** Counts one request's outcome (a blocking query that reports by callback, untimed). */
  count(provider: ProviderName, operation: string, outcome: string): void {
    this.requests.inc({ provider, operation, outcome });
  }

  /** Times fn and counts its outcome; errors carrying a `kind` are counted under it. */
  async track<T>(provider: ProviderName, operation: string, fn: () => Promise<T>, timed = true): Promise<T> {
    const end = timed ? this.latency.startTimer({ provider, operation }) : undefined;
    try {
      const result = await fn();
      this.requests.inc({ provider, operation, outcome: 'success' });
      return result;
    } catch (e) {
      const kind = (e as { kind?: unknown }).kind;
      this.requests.inc({ provider, operation, outcome: typeof kind === 'string' ? kind : 'error' });
      throw e;
    } finally {
      end?.();
    }
  }
}
