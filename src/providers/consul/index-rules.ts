/**
 * Consul's rules for blocking-query indexes (from its blocking-query documentation):
 * an index that goes backwards means the server's state was reset (restart, snapshot
 * restore, failover), so start over with 0; an index <= 0 must never be sent back, or
 * every query returns at once, so use 1. A return is not a change: compare contents.
 */

/** The index to send with the next blocking query after a response carried `returned`. */
export function nextIndex(previous: number, returned: number): number {
  if (!Number.isFinite(returned)) return 0;
  if (returned <= 0) return 1;
  if (returned < previous) return 0;
  return Math.floor(returned);
}

/** Parses X-Consul-Index; a missing or unparsable header counts as 0 (start over). */
export function parseIndexHeader(value: string | string[] | undefined): number {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || !/^[0-9]+$/.test(text.trim())) return 0;
  const n = Number(text.trim());
  return Number.isSafeInteger(n) ? n : 0;
}

/**
 * True when a blocking query came back quickly without the index moving: the server did
 * not wait (a bug or a proxy in between). The caller pauses before the next query so
 * it never spins.
 */
export function isSpuriousReturn(sent: number, returned: number, elapsedMs: number, minBlockMs: number): boolean {
  return sent > 0 && returned === sent && elapsedMs < minBlockMs;
}
