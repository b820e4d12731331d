/** Typed provider errors: the kind decides the status reason and whether to retry fast. */
import type { ProviderName } from '../api/types.ts';
import { PROVIDERS } from './index.ts';

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

  /** Status condition reason, e.g. "ConsulUnauthorized": the provider's reasonPrefix and the kind. */
  get reason(): string {
    return `${reasonPrefixOf(this.provider)}${this.kind}`;
  }
}

export function isProviderError(e: unknown): e is ProviderError {
  return e instanceof ProviderError;
}

/**
 * The reason prefix a provider's descriptor declares; a provider outside this build's
 * list (a test provider) gets its name with a capital first letter.
 */
export function reasonPrefixOf(provider: ProviderName): string {
  return PROVIDERS.find((d) => d.name === provider)?.reasonPrefix ?? `${provider.charAt(0).toUpperCase()}${provider.slice(1)}`;
}
