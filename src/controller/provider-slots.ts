/**
 * One live provider per source. A provider is rebuilt when the source's generation, the
 * Secret values it uses or their consent annotations change, and closed when the source
 * goes away or its credentials are no longer permitted (consent.ts). The last
 * good snapshot is kept, with the time it was read, so that a reconcile caused by our
 * own writes or by drift does not call the registry again: a snapshot older than the
 * age the reconciler allows (its interval tick), a registry watch, a spec change or a
 * failed sync ask for a fresh one.
 */
import { createHash } from 'node:crypto';
import type { VmRegistrySource } from '../api/types.ts';
import { providerOf } from '../api/types.ts';
import type { Logger } from '../metrics/logger.ts';
import type { ProviderMetrics } from '../metrics/provider-metrics.ts';
import { distinctDestinations } from '../providers/credential-use.ts';
import { secretKey, type Provider, type ProviderFactory, type SecretKeyReference, type Snapshot } from '../providers/provider.ts';
import type { ProviderFactories } from '../providers/registry.ts';
import { ALLOWED_ENDPOINTS_ANNOTATION, ConsentError, NO_AMBIENT, checkAmbient, checkSecretConsent, type AmbientPolicy } from './consent.ts';
import type { KubeClient, SecretContent } from '../runtime/kube-client.ts';

/** The one API call the slots make: a Secret by name. */
export type SecretReader = Pick<KubeClient, 'getSecret'>;

/** A snapshot with the time it was read (ms since the epoch). */
export interface AgedSnapshot {
  readonly snapshot: Snapshot;
  readonly readAt: number;
}

export class SecretError extends Error {
  override readonly name = 'SecretError';
}

interface Slot {
  provider: Provider;
  fingerprint: string;
  snapshot: Snapshot | undefined;
  /** When the snapshot was read (ms since the epoch). */
  readAt: number;
  needsRefresh: boolean;
}

export class ProviderSlots {
  private readonly slots = new Map<string, Slot>();
  private readonly factories: ProviderFactories;
  private readonly client: SecretReader;
  private readonly metrics: ProviderMetrics;
  private readonly log: Logger;
  private readonly onChange: (key: string) => void;
  private readonly ambient: AmbientPolicy;

  constructor(deps: {
    factories: ProviderFactories;
    client: SecretReader;
    metrics: ProviderMetrics;
    log: Logger;
    onChange: (key: string) => void;
    /** Where the operator's own identity may be used; default nowhere. */
    ambient?: AmbientPolicy;
  }) {
    this.ambient = deps.ambient ?? NO_AMBIENT;
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

  /**
   * The current snapshot of source and when it was read: fresh when first, marked
   * stale, or when `isStale(readAt)` says so; else the last good one.
   */
  async snapshot(key: string, source: VmRegistrySource, signal: AbortSignal, isStale: (readAt: number) => boolean = () => true): Promise<AgedSnapshot> {
    const slot = await this.slotFor(key, source);
    if (slot.needsRefresh || slot.snapshot === undefined || isStale(slot.readAt)) {
      // Cleared before the read: a change reported while it runs asks for the next one.
      slot.needsRefresh = false;
      try {
        const snapshot = await slot.provider.snapshot(signal);
        slot.snapshot = snapshot;
        slot.readAt = snapshot.readAt ?? Date.now();
      } catch (e) {
        slot.needsRefresh = true;
        throw e;
      }
    }
    return { snapshot: slot.snapshot, readAt: slot.readAt };
  }

  private async slotFor(key: string, source: VmRegistrySource): Promise<Slot> {
    const name = providerOf(source.spec);
    const factory = await this.factories.load(name);
    if (!factory) throw new SecretError(`provider ${name} is not available in this build`);
    const namespace = source.metadata.namespace;
    const refs = factory.secretRefs(source.spec);
    const read = await this.readSecrets(namespace, refs);
    const secrets = new Map<string, string>();
    const credentials = new Map<string, string>();
    for (const ref of refs) {
      const value = read.get(ref.name)?.data.get(ref.key);
      if (value === undefined) throw new SecretError(`cannot read key "${ref.key}" of Secret ${namespace}/${ref.name}: the Secret has no key "${ref.key}"`);
      secrets.set(secretKey(ref), value);
      if (ref.use !== 'trust') credentials.set(secretKey(ref), value);
    }
    // Consent is checked at every reconcile, before a provider is created or reused: a
    // withdrawn consent stops the provider (and its watches) at the next reconcile.
    const consents = this.checkConsent(factory, source, refs, read, credentials);
    if (consents instanceof Error) {
      await this.close(key);
      throw consents;
    }
    const hash = createHash('sha256');
    for (const [k, v] of [...secrets].sort()) hash.update(`${k}\0${v}\0`);
    for (const c of consents) hash.update(`consent\0${c}\0`);
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
    const slot: Slot = { provider, fingerprint, snapshot: undefined, readAt: 0, needsRefresh: true };
    this.slots.set(key, slot);
    provider.watch?.(() => {
      slot.needsRefresh = true;
      this.onChange(key);
    });
    return slot;
  }

  /** One GET per distinct Secret: values and the consent annotation come from the same read. */
  private async readSecrets(namespace: string, refs: readonly SecretKeyReference[]): Promise<Map<string, SecretContent>> {
    const read = new Map<string, SecretContent>();
    for (const ref of refs) {
      if (read.has(ref.name)) continue;
      try {
        read.set(ref.name, await this.client.getSecret(namespace, ref.name));
      } catch (e) {
        throw new SecretError(`cannot read key "${ref.key}" of Secret ${namespace}/${ref.name}: ${(e as Error).message}`, { cause: e });
      }
    }
    return read;
  }

  /**
   * The consent annotations in force (for the fingerprint), or the ConsentError that
   * forbids this use. A CA bundle (use: trust) is never sent and needs no consent.
   */
  private checkConsent(
    factory: ProviderFactory,
    source: VmRegistrySource,
    refs: readonly SecretKeyReference[],
    read: ReadonlyMap<string, SecretContent>,
    credentials: ReadonlyMap<string, string>,
  ): string[] | ConsentError {
    const namespace = source.metadata.namespace;
    const use = factory.credentialUse(source.spec, credentials);
    const destinations = distinctDestinations(use.destinations);
    const names = [...new Set(refs.filter((r) => r.use !== 'trust').map((r) => r.name))].sort();
    try {
      const consents = names.map((name) => {
        const allowedEndpoints = read.get(name)?.annotations[ALLOWED_ENDPOINTS_ANNOTATION];
        checkSecretConsent({ namespace, name, allowedEndpoints }, destinations);
        return `${name}=${allowedEndpoints ?? ''}`;
      });
      checkAmbient(this.ambient, namespace, use);
      return consents;
    } catch (e) {
      if (e instanceof ConsentError) return e;
      throw e;
    }
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
