/**
 * The one retry backoff: exponential from baseMs, capped at maxMs, with jitter so that
 * many clients failing together do not retry together.
 */
export interface BackoffOptions {
  readonly baseMs: number;
  readonly maxMs: number;
  /** Spread of the delay around its exponential value: 0.2 gives ±20%. */
  readonly jitter: number;
}

/** The delay before retry number attempt + 1 (attempt 0 is the first failure); never above maxMs. */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const exponential = Math.min(o.maxMs, o.baseMs * 2 ** Math.max(0, Math.min(attempt, 30)));
  return Math.min(o.maxMs, Math.round(exponential * (1 - o.jitter + 2 * o.jitter * random())));
}
