/**
 * Registry changes of each kind the operator must follow, sent to a real Consul agent
 * and timed until the benchmark's own watch sees the WorkloadEntry change:
 * - flip: a TTL check goes critical (entry leaves) and back to passing (entry returns);
 * - add: a new instance without any check joins an existing service (entry appears);
 * - remove: an instance is deregistered (entry goes);
 * - readdress: an instance is registered again with a new address (new address appears).
 * Every change is timed on its own, from just before the Consul call.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsulAgent } from '../src/dev/consul-agent.ts';
import { addressOf, META, TAGS, type Fleet, type Instance } from './consul-load.ts';
import type { EntryWatch } from './entry-watch.ts';

export type ChangeKind = 'flip' | 'add' | 'remove' | 'readdress';
export const CHANGE_KINDS: readonly ChangeKind[] = ['flip', 'add', 'remove', 'readdress'];

export interface Timed {
  readonly kind: ChangeKind;
  /** undefined: not seen within the timeout. */
  readonly ms: number | undefined;
}

export interface ChangeDriverOptions {
  readonly agent: ConsulAgent;
  readonly watch: EntryWatch;
  readonly fleet: Fleet;
  /** Second octet base for new addresses (distinct from every fleet's). */
  readonly newAddressBase: number;
  readonly timeoutMs: number;
  /** Pause between two changes sent. */
  readonly gapMs: number;
}

function nodeOf(inst: Instance): string {
  return `vm-${inst.id}`;
}

/** Picks targets without repeating one until all were used; external instances only (no agent checks). */
class Picker {
  private next = 0;
  private readonly items: Instance[];
  constructor(items: readonly Instance[], seed: number) {
    this.items = [...items];
    let x = seed;
    for (let i = this.items.length - 1; i > 0; i--) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const j = x % (i + 1);
      [this.items[i], this.items[j]] = [this.items[j] as Instance, this.items[i] as Instance];
    }
  }
  take(): Instance {
    if (this.items.length === 0) throw new Error('no targets');
    return this.items[this.next++ % this.items.length] as Instance;
  }
}

export class ChangeDriver {
  private readonly o: ChangeDriverOptions;
  private readonly external: Picker;
  private readonly flips: Picker;
  private added = 0;
  /** Instances removed or re-addressed by this driver are not touched again. */
  private readonly used = new Set<string>();

  constructor(o: ChangeDriverOptions, seed = 7) {
    this.o = o;
    this.external = new Picker(o.fleet.instances.filter((x) => x.ttlCheck === undefined), seed);
    this.flips = new Picker(o.fleet.flipPool, seed + 1);
  }

  private fresh(): Instance {
    for (let i = 0; i < 1000; i++) {
      const inst = this.external.take();
      if (!this.used.has(inst.id)) {
        this.used.add(inst.id);
        return inst;
      }
    }
    throw new Error('ran out of instances to change');
  }

  private async timed(kind: ChangeKind, send: () => Promise<void>, seen: () => boolean): Promise<Timed> {
    const t0 = performance.now();
    await send();
    try {
      const at = await this.o.watch.until(kind, seen, this.o.timeoutMs);
      return { kind, ms: at - t0 };
    } catch {
      return { kind, ms: undefined };
    }
  }

  /** One change of this kind; resolves when it was seen (or timed out). A flip is two changes. */
  one(kind: ChangeKind): Promise<Timed[]> {
    const { agent, watch } = this.o;
    switch (kind) {
      case 'flip': {
        const inst = this.flips.take();
        return (async () => {
          const down = await this.timed('flip', () => agent.setTtl(inst.ttlCheck as string, 'fail', 'bench'), () => !watch.has(inst.address));
          const up = await this.timed('flip', () => agent.setTtl(inst.ttlCheck as string, 'pass', 'bench'), () => watch.has(inst.address));
          return [down, up];
        })();
      }
      case 'add': {
        const like = this.external.take();
        const n = this.added++;
        const address = addressOf(n >> 3, n & 7, this.o.newAddressBase);
        const id = `${like.service}-add-${n}`;
        return this.timed(
          'add',
          () => agent.registerExternal({ Node: `vm-${id}`, Address: address, Service: { ID: id, Service: like.service, Tags: TAGS(like), Address: address, Port: like.port, Meta: META } }),
          () => watch.has(address),
        ).then((t) => [t]);
      }
      case 'remove': {
        const inst = this.fresh();
        return this.timed('remove', () => agent.deregisterExternal(nodeOf(inst), inst.id), () => !watch.has(inst.address)).then((t) => [t]);
      }
      case 'readdress': {
        const inst = this.fresh();
        const n = this.added++;
        const address = addressOf(n >> 3, n & 7, this.o.newAddressBase);
        return this.timed(
          'readdress',
          () => agent.registerExternal({ Node: nodeOf(inst), Address: address, Service: { ID: inst.id, Service: inst.service, Tags: TAGS(inst), Address: address, Port: inst.port, Meta: META } }),
          () => watch.has(address) && !watch.has(inst.address),
        ).then((t) => [t]);
      }
    }
  }

  /** `count` changes of a kind, one sent every gapMs, all timed. */
  async run(kind: ChangeKind, count: number): Promise<Timed[]> {
    const pending: Promise<Timed[]>[] = [];
    for (let i = 0; i < count; i++) {
      pending.push(this.one(kind));
      if (this.o.gapMs > 0) await sleep(this.o.gapMs);
    }
    return (await Promise.all(pending)).flat();
  }

  /** Changes of every kind in turn for `seconds`, `perSecond` of them; returns how many were sent, seen, and not seen of each kind. */
  async churn(seconds: number, perSecond: number): Promise<{ sent: number; seen: number; unseen: Partial<Record<ChangeKind, number>> }> {
    const end = performance.now() + seconds * 1000;
    const pending: Promise<Timed[]>[] = [];
    let i = 0;
    while (performance.now() < end) {
      pending.push(this.one(CHANGE_KINDS[i++ % CHANGE_KINDS.length] as ChangeKind));
      await sleep(1000 / perSecond);
    }
    const all = (await Promise.all(pending)).flat();
    const unseen: Partial<Record<ChangeKind, number>> = {};
    for (const t of all) if (t.ms === undefined) unseen[t.kind] = (unseen[t.kind] ?? 0) + 1;
    return { sent: all.length, seen: all.filter((t) => t.ms !== undefined).length, unseen };
  }
}
