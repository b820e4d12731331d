/**
 * Fills a Consul agent with the benchmark's fleet, the fastest honest way:
 * - the bulk goes straight into the catalog through the transaction API (PUT /v1/txn),
 *   one external node per VM (as real VMs are), many operations per request;
 * - a pool of "flip" instances is registered on the agent itself with TTL checks, so
 *   health flips go through the agent's own check machinery (PUT /v1/agent/check/...).
 * Every instance has a unique address, which is how the benchmark recognises its entry.
 */
import type { ConsulAgent } from '../src/dev/consul-agent.ts';

export const MESH_TAG = 'mesh';

export interface Instance {
  readonly service: string;
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** Selection tags (MESH_TAG or another, and the shard tag). */
  readonly tags?: readonly string[];
  /** TTL check id when the instance lives on the agent (flip pool). */
  readonly ttlCheck?: string;
}

export interface Fleet {
  readonly instances: readonly Instance[];
  readonly flipPool: readonly Instance[];
}

/** Sources can split the fleet by these tags: service s carries shard-(s mod SHARDS). */
export const SHARDS = 10;

export function shardTag(k: number): string {
  return `shard-${k}`;
}

export function serviceName(s: number, prefix = 'svc'): string {
  return `${prefix}-${String(s).padStart(4, '0')}`;
}

/** A unique IPv4 address per (service, instance) within a fleet; `base` keeps fleets and changes apart. */
export function addressOf(s: number, i: number, base = 16): string {
  return `10.${base + (s >> 8)}.${s & 255}.${10 + i}`;
}

export interface FleetOptions {
  /** Service name prefix (default "svc"). */
  readonly prefix?: string;
  /** Second octet base of the addresses (default 16). */
  readonly base?: number;
  /** Tag every service carries (default MESH_TAG). */
  readonly tag?: string;
}

/** The fleet: services × instances; instance 0 of the first `pool` services is a flip target. */
export function planFleet(services: number, instances: number, pool: number, options: FleetOptions = {}): Fleet {
  const all: Instance[] = [];
  const flipPool: Instance[] = [];
  for (let s = 0; s < services; s++) {
    const service = serviceName(s, options.prefix);
    for (let i = 0; i < instances; i++) {
      const id = `${service}-${i}`;
      const flip = i === 0 && s < pool;
      const inst: Instance = {
        service,
        id,
        address: addressOf(s, i, options.base),
        port: 8080 + (i % 3),
        tags: [options.tag ?? MESH_TAG, shardTag(s % SHARDS)],
        ...(flip ? { ttlCheck: `${id}-ttl` } : {}),
      };
      all.push(inst);
      if (flip) flipPool.push(inst);
    }
  }
  return { instances: all, flipPool };
}

export const TAGS = (inst: Instance): string[] => [...(inst.tags ?? [MESH_TAG]), `version|v${1 + (inst.port % 2)}`];
export const META = { protocol: 'http' };

/** Consul's transaction API takes at most 128 operations per request; two per instance (node + service). */
const OPS_PER_TXN = 128;

async function runTxn(agent: ConsulAgent, ops: unknown[]): Promise<void> {
  const res = (await agent.api('PUT', '/v1/txn', ops)) as { Errors?: unknown[] | null } | undefined;
  if (res?.Errors && res.Errors.length > 0) throw new Error(`consul txn failed: ${JSON.stringify(res.Errors).slice(0, 300)}`);
}

async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Registers the fleet; returns the time it took in ms. */
export async function registerFleet(agent: ConsulAgent, fleet: Fleet, concurrency = 4): Promise<number> {
  const started = performance.now();
  const external = fleet.instances.filter((x) => x.ttlCheck === undefined);
  const batches: unknown[][] = [];
  let ops: unknown[] = [];
  for (const inst of external) {
    const node = `vm-${inst.id}`;
    ops.push({ Node: { Verb: 'set', Node: { Node: node, Address: inst.address } } });
    ops.push({
      Service: {
        Verb: 'set',
        Node: node,
        Service: { ID: inst.id, Service: inst.service, Tags: TAGS(inst), Address: inst.address, Port: inst.port, Meta: META },
      },
    });
    if (ops.length >= OPS_PER_TXN) {
      batches.push(ops);
      ops = [];
    }
  }
  if (ops.length > 0) batches.push(ops);
  await pool(batches, concurrency, (b) => runTxn(agent, b));
  await pool(fleet.flipPool, concurrency, (inst) =>
    agent.registerService({
      ID: inst.id,
      Name: inst.service,
      Address: inst.address,
      Port: inst.port,
      Tags: TAGS(inst),
      Meta: META,
      Checks: [{ CheckID: inst.ttlCheck, Name: 'ttl', TTL: '24h', Status: 'passing' }],
    }),
  );
  return performance.now() - started;
}

/** Waits until Consul's health endpoint shows every instance of the fleet. */
export async function waitForCatalog(agent: ConsulAgent, fleet: Fleet, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const perService = new Map<string, number>();
  for (const inst of fleet.instances) perService.set(inst.service, (perService.get(inst.service) ?? 0) + 1);
  const pending = new Set(perService.keys());
  while (pending.size > 0) {
    if (Date.now() > deadline) throw new Error(`consul: ${pending.size} services not complete after ${timeoutMs} ms`);
    await pool([...pending], 16, async (name) => {
      const entries = (await agent.api('GET', `/v1/health/service/${name}?passing=1`)) as unknown[];
      if (entries.length === perService.get(name)) pending.delete(name);
    });
  }
}
