/** Maps Consul HTTP answers and socket/TLS failures to typed ProviderErrors. */
import { ProviderError } from '../errors.ts';

const TLS_CODES = new Set([
  'EPROTO',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** An HTTP answer that is not 2xx. `body` is Consul's plain-text reason (it never echoes the token). */
export function errorForStatus(status: number, body: string, what: string): ProviderError {
  const reason = body.trim().replace(/\s+/g, ' ').slice(0, 300);
  const msg = `${what}: HTTP ${status}${reason ? ` (${reason})` : ''}`;
  if (status === 401 || status === 403) return new ProviderError('consul', 'Unauthorized', `${msg}; check the ACL token and its policy (service:read, node:read)`);
  if (status === 429) return new ProviderError('consul', 'Throttled', msg);
  if (status === 400 || status === 404) return new ProviderError('consul', 'BadConfig', msg);
  // Consul answers 500 "No path to datacenter" for an unknown datacenter: a spec error.
  if (status === 500 && /no path to datacenter/i.test(reason)) return new ProviderError('consul', 'BadConfig', `${msg}; check spec.consul.datacenter`);
  if (status >= 500) return new ProviderError('consul', 'Unreachable', msg);
  return new ProviderError('consul', 'BadResponse', msg);
}

/** A failure below HTTP: connection, TLS or timeout. */
export function errorForFailure(err: unknown, what: string, address: string): ProviderError {
  const e = err as { code?: unknown; message?: unknown; name?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : String(err);
  // One line, short: OpenSSL messages carry newlines and source paths.
  const detail = (code && !message.includes(code) ? `${code}: ${message}` : message || code).replace(/\s+/g, ' ').trim().slice(0, 300);
  if (code === 'ETIMEDOUT' || e.name === 'TimeoutError') {
    return new ProviderError('consul', 'Timeout', `${what}: Consul at ${address} did not answer in time`, { cause: err });
  }
  if (TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || /certificate|ssl|tls/i.test(message)) {
    return new ProviderError('consul', 'Unreachable', `${what}: TLS handshake with ${address} failed (${detail}); check spec.consul.tls`, { cause: err });
  }
  return new ProviderError('consul', 'Unreachable', `${what}: cannot reach Consul at ${address} (${detail})`, { cause: err });
}
