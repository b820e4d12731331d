/** Errors of the Kubernetes API, with the Status reason parsed out of the answer. */

export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  readonly code: number;
  readonly reason: string;
  constructor(operation: string, code: number, reason: string, message: string, options?: { cause?: unknown }) {
    super(`${operation}: ${code} ${reason}: ${message}`, options);
    this.code = code;
    this.reason = reason;
  }
}

/** Any failure of a request as a KubeApiError (code 0 when there was no HTTP answer). */
export function toKubeError(operation: string, e: unknown): KubeApiError {
  if (e instanceof KubeApiError) return e;
  const err = e as { code?: string; message?: string };
  return new KubeApiError(operation, 0, err.code ?? 'ConnectionError', err.message ?? String(e), { cause: e });
}

/** The error of an answer with this HTTP status and body (a JSON Status, as a string or parsed). */
export function statusError(operation: string, code: number, body: unknown, options?: { cause?: unknown }): KubeApiError {
  let reason = 'Unknown';
  let message = '';
  try {
    const status = (typeof body === 'string' ? JSON.parse(body) : body) as { reason?: string; message?: string };
    reason = status.reason ?? reason;
    message = status.message ?? '';
  } catch {
    message = String(body).slice(0, 300);
  }
  return new KubeApiError(operation, code, reason, message, options);
}

export function isNotFound(e: unknown): boolean {
  return e instanceof KubeApiError && e.code === 404;
}

export function isConflict(e: unknown): boolean {
  return e instanceof KubeApiError && e.code === 409;
}

/** A request that the caller's signal aborted (a lease deadline, a closed fence). */
export class RequestAbortedError extends KubeApiError {
  constructor(operation: string, why: string, options?: { cause?: unknown }) {
    super(operation, 0, 'Aborted', why, options);
  }
}
