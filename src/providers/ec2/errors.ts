/** Turns what the AWS SDK throws into a typed ProviderError (the kind drives status and retry). */
import { ProviderError, type ProviderErrorKind } from '../errors.ts';

// Error codes of the EC2 Query API and STS (assume-role) that mean "who you are is not accepted".
const AUTH_CODES = new Set([
  'AuthFailure',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'InvalidAccessKeyId',
  'ExpiredToken',
  'ExpiredTokenException',
  'RequestExpired',
  'UnauthorizedOperation',
  'AccessDenied',
  'AccessDeniedException',
  'OptInRequired',
  'Blocked',
  // The credential chain found nothing (no env, no web identity, no instance profile).
  'CredentialsProviderError',
]);

const THROTTLE_CODES = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'SlowDown',
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
]);

const CONFIG_CODES = new Set([
  'InvalidParameter',
  'InvalidParameterValue',
  'InvalidParameterCombination',
  'InvalidFilter',
  'UnknownParameter',
  'MissingParameter',
  'FilterLimitExceeded',
  'InvalidAction',
  'UnsupportedOperation',
  'InvalidInstanceID.Malformed',
]);

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  $fault?: unknown;
}

function shape(e: unknown): ErrorShape {
  return typeof e === 'object' && e !== null ? (e as ErrorShape) : {};
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The network error code anywhere in the cause chain or an AggregateError's members. */
function networkCode(e: unknown, depth = 0): string | undefined {
  if (depth > 4) return undefined;
  const s = shape(e);
  const code = str(s.code);
  if (code !== undefined && (NETWORK_CODES.has(code) || code === 'ETIMEDOUT')) return code;
  if (Array.isArray(s.errors)) {
    for (const inner of s.errors) {
      const c = networkCode(inner, depth + 1);
      if (c !== undefined) return c;
    }
  }
  return s.cause !== undefined ? networkCode(s.cause, depth + 1) : undefined;
}

function kindOf(e: unknown): ProviderErrorKind {
  const s = shape(e);
  const name = str(s.name) ?? '';
  const status = typeof s.$metadata?.httpStatusCode === 'number' ? s.$metadata.httpStatusCode : undefined;
  if (AUTH_CODES.has(name)) return 'Unauthorized';
  if (THROTTLE_CODES.has(name) || status === 429) return 'Throttled';
  if (CONFIG_CODES.has(name) || name.startsWith('InvalidParameter')) return 'BadConfig';
  // An answer that is not an AWS error document (no $fault): a proxy page, a wrong endpoint
  // URL, or a test server's unimplemented feature. Gateway failures still mean "unreachable".
  const parsed = s.$fault === 'client' || s.$fault === 'server';
  if (!parsed && status !== undefined && status !== 429 && ![502, 503, 504].includes(status)) {
    return status === 401 || status === 403 ? 'Unauthorized' : 'BadResponse';
  }
  const net = networkCode(e);
  if (net === 'ETIMEDOUT' || name === 'TimeoutError' || name === 'AbortError') return 'Timeout';
  if (net !== undefined) return 'Unreachable';
  if (status === 401 || status === 403) return 'Unauthorized';
  // The service answered but failed (InternalError, Unavailable): for us it is not reachable now.
  if (status !== undefined && status >= 500) return 'Unreachable';
  if (status !== undefined && status >= 400) return 'BadConfig';
  return 'BadResponse';
}

/** Wraps any error from the SDK; a ProviderError passes through unchanged. */
export function classifyEc2Error(e: unknown, context: string): ProviderError {
  if (e instanceof ProviderError) return e;
  const s = shape(e);
  const name = str(s.name) ?? 'Error';
  const code = networkCode(e);
  // AWS messages name the action and resource, never the secret key: safe to keep.
  const detail = (str(s.message) ?? '').slice(0, 500) || code || '';
  const kind = kindOf(e);
  return new ProviderError('ec2', kind, `${context}: ${name}${code && code !== name ? ` (${code})` : ''}${detail && detail !== code ? `: ${detail}` : ''}`, { cause: e });
}
