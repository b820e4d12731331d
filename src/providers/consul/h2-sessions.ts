/**
 * HTTP/2 sessions to one Consul endpoint over TLS, for blocking queries that hold a
 * stream, not a socket, while they wait. Consul's HTTPS listener offers h2 by ALPN
 * (Go's server allows 250 streams per connection), so a few sessions carry thousands
 * of service watches where HTTP/1.1 needs a socket each (and the agent allows 200 per
 * client address).
 *
 * Sessions open as streams need them, each filled up to the stream limit it was given
 * (the server's, at most MAX_STREAMS). A session that stops answering pings within
 * PING_TIMEOUT_MS is destroyed, failing its streams: a hung connection costs a retry,
 * not a watch that never answers again.
 */
import http2 from 'node:http2';
import type { SecureClientSessionOptions } from 'node:http2';

/** Streams per session at most, whatever the server allows: Go's default. */
export const MAX_STREAMS = 250;
const PING_EVERY_MS = 30_000;
const PING_TIMEOUT_MS = 10_000;

export interface H2Options {
  readonly origin: string;
  readonly ca?: string;
  readonly serverName?: string;
  readonly insecureSkipVerify?: boolean;
  /** Sessions that may be open now (it can change as the endpoint's budget is shared). */
  readonly maxSessions: () => number;
  readonly connectTimeoutMs: number;
  /** How often an open session is pinged, and how long its answer may take (tests shorten them). */
  readonly pingEveryMs?: number;
  readonly pingTimeoutMs?: number;
}

interface Session {
  readonly session: http2.ClientHttp2Session;
  readonly streams: number;
  active: number;
}

export class H2Sessions {
  private readonly options: H2Options;
  private readonly sessions = new Set<Session>();
  private opening: Promise<Session> | undefined;
  /** Requests waiting for a free stream, served first come first served. */
  private readonly waiting: Array<() => void> = [];
  private closed = false;

  constructor(options: H2Options) {
    this.options = options;
  }

  /** Opens a session (or reuses one) and returns its stream limit; rejects when the server does not speak h2. */
  async probe(): Promise<number> {
    const first = [...this.sessions][0] ?? (await this.open());
    return first.streams;
  }

  /** Sessions open now (for tests and diagnostics). */
  get openSessions(): number {
    return this.sessions.size;
  }

  /**
   * Sends a GET on a free stream; the stream is counted until it closes. Resolves with the
   * stream once sent: its 'response' event carries the headers, then the body follows.
   * `signal` ends only the wait for a stream: the caller ends the stream (destroy()).
   */
  async request(pathAndQuery: string, headers: Readonly<Record<string, string>>, signal: AbortSignal): Promise<http2.ClientHttp2Stream> {
    const s = await this.slot(signal);
    let stream: http2.ClientHttp2Stream;
    try {
      stream = s.session.request({ ':method': 'GET', ':path': pathAndQuery, ...headers }, { endStream: true });
    } catch (e) {
      this.release(s);
      throw e;
    }
    stream.once('close', () => this.release(s));
    return stream;
  }

  close(): void {
    this.closed = true;
    for (const s of this.sessions) s.session.destroy();
    this.sessions.clear();
  }

  private async slot(signal: AbortSignal): Promise<Session> {
    for (;;) {
      signal.throwIfAborted();
      if (this.closed) throw new Error('HTTP/2 sessions closed');
      const free = [...this.sessions].find((s) => s.active < s.streams && !s.session.closed && !s.session.destroyed);
      if (free) {
        free.active += 1;
        return free;
      }
      if (this.sessions.size < Math.max(1, this.options.maxSessions())) {
        // One session opens at a time; requests that find it full open the next.
        const opened = await this.open();
        if (opened.active < opened.streams) {
          opened.active += 1;
          return opened;
        }
        continue;
      }
      await this.freeStream(signal);
    }
  }

  private freeStream(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(wake);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal.reason as Error);
      };
      this.waiting.push(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private release(s: Session): void {
    s.active -= 1;
    this.waiting.shift()?.();
  }

  private open(): Promise<Session> {
    this.opening ??= this.connect().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private connect(): Promise<Session> {
    const o = this.options;
    const tls: SecureClientSessionOptions = {
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
      ...(o.serverName !== undefined ? { servername: o.serverName } : {}),
      rejectUnauthorized: !o.insecureSkipVerify,
    };
    return new Promise<Session>((resolve, reject) => {
      const session = http2.connect(o.origin, tls);
      const timer = setTimeout(() => session.destroy(Object.assign(new Error('HTTP/2 connection timed out'), { code: 'ETIMEDOUT' })), o.connectTimeoutMs);
      const fail = (e: Error): void => {
        clearTimeout(timer);
        session.destroy();
        reject(e);
      };
      const closed = (): void => fail(new Error('HTTP/2 session closed before it was ready'));
      session.on('error', fail);
      session.once('close', closed);
      // The server's SETTINGS say how many streams it takes; they follow the connection at once.
      session.once('remoteSettings', (settings) => {
        clearTimeout(timer);
        session.removeListener('error', fail);
        session.removeListener('close', closed);
        const s: Session = { session, streams: Math.max(1, Math.min(MAX_STREAMS, settings.maxConcurrentStreams ?? MAX_STREAMS)), active: 0 };
        this.adopt(s);
        resolve(s);
      });
    });
  }

  /** Keeps a ready session: pings it while it lives, forgets it when it ends. */
  private adopt(s: Session): void {
    if (this.closed) {
      s.session.destroy();
      return;
    }
    this.sessions.add(s);
    // Only streams keep the process alive (their requests have timers); an idle session does not.
    s.session.unref();
    const ping = setInterval(() => {
      // Destroyed, its 'close' not yet emitted: nothing to ping.
      if (s.session.destroyed || s.session.closed) {
        clearInterval(ping);
        return;
      }
      const deadline = setTimeout(
        () => s.session.destroy(Object.assign(new Error('HTTP/2 ping not answered'), { code: 'ETIMEDOUT' })),
        this.options.pingTimeoutMs ?? PING_TIMEOUT_MS,
      );
      deadline.unref();
      const sent = s.session.ping((err) => {
        clearTimeout(deadline);
        if (err) s.session.destroy(err);
      });
      if (!sent) clearTimeout(deadline);
    }, this.options.pingEveryMs ?? PING_EVERY_MS);
    ping.unref();
    // Errors end the session; its streams fail with their own errors.
    s.session.on('error', () => {});
    s.session.once('goaway', () => this.sessions.delete(s));
    s.session.once('close', () => {
      clearInterval(ping);
      this.sessions.delete(s);
      // Requests waiting for a stream may open a new session now.
      for (const wake of this.waiting.splice(0)) wake();
    });
  }
}
