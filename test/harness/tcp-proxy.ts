/**
 * A loopback TCP proxy that can stop forwarding: a stalled network path between one
 * replica and the apiserver. While stalled, nothing is read from either side (TCP
 * backpressure, like a silent partition) and new connections are accepted but go
 * nowhere. Healing drops every connection that lived through the stall, as a path
 * that stayed down longer than the peers' patience would, so bytes held back are never
 * delivered late; new connections are forwarded again.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class StallableProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly stalledSockets = new Set<Socket>();
  /** Each forwarded client socket and its upstream socket. */
  private readonly pairs = new Map<Socket, Socket>();
  private stalled = false;
  /** Connections accepted (forwarded or not). */
  connections = 0;

  private constructor(server: Server) {
    this.server = server;
  }

  static async start(target: { host: string; port: number }): Promise<StallableProxy> {
    const server = createServer();
    const proxy = new StallableProxy(server);
    server.on('connection', (client) => proxy.accept(client, target));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy is not listening');
    return address.port;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.stalledSockets.delete(socket);
    });
    socket.on('error', () => socket.destroy());
  }

  private accept(client: Socket, target: { host: string; port: number }): void {
    this.connections++;
    this.track(client);
    if (this.stalled) {
      client.pause();
      this.stalledSockets.add(client);
      return;
    }
    const upstream = connect(target.port, target.host);
    this.track(upstream);
    this.pairs.set(client, upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => {
      this.pairs.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
  }

  /** Stops forwarding in both directions on every connection, and for new ones. */
  stall(): void {
    this.stalled = true;
    // Unpiped, so no 'drain' can resume them.
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
    }
    for (const s of this.sockets) {
      s.pause();
      this.stalledSockets.add(s);
    }
  }

  /** Drops the connections that lived through the stall; new connections are forwarded. */
  heal(): void {
    this.stalled = false;
    for (const s of this.stalledSockets) s.destroy();
    this.stalledSockets.clear();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
