/**
 * A source's desired state kept between syncs and updated per group of endpoints, so a
 * registry change maps only the groups it touched and says which entry names changed.
 * Providers that watch (Consul: one group per service answer) hand back the same group
 * object while a group does not change; a changed group is a new object. Only the
 * entries are kept: a group's endpoints are asked for when it is new, and then dropped.
 *
 * The result equals buildDesiredState over all endpoints (desired.ts) as long as no two
 * groups clash (same endpoint id, entry name or workload): clashes inside one group are
 * settled in endpoint id order as there. A clash between groups is rare (a registry
 * error or relabel rules that merge services); while it lasts every update maps the
 * whole source in endpoint id order, as buildDesiredState does, and reports every name
 * as changed.
 */
import type { Endpoint, EndpointGroup } from '../providers/provider.ts';
import { mapInIdOrder, sortedSkips, type EndpointMapper, type MapResult } from './desired.ts';
import type { DesiredEntry, DesiredState, SkippedEndpoint } from './types.ts';

interface GroupResult {
  readonly entries: readonly DesiredEntry[];
  readonly skipped: readonly SkippedEndpoint[];
  /** The workload key of each entry, in the order of entries (its endpoint id and name are on the entry). */
  readonly workloads: readonly string[];
}

/** How many groups hold each value of one key; the strings are the entries' own, so counting them costs no copies. */
class KeyCounts {
  private readonly counts = new Map<string, number>();

  /** Counts one more holder; true when it makes a clash (a second holder). */
  add(key: string): boolean {
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    return n === 2;
  }

  /** Counts one holder less; true when it ends a clash. */
  remove(key: string): boolean {
    const n = (this.counts.get(key) ?? 0) - 1;
    if (n <= 0) this.counts.delete(key);
    else this.counts.set(key, n);
    return n === 1;
  }
}

export interface GroupedUpdate {
  /** The desired entries by name. The map is the index's own: it changes with the next update. */
  readonly byName: ReadonlyMap<string, DesiredEntry>;
  /** Names whose desired entry is new, gone or another object since the previous update; undefined: any may have. */
  readonly changed: ReadonlySet<string> | undefined;
}

export class GroupedMapping {
  private readonly mapOne: EndpointMapper;
  private readonly results = new WeakMap<EndpointGroup, GroupResult>();
  /** The groups of the latest update, in its order. */
  private groups = new Map<EndpointGroup, GroupResult>();
  private readonly byName = new Map<string, DesiredEntry>();
  /** Endpoint ids, entry names and workloads held by more than one group are clashes. */
  private readonly ids = new KeyCounts();
  private readonly names = new KeyCounts();
  private readonly workloads = new KeyCounts();
  private clashes = 0;
  private skippedGroups = 0;
  private entryList: readonly DesiredEntry[] | undefined;
  private skippedList: readonly SkippedEndpoint[] | undefined;
  /** Set while groups clash: the whole-source mapping of the latest update. */
  private whole: DesiredState | undefined;

  constructor(mapOne: EndpointMapper) {
    this.mapOne = mapOne;
  }

  update(groups: readonly EndpointGroup[]): GroupedUpdate {
    const before = new Map<string, DesiredEntry | undefined>();
    const next = new Set(groups);
    for (const [group, result] of this.groups) if (!next.has(group)) this.remove(group, result, before);
    const order = new Map<EndpointGroup, GroupResult>();
    for (const group of groups) {
      let result = this.groups.get(group);
      if (result === undefined) {
        result = this.resultOf(group);
        this.add(result, before);
      }
      order.set(group, result);
    }
    this.groups = order;
    this.entryList = undefined;
    this.skippedList = undefined;
    if (this.clashes > 0) return this.mapWhole(groups);
    if (this.whole !== undefined) {
      // The clash is gone: byName follows the groups again.
      this.whole = undefined;
      this.byName.clear();
      for (const result of this.groups.values()) for (const entry of result.entries) this.byName.set(entry.name, entry);
      return { byName: this.byName, changed: undefined };
    }
    const changed = new Set<string>();
    for (const [name, old] of before) if (this.byName.get(name) !== old) changed.add(name);
    return { byName: this.byName, changed };
  }

  /** The desired state of the latest update (built on first use after it). */
  state(): DesiredState {
    if (this.whole) return this.whole;
    this.entryList ??= [...this.groups.values()].flatMap((r) => r.entries);
    this.skippedList ??= this.skippedGroups === 0 ? [] : sortedSkips([...this.groups.values()].flatMap((r) => r.skipped));
    return { entries: this.entryList, skipped: this.skippedList };
  }

  private resultOf(group: EndpointGroup): GroupResult {
    const known = this.results.get(group);
    if (known) return known;
    const endpoints = group.endpoints();
    // Each endpoint mapped once, so the entries below are the winners' own objects.
    const results = new Map<Endpoint, MapResult>();
    const mapOnce: EndpointMapper = (endpoint) => {
      let r = results.get(endpoint);
      if (r === undefined && !results.has(endpoint)) results.set(endpoint, (r = this.mapOne(endpoint)));
      return r as MapResult;
    };
    const { entries, skipped } = mapInIdOrder(endpoints, mapOnce);
    const workloadOf = new Map<DesiredEntry, string>();
    for (const endpoint of endpoints) {
      const mapped = mapOnce(endpoint);
      if (mapped !== null && !('skip' in mapped)) workloadOf.set(mapped.entry, mapped.workloadKey);
    }
    const result = { entries, skipped, workloads: entries.map((e) => workloadOf.get(e) as string) };
    this.results.set(group, result);
    return result;
  }

  private add(result: GroupResult, before: Map<string, DesiredEntry | undefined>): void {
    result.entries.forEach((entry, i) => {
      if (this.ids.add(entry.endpointId)) this.clashes++;
      if (this.names.add(entry.name)) this.clashes++;
      if (this.workloads.add(result.workloads[i] as string)) this.clashes++;
    });
    for (const entry of result.entries) {
      if (!before.has(entry.name)) before.set(entry.name, this.byName.get(entry.name));
      this.byName.set(entry.name, entry);
    }
    if (result.skipped.length > 0) this.skippedGroups++;
  }

  private remove(group: EndpointGroup, result: GroupResult, before: Map<string, DesiredEntry | undefined>): void {
    result.entries.forEach((entry, i) => {
      if (this.ids.remove(entry.endpointId)) this.clashes--;
      if (this.names.remove(entry.name)) this.clashes--;
      if (this.workloads.remove(result.workloads[i] as string)) this.clashes--;
    });
    for (const entry of result.entries) {
      if (!before.has(entry.name)) before.set(entry.name, this.byName.get(entry.name));
      // Another group may hold the name too (a clash): it stays until that group goes.
      if (this.byName.get(entry.name) === entry) this.byName.delete(entry.name);
    }
    if (result.skipped.length > 0) this.skippedGroups--;
    this.groups.delete(group);
  }

  /** Groups clash: the whole source is mapped in endpoint id order, as buildDesiredState does. */
  private mapWhole(groups: readonly EndpointGroup[]): GroupedUpdate {
    const { entries, skipped } = mapInIdOrder(
      groups.flatMap((g) => g.endpoints()),
      this.mapOne,
    );
    this.whole = { entries, skipped: sortedSkips(skipped) };
    // byName answers for the whole mapping until the clash is gone.
    this.byName.clear();
    for (const entry of entries) this.byName.set(entry.name, entry);
    return { byName: this.byName, changed: undefined };
  }
}
