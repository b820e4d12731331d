/**
 * Which cached services have an instance on a node, kept from the cached answers as they
 * change (one update per stored answer), so a node-level check that changed (serfHealth,
 * maintenance) makes the feed read just the services on that node.
 */
import type { HealthEntry } from './api-types.ts';

export class NodeIndex {
  private readonly byNode = new Map<string, Set<string>>();
  private readonly byService = new Map<string, ReadonlySet<string>>();

  /** Records the nodes of a service's latest answer. */
  set(service: string, entries: readonly HealthEntry[]): void {
    const nodes = new Set(entries.map((e) => e.Node.Node));
    const old = this.byService.get(service) ?? new Set<string>();
    for (const node of old) if (!nodes.has(node)) this.unlink(node, service);
    for (const node of nodes) {
      if (old.has(node)) continue;
      let services = this.byNode.get(node);
      if (!services) this.byNode.set(node, (services = new Set()));
      services.add(service);
    }
    if (nodes.size === 0) this.byService.delete(service);
    else this.byService.set(service, nodes);
  }

  delete(service: string): void {
    for (const node of this.byService.get(service) ?? []) this.unlink(node, service);
    this.byService.delete(service);
  }

  servicesOn(node: string): ReadonlySet<string> {
    return this.byNode.get(node) ?? new Set();
  }

  clear(): void {
    this.byNode.clear();
    this.byService.clear();
  }

  private unlink(node: string, service: string): void {
    const services = this.byNode.get(node);
    if (!services) return;
    services.delete(service);
    if (services.size === 0) this.byNode.delete(node);
  }
}
