/**
 * One signal that aborts when any of several does, for one operation, unlinked when the
 * operation ends. AbortSignal.any does the same without the unlinking: each call records
 * its result in every source (weak references and a finalization record each, about 1 KB
 * in all), freed only after a full collection finds the result unreachable, and a result
 * still listened on is kept for as long as a source lives (Node 24). A Consul feed combines
 * its own long-lived signals with every read and blocking query, thousands a minute under
 * churn; those records were a steady share of the heap the operator grew to. Every
 * per-request combination goes through here (API watches and GCE requests too).
 */
import { setMaxListeners } from 'node:events';

export interface LinkedSignal {
  readonly signal: AbortSignal;
  /** Unlinks the sources; the signal no longer follows them. */
  release(): void;
}

export function linkSignals(sources: readonly AbortSignal[]): LinkedSignal {
  const ctl = new AbortController();
  const early = sources.find((s) => s.aborted);
  if (early) {
    ctl.abort(early.reason);
    return { signal: ctl.signal, release: () => undefined };
  }
  const links = sources.map((source) => {
    const follow = (): void => {
      release();
      ctl.abort(source.reason);
    };
    // A long-lived source has one listener per operation under way (e.g. 25 reads): not a leak.
    setMaxListeners(0, source);
    source.addEventListener('abort', follow, { once: true });
    return { source, follow };
  });
  const release = (): void => {
    for (const { source, follow } of links) source.removeEventListener('abort', follow);
  };
  return { signal: ctl.signal, release };
}

/** Runs `operation` with a signal linked to `sources`, unlinked when it settles. */
export async function withLinkedSignal<T>(sources: readonly AbortSignal[], operation: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const link = linkSignals(sources);
  try {
    return await operation(link.signal);
  } finally {
    link.release();
  }
}
