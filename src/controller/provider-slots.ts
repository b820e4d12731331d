/**
 * One live provider per source. A provider is rebuilt when the source's generation or
 * the Secret values it uses change, and closed when the source goes away. The last
 * good snapshot is kept so that a reconcile caused by our own writes or by drift does
 * not call the registry again; interval ticks and registry watches ask for a fresh one.
 */
import { createHash } from 'node:crypto';
import type { VmRegistrySource } from '../api/types.ts';
import { providerOf } from '../api/types.ts';
import type { Logger } from '../metrics/logger.ts';
import type { ProviderMetrics } from '../metrics/provider-metrics.ts';
import { secretKey, type Provider, type Snapshot } from '../providers/provider.ts';
import type { ProviderFactories } from '../providers/registry.ts';
import type { KubeClient } from './kube-client.ts';

export class SecretError extends Error {
  override readonly name = 'SecretError';
}

interface Slot {
  provider: Provider;
  fingerprint: string;
  snapshot: Snapshot | undefined;
  needsRefresh: boolean;
}

export class ProviderSlots {
  private readonly slots = new Map<string, Slot>();
  private readonly factories: ProviderFactories;
  private readonly client: KubeClient;
  private readonly metrics: ProviderMetrics;
  private readonly log: Logger;
  private readonly onChange: (key: string) => void;

  constructor(deps: { factories: ProviderFactories; client: KubeClient; metrics: ProviderMetrics; log: Logger; onChange: (key: string) => void }) {
    this.factories = deps.factories;
    this.client = deps.client;
    this.metrics = deps.metrics;
    this.log = deps.log;
    this.onChange = deps.onChange;
  }

  /** Asks for a fresh snapshot on the next reconcile of key. */
  markStale(key: string): void {
    const slot = this.slots.get(key);
    if (slot) slot.needsRefresh = true;
  }

  /** The current snapshot of source: fresh when stale or first, else the last good one. */
  async snapshot(key: string, source: VmRegistrySource, signal: AbortSignal): Promise<Snapshot> {
    const slot = await this.slotFor(key, source);
    if (slot.needsRefresh || slot.snapshot === undefined) {
      const snapshot = await slot.provider.snapshot(signal);
      slot.snapshot = snapshot;
      slot.needsRefresh = false;
    }
    return slot.snapshot;
  }

  private async slotFor(key: string, source: VmRegistrySource): Promise<Slot> {
    const name = providerOf(source.spec);
    const factory = await this.factories.load(name);
    if (!factory) throw new SecretError(`provider ${name} is not available in this build`);
    const secrets = new Map<string, string>();
    for (const ref of factory.secretRefs(source.spec)) {
      try {
        secrets.set(secretKey(ref), await this.client.getSecretValue(source.metadata.namespace, ref.name, ref.key));
      } catch (e) {
        throw new SecretError(`cannot read key "${ref.key}" of Secret ${source.metadata.namespace}/${ref.name}: ${(e as Error).message}`, { cause: e });
      }
    }
    const hash = createHash('sha256');
    for (const [k, v] of [...secrets].sort()) hash.update(`${k}\0${v}\0`);
    const fingerprint = `${source.metadata.uid}/${source.metadata.generation}/${hash.digest('hex')}`;
    const existing = this.slots.get(key);
    if (existing && existing.fingerprint === fingerprint) return existing;
    if (existing) await this.close(key);
    const provider = factory.create({
      source: key,
      spec: source.spec,
      secrets,
      metrics: this.metrics,
      log: this.log.with({ source: key, provider: name }),
    });
    const slot: Slot = { provider, fingerprint, snapshot: undefined, needsRefresh: true };
    this.slots.set(key, slot);
    provider.watch?.(() => {
      slot.needsRefresh = true;
      this.onChange(key);
    });
    return slot;
  }

  async close(key: string): Promise<void> {
    const slot = this.slots.get(key);
    if (!slot) return;
    this.slots.delete(key);
    await slot.provider.close().catch((e: unknown) => this.log.warn('closing provider failed', { source: key, error: e }));
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.slots.keys()].map((k) => this.close(k)));
  }
}
