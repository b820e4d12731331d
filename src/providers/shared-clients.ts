/**
 * Registry clients shared between sources: ten sources reading one AWS region with the
 * same credentials use one EC2 client (one connection pool, one credential refresh),
 * not ten. A client is created on first acquire and closed when its last user releases it.
 * Keys are built by the providers from the settings that shape a client; secret values
 * enter a key only as a hash.
 */
import { createHash } from 'node:crypto';

export interface Lease<C> {
  readonly client: C;
  /** Gives the client back; the last release closes it. Idempotent. */
  release(): void;
}

interface Entry<C> {
  readonly client: C;
  users: number;
}

export class SharedClients<C> {
  private readonly entries = new Map<string, Entry<C>>();
  private readonly close: (client: C) => void;

  constructor(close: (client: C) => void) {
    this.close = close;
  }

  acquire(key: string, create: () => C): Lease<C> {
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { client: create(), users: 0 };
      this.entries.set(key, entry);
    }
    entry.users++;
    const e = entry;
    let released = false;
    return {
      client: e.client,
      release: () => {
        if (released) return;
        released = true;
        e.users--;
        if (e.users === 0 && this.entries.get(key) === e) {
          this.entries.delete(key);
          this.close(e.client);
        }
      },
    };
  }

  /** Clients alive now (tests, metrics). */
  get size(): number {
    return this.entries.size;
  }
}

/** A stable key from settings; values named secret are hashed, never kept in clear. */
export function clientKey(settings: Readonly<Record<string, string | number | boolean | undefined>>, secrets: readonly (string | undefined)[] = []): string {
  const hash = createHash('sha256');
  for (const s of secrets) hash.update(`${s ?? ''}\0`);
  const ordered = Object.keys(settings)
    .sort()
    .map((k) => [k, settings[k]]);
  return JSON.stringify([ordered, hash.digest('hex')]);
}
