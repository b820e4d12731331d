/**
 * The benchmark's own eye on the apiserver: a watch on the WorkloadEntries of one
 * namespace, indexed by spec.address, that timestamps the moment an address appears or
 * disappears. It uses its own connection and knows nothing of the operator's caches.
 */
import { CustomObjectsApi, Watch, type KubeConfig } from '@kubernetes/client-node';
import { WE_GROUP, WE_PLURAL, WE_VERSION, type WorkloadEntry } from '../src/api/istio.ts';

type Waiter = { readonly check: () => boolean; readonly resolve: (at: number) => void };

export class EntryWatch {
  private readonly kc: KubeConfig;
  private readonly namespace: string;
  /** name → address */
  private readonly byName = new Map<string, string>();
  /** address → number of entries with it */
  private readonly byAddress = new Map<string, number>();
  private waiters: Waiter[] = [];
  private abort: AbortController | undefined;
  private resourceVersion = '';
  private stopped = false;
  /** The last watch ended on an expired resourceVersion. */
  private expired = false;
  events = 0;

  constructor(kc: KubeConfig, namespace: string) {
    this.kc = kc;
    this.namespace = namespace;
  }

  get size(): number {
    return this.byName.size;
  }

  has(address: string): boolean {
    return (this.byAddress.get(address) ?? 0) > 0;
  }

  async start(): Promise<void> {
    await this.relist();
    await this.watch();
  }

  private async relist(): Promise<void> {
    const api = this.kc.makeApiClient(CustomObjectsApi);
    const list = (await api.listNamespacedCustomObject({ group: WE_GROUP, version: WE_VERSION, namespace: this.namespace, plural: WE_PLURAL })) as {
      items: WorkloadEntry[];
      metadata: { resourceVersion: string };
    };
    this.byName.clear();
    this.byAddress.clear();
    for (const e of list.items) this.put(e);
    this.resourceVersion = list.metadata.resourceVersion;
    this.settle();
  }

  private async watch(): Promise<void> {
    const path = `/apis/${WE_GROUP}/${WE_VERSION}/namespaces/${this.namespace}/${WE_PLURAL}`;
    // client-node ends a watch silent for 30 s, before any bookmark came: a quiet
    // namespace's resourceVersion then ages until etcd compacts it (the ERROR case below).
    this.abort = await new Watch(this.kc).watch(
      path,
      { resourceVersion: this.resourceVersion, allowWatchBookmarks: true },
      (phase: string, obj: WorkloadEntry & { metadata: { resourceVersion?: string } }) => {
        // An expired resourceVersion comes as an ERROR event (a Status, code 410) in a
        // successful stream: list again, or every re-watch fails the same way.
        if (phase === 'ERROR') {
          this.expired = true;
          return;
        }
        if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
        if (phase === 'BOOKMARK') return;
        this.events++;
        if (phase === 'DELETED') this.remove(obj.metadata.name);
        else this.put(obj);
        this.settle();
      },
      (err: unknown) => {
        if (this.stopped) return;
        const gone = this.expired || (err as { statusCode?: number } | null)?.statusCode === 410;
        this.expired = false;
        void (gone ? this.relist() : Promise.resolve()).then(() => this.watch()).catch(() => setTimeout(() => void this.watch(), 500));
      },
    );
  }

  private put(e: WorkloadEntry): void {
    this.remove(e.metadata.name);
    const address = e.spec?.address ?? '';
    this.byName.set(e.metadata.name, address);
    this.byAddress.set(address, (this.byAddress.get(address) ?? 0) + 1);
  }

  private remove(name: string): void {
    const old = this.byName.get(name);
    if (old === undefined) return;
    this.byName.delete(name);
    const n = (this.byAddress.get(old) ?? 1) - 1;
    if (n <= 0) this.byAddress.delete(old);
    else this.byAddress.set(old, n);
  }

  private settle(): void {
    if (this.waiters.length === 0) return;
    const now = performance.now();
    const keep: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.check()) w.resolve(now);
      else keep.push(w);
    }
    this.waiters = keep;
  }

  /** Resolves with the performance.now() of the event that made check() true. */
  until(what: string, check: () => boolean, timeoutMs: number): Promise<number> {
    if (check()) return Promise.resolve(performance.now());
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const waiter: Waiter = {
        check,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      };
      this.waiters.push(waiter);
    });
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }
}
