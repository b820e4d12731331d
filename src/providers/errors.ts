/** Typed provider errors: the kind decides the status reason and whether to retry fast. */
import type { ProviderName } from '../api/types.ts';

export type ProviderErrorKind = 'Unreachable' | 'Unauthorized' | 'BadConfig' | 'Throttled' | 'Timeout' | 'BadResponse';

export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  readonly provider: ProviderName;
  readonly kind: ProviderErrorKind;
  constructor(provider: ProviderName, kind: ProviderErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.provider = provider;
    this.kind = kind;
  }

  /** Status condition reason, e.g. "ConsulUnauthorized". */
  get reason(): string {
    const p = this.provider === 'ec2' ? 'EC2' : this.provider === 'gce' ? 'GCE' : 'Consul';
    return `${p}${this.kind}`;
  }
}

export function isProviderError(e: unknown): e is ProviderError {
  return e instanceof ProviderError;
}
