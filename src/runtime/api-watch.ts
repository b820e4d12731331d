/**
 * One watch request: a stream of JSON events, one per line, read through the shared
 * pool. It ends when the server ends it (after `timeoutSeconds`), when nothing has come
 * for `idleMs` (the apiserver sends a bookmark about every minute to a watch that asks
 * for them, so a silent stream is a hung connection), or when the caller aborts.
 */
import { KubeApiError, statusError, toKubeError } from './api-error.ts';
import type { Channel } from './api-channel.ts';
import { dispatchApiRequest } from './api-request.ts';
import { linkSignals } from './linked-signal.ts';

/** One event of a watch: ADDED, MODIFIED, DELETED or BOOKMARK, and its object. */
export interface WatchEvent {
  readonly type: string;
  readonly object: unknown;
}

export interface WatchOptions {
  /** Events after this version (the version of the list the cache holds). */
  readonly resourceVersion: string;
  readonly labelSelector?: string;
  /** The server ends the watch after this long (client-go picks 5 to 10 minutes). */
  readonly timeoutSeconds: number;
  /** A stream silent for this long is taken as hung, and ended. */
  readonly idleMs: number;
}

/**
 * Resolves when the watch ends (by the server, or silent for idleMs); rejects on an HTTP
 * error, a broken stream, or an ERROR event (its Status: 410 Expired when the version is
 * compacted away, which asks for a new list).
 */
export async function streamWatch(channel: Channel, path: string, options: WatchOptions, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
  const query = new URLSearchParams({ watch: '1', resourceVersion: options.resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds: String(options.timeoutSeconds) });
  if (options.labelSelector) query.set('labelSelector', options.labelSelector);
  const operation = `watch ${path}`;
  const idle = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const quietFor = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(new Error(`no event for ${options.idleMs} ms`)), options.idleMs);
  };
  quietFor();
  const link = linkSignals([signal, idle.signal]);
  try {
    const res = await dispatchApiRequest(channel, { method: 'GET', path: `${path}?${query}`, operation }, link.signal);
    res.body.setEncoding('utf8');
    let pending = '';
    for await (const chunk of res.body as AsyncIterable<string>) {
      quietFor();
      pending += chunk;
      let start = 0;
      for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n', start)) {
        if (end > start) onEvent(parseEvent(operation, pending.slice(start, end)));
        start = end + 1;
      }
      pending = pending.slice(start);
    }
  } catch (e) {
    // A quiet stream ends like one the server ended: the caller watches again.
    if (idle.signal.aborted && !signal.aborted) return;
    throw toKubeError(operation, e);
  } finally {
    clearTimeout(timer);
    link.release();
  }
}

/** One line of the stream as an event; a line that is not one is a KubeApiError (BadWatchEvent), not a connection failure. */
function parseEvent(operation: string, line: string): WatchEvent {
  let event: Partial<WatchEvent>;
  try {
    event = JSON.parse(line) as Partial<WatchEvent>;
  } catch {
    event = {};
  }
  if (typeof event.type !== 'string' || event.object === null || typeof event.object !== 'object') throw new KubeApiError(operation, 0, 'BadWatchEvent', `not a watch event: ${line.slice(0, 200)}`);
  if (event.type === 'ERROR') {
    const status = event.object as { code?: number };
    throw statusError(operation, status.code ?? 0, status);
  }
  return { type: event.type, object: event.object };
}
