/**
 * Registry change → istiod endpoint change, for `make bench` beside the time to the
 * WorkloadEntry change. istiod offers no watch on its endpoint index outside xDS, so
 * its /debug/endpointz is polled for one host; the poll interval bounds the resolution
 * and is reported with the figures. Measure on a small dedicated service: endpointz
 * dumps every shard, so its cost grows with the mesh.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Istiod } from '../src/dev/istiod.ts';
import { percentile, round } from './report.ts';

export interface IstiodFlipOptions {
  readonly istiod: Istiod;
  /** Host of the generated ServiceEntry, e.g. "bench-flip.service.consul". */
  readonly host: string;
  readonly namespace: string;
  /** Address of the instance that is flipped. */
  readonly address: string;
  /** Makes the registry report the instance unhealthy (down = true) or healthy again. */
  readonly flip: (down: boolean) => Promise<void>;
  readonly rounds: number;
  readonly pollMs?: number;
  readonly timeoutMs?: number;
}

export interface IstiodFlipResult {
  readonly removedMs: number[];
  readonly addedMs: number[];
  readonly lost: number;
  readonly pollMs: number;
}

async function hasAddress(istiod: Istiod, host: string, namespace: string, address: string): Promise<boolean> {
  return (await istiod.endpointsOf(host, namespace)).some((e) => e.Addresses?.includes(address));
}

/** Time from `since` until the address is present (or absent) in istiod, or undefined on timeout. */
async function until(o: IstiodFlipOptions, present: boolean, since: number, pollMs: number): Promise<number | undefined> {
  const deadline = since + (o.timeoutMs ?? 60_000);
  while (performance.now() < deadline) {
    if ((await hasAddress(o.istiod, o.host, o.namespace, o.address)) === present) return performance.now() - since;
    await sleep(pollMs);
  }
  return undefined;
}

/** Flips one instance `rounds` times and times istiod's view of each flip. */
export async function measureIstiodFlips(o: IstiodFlipOptions): Promise<IstiodFlipResult> {
  const pollMs = o.pollMs ?? 25;
  const removedMs: number[] = [];
  const addedMs: number[] = [];
  let lost = 0;
  if ((await until(o, true, performance.now(), pollMs)) === undefined) throw new Error(`istiod never showed ${o.address} for ${o.host}`);
  for (let i = 0; i < o.rounds; i++) {
    for (const down of [true, false]) {
      const t0 = performance.now();
      await o.flip(down);
      const ms = await until(o, !down, t0, pollMs);
      if (ms === undefined) lost++;
      else (down ? removedMs : addedMs).push(ms);
    }
  }
  return { removedMs, addedMs, lost, pollMs };
}

/** Report rows in bench/report.ts's shape. */
export function istiodRows(r: IstiodFlipResult): [string, string | number][] {
  const all = [...r.removedMs, ...r.addedMs];
  return [
    ['1b. registry → istiod endpoint p50 (ms)', round(percentile(all, 50))],
    ['1b. registry → istiod endpoint p99 (ms)', round(percentile(all, 99))],
    ['1b. removed / added p50 (ms)', `${round(percentile(r.removedMs, 50))} / ${round(percentile(r.addedMs, 50))}`],
    ['1b. istiod poll interval (ms), lost', `${r.pollMs}, ${r.lost}`],
  ];
}
