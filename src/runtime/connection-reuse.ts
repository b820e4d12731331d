/**
 * One connection pool for every request of a client. client-node builds a new undici
 * Agent for each request (KubeConfig.applySecurityAuthentication), so each request opens
 * its own TLS connection: a handshake on both ends, a secure context, a socket kept alive
 * for a few seconds. At thousands of writes that was most of the operator's CPU and a
 * large part of its resident memory. This middleware keeps the first Agent and hands it
 * to every later request (HTTP/2: one connection, many streams), and takes a fresh one now
 * and then so that rotated client certificates or CA bundles are picked up; the previous
 * one closes a minute later, once its requests are done. The pool and the credentials
 * of the latest request are also offered (channel()) to the writes sent without the
 * library (direct-request.ts).
 */
import { Observable, type ObservableMiddleware, type RequestContext } from '@kubernetes/client-node';

export type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/** The pool and the credentials headers of the latest request, for requests sent without the client library. */
export interface Channel {
  readonly dispatcher: Dispatcher;
  readonly headers: Readonly<Record<string, string>>;
}

/** Headers a request sets for itself; the rest (Authorization and the like) are the credentials'. */
const OWN_HEADERS: ReadonlySet<string> = new Set(['content-type', 'accept', 'content-length']);

/** How long one pool serves before a fresh one (from the current credentials) takes over. */
export const DEFAULT_POOL_RENEW_MS = 5 * 60_000;
/** How long a replaced pool stays open for requests already handed it. */
const CLOSE_GRACE_MS = 60_000;

export class ConnectionReuse {
  private current: Dispatcher | undefined;
  private takenAt = 0;
  private readonly renewMs: number;
  private readonly now: () => number;
  private headers: Readonly<Record<string, string>> = {};
  private headersAt = -Infinity;
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

  /**
   * The pool with the credentials the client library attached to its latest request,
   * while both are younger than the renewal period; undefined otherwise (the next
   * request then goes through the library, which renews them).
   */
  channel(): Channel | undefined {
    const now = this.now();
    if (this.current === undefined || now - this.takenAt >= this.renewMs || now - this.headersAt >= this.renewMs) return undefined;
    return { dispatcher: this.current, headers: this.headers };
  }

  readonly middleware: ObservableMiddleware = {
    pre: (context) => {
      const built = context.getDispatcher();
      if (built !== undefined) {
        context.setDispatcher(this.dispatcherFor(built));
        this.remember(context.getHeaders());
      }
      return new Observable(Promise.resolve(context));
    },
    post: (response) => new Observable(Promise.resolve(response)),
  };

  private remember(headers: Readonly<Record<string, string>>): void {
    const credentials: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) if (!OWN_HEADERS.has(k.toLowerCase())) credentials[k.toLowerCase()] = v;
    this.headers = credentials;
    this.headersAt = this.now();
  }

  async close(): Promise<void> {
    const d = this.current;
    this.current = undefined;
    await d?.close().catch(() => undefined);
  }
}
