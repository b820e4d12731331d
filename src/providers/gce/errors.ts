/** Turns errors of the Compute client (google-gax GoogleError) into typed ProviderErrors. */
import { ProviderError, isProviderError } from '../errors.ts';

// gRPC status codes google-gax puts on `code` (HTTP statuses are mapped onto them).
const CANCELLED = 1;
const INVALID_ARGUMENT = 3;
const DEADLINE_EXCEEDED = 4;
const NOT_FOUND = 5;
const PERMISSION_DENIED = 7;
const RESOURCE_EXHAUSTED = 8;
const FAILED_PRECONDITION = 9;
const INTERNAL = 13;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;

interface ErrorFields {
  readonly code?: unknown;
  readonly httpStatusCode?: unknown;
  readonly message?: unknown;
}

/** First line of a message, bounded: gax messages can embed whole response bodies. */
function short(message: unknown): string {
  const text = typeof message === 'string' ? message : String(message);
  return (text.split('\n')[0] ?? '').slice(0, 300);
}

function httpStatus(e: ErrorFields): number | undefined {
  return typeof e.httpStatusCode === 'number' ? e.httpStatusCode : undefined;
}

/**
 * Classifies an error from one Compute call. `what` names the call and scope, e.g.
 * "aggregatedList of project p" or "list of zone z".
 */
export function toProviderError(err: unknown, what: string): ProviderError {
  if (isProviderError(err)) return err;
  const e: ErrorFields = typeof err === 'object' && err !== null ? (err as ErrorFields) : { message: String(err) };
  const code = typeof e.code === 'number' ? e.code : undefined;
  const status = httpStatus(e);
  const msg = short(e.message);
  const opts = { cause: err };
  // Google sends some rate limits as 403 (rateLimitExceeded, quota): check those first.
  const looksThrottled = /quota|rate ?limit/i.test(msg);
  if (status === 429 || code === RESOURCE_EXHAUSTED || ((status === 403 || code === PERMISSION_DENIED) && looksThrottled)) {
    return new ProviderError('gce', 'Throttled', `${what}: throttled by Compute Engine (quota or rate limit): ${msg}`, opts);
  }
  if (status === 401 || code === UNAUTHENTICATED) {
    return new ProviderError('gce', 'Unauthorized', `${what}: Compute Engine rejected the credentials (401): ${msg}`, opts);
  }
  if (status === 403 || code === PERMISSION_DENIED) {
    return new ProviderError(
      'gce',
      'Unauthorized',
      `${what}: permission denied (403); the service account needs compute.instances.list on the project (e.g. roles/compute.viewer): ${msg}`,
      opts,
    );
  }
  if (status === 400 || code === INVALID_ARGUMENT) {
    return new ProviderError('gce', 'BadConfig', `${what}: Compute Engine rejected the request (400), check spec.gce.filter: ${msg}`, opts);
  }
  if (status === 404 || code === NOT_FOUND) {
    return new ProviderError('gce', 'BadConfig', `${what}: not found (404), check spec.gce.project and spec.gce.zones: ${msg}`, opts);
  }
  if (status === 504 || code === DEADLINE_EXCEEDED) {
    return new ProviderError('gce', 'Timeout', `${what}: no answer in time: ${msg}`, opts);
  }
  if (code === CANCELLED) {
    return new ProviderError('gce', 'Timeout', `${what}: cancelled`, opts);
  }
  // No HTTP status: the request never got an answer (refused, reset, DNS).
  if (code === UNAVAILABLE || (status !== undefined && status >= 500) || code === INTERNAL) {
    const how = status === undefined ? 'cannot reach the Compute API' : `Compute API failed (${status})`;
    return new ProviderError('gce', 'Unreachable', `${what}: ${how}: ${msg}`, opts);
  }
  if (code === FAILED_PRECONDITION || (status !== undefined && status >= 400)) {
    return new ProviderError('gce', 'BadConfig', `${what}: request refused (${status ?? 'code ' + String(code)}): ${msg}`, opts);
  }
  return new ProviderError('gce', 'BadResponse', `${what}: unexpected error: ${msg}`, opts);
}
