/**
 * One connection pool for every request of a client. client-node builds a new undici
 * Agent for each request (KubeConfig.applySecurityAuthentication), so each request opens
 * its own TLS connection: a handshake on both ends, a secure context, a socket kept alive
 * for a few seconds. At thousands of writes that was most of the operator's CPU and a
 * large part of its resident memory. This middleware keeps the first Agent and hands it
 * to every later request (HTTP/2: one connection, many streams), and takes a fresh one now
 * and then so that rotated client certificates or CA bundles are picked up; the previous
 * one closes a minute later, once its requests are done.
 */
import { Observable, type ObservableMiddleware, type RequestContext } from '@kubernetes/client-node';

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/** How long one pool serves before a fresh one (from the current credentials) takes over. */
export const DEFAULT_POOL_RENEW_MS = 5 * 60_000;
/** How long a replaced pool stays open for requests already handed it. */
const CLOSE_GRACE_MS = 60_000;

export class ConnectionReuse {
  private current: Dispatcher | undefined;
  private takenAt = 0;
  private readonly renewMs: number;
  private readonly now: () => number;
  /** Pools handed out so far (a test can see that requests share one). */
  adopted = 0;

  constructor(options: { renewMs?: number; now?: () => number } = {}) {
    this.renewMs = options.renewMs ?? DEFAULT_POOL_RENEW_MS;
    this.now = options.now ?? Date.now;
  }

  /** The dispatcher this request should use instead of the one built for it. */
  dispatcherFor(built: Dispatcher): Dispatcher {
    if (this.current === built) return built;
    const now = this.now();
    if (this.current === undefined || now - this.takenAt >= this.renewMs) {
      const previous = this.current;
      this.current = built;
      this.takenAt = now;
      this.adopted++;
      // A request may have been handed the previous pool a moment ago and not be sent
      // yet: close it (which waits for its requests) only after a grace period.
      if (previous) setTimeout(() => void previous.close().catch(() => undefined), CLOSE_GRACE_MS).unref();
      return built;
    }
    // The Agent built for this request never connected: nothing to close.
    return this.current;
  }

  readonly middleware: ObservableMiddleware = {
    pre: (context) => {
      const built = context.getDispatcher();
      if (built !== undefined) context.setDispatcher(this.dispatcherFor(built));
      return new Observable(Promise.resolve(context));
    },
    post: (response) => new Observable(Promise.resolve(response)),
  };

  async close(): Promise<void> {
    const d = this.current;
    this.current = undefined;
    await d?.close().catch(() => undefined);
  }
}
