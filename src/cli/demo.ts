/**
 * `vmreg demo` (make demo): the main job on this machine. A real local control plane, a
 * real Consul agent with sample VM services, and the operator; then it shows what a user
 * would see, flips a health check, and edits a managed entry by hand.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { startLocalCluster, type LocalCluster } from '../dev/cluster.ts';
import { ConsulAgent } from '../dev/consul-agent.ts';
import { cacheRoot } from '../dev/paths.ts';
import { Operator } from '../controller/operator.ts';
import { ControllerMetrics } from '../metrics/controller-metrics.ts';
import { createLogger } from '../metrics/logger.ts';
import { builtinProviders } from '../providers/builtin.ts';

export const DEMO_HELP = `vmreg demo — see the operator work, on this machine only

Starts a local control plane and a Consul agent (both built from their Go modules on
first use; that takes several minutes once), registers sample VM services in Consul,
runs the operator, and shows the WorkloadEntries and the generated ServiceEntries
(one per service) follow Consul.
`;

const NS = 'demo';

const SOURCE = (consul: string): string => `apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: vmregistry.io/v1alpha1
kind: VmRegistrySource
metadata: {name: consul-vms, namespace: ${NS}}
spec:
  interval: 30s
  consul:
    address: ${consul}
    tags: [mesh]
  workloadEntry:
    labels: {env: demo}
    serviceAccount: legacy-vms
  serviceEntries: {}
`;

interface SampleVm {
  id: string;
  service: string;
  address: string;
  port: number;
  tags: string[];
  meta: Record<string, string>;
}

const VMS: SampleVm[] = [
  { id: 'orders-1', service: 'orders', address: '10.10.1.11', port: 8080, tags: ['mesh', 'version|v2'], meta: { protocol: 'http' } },
  { id: 'orders-2', service: 'orders', address: '10.10.1.12', port: 8080, tags: ['mesh', 'version|v2'], meta: { protocol: 'http' } },
  { id: 'orders-3', service: 'orders', address: '10.10.1.13', port: 8080, tags: ['mesh', 'version|v1'], meta: { protocol: 'http' } },
  { id: 'payments-db-1', service: 'payments-db', address: '10.10.2.21', port: 5432, tags: ['mesh', 'role|primary'], meta: { protocol: 'tcp' } },
  { id: 'payments-db-2', service: 'payments-db', address: '10.10.2.22', port: 5432, tags: ['mesh', 'role|replica'], meta: { protocol: 'tcp' } },
  { id: 'billing-queue-1', service: 'billing-queue', address: '10.10.3.31', port: 5672, tags: ['mesh'], meta: { protocol: 'tcp' } },
  { id: 'old-batch-1', service: 'old-batch', address: '10.10.9.91', port: 9000, tags: ['no-mesh'], meta: {} },
];

export async function demo(argv: string[]): Promise<number> {
  parseArgs({ args: argv, options: {}, strict: true });
  const say = (s = ''): void => void process.stdout.write(s + '\n');
  const step = (s: string): void => say(`\n==> ${s}`);
  const started = Date.now();

  step('Starting a local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)');
  const cluster = await startLocalCluster({ log: say });
  let agent: ConsulAgent | undefined;
  let operator: Operator | undefined;
  try {
    step('Starting a Consul agent and registering sample VMs');
    agent = await ConsulAgent.start({ log: say });
    for (const vm of VMS) {
      await agent.registerService({
        ID: vm.id,
        Name: vm.service,
        Address: vm.address,
        Port: vm.port,
        Tags: vm.tags,
        Meta: vm.meta,
        Checks: [{ CheckID: `${vm.id}-alive`, Name: 'alive', TTL: '24h', Status: 'passing' }],
      });
      say(`  ${vm.service.padEnd(14)} ${vm.id.padEnd(16)} ${vm.address}:${vm.port}  tags=${vm.tags.join(',')}`);
    }
    say('  (old-batch-1 is not tagged "mesh", so the source below does not select it)');

    step('Applying a VmRegistrySource that selects Consul services tagged "mesh"');
    say(SOURCE(agent.address).replace(/^/gm, '  '));
    await cluster.kubectl(['apply', '-f', '-'], { input: SOURCE(agent.address) });

    step('Starting the operator');
    operator = new Operator({
      kc: cluster.kc,
      factories: builtinProviders(),
      metrics: new ControllerMetrics(new Registry(), { defaultMetrics: false }),
      log: createLogger('error'),
    });
    await operator.start();
    await waitFor('6 WorkloadEntries and 3 ServiceEntries', async () => (await entryCount(cluster)) === 6 && (await serviceEntryCount(cluster)) === 3 && (await ready(cluster)));
    await show(cluster, say);

    step('Consul marks orders-2 critical: its WorkloadEntry leaves the mesh');
    let t0 = Date.now();
    await agent.setTtl('orders-2-alive', 'fail', 'demo: health check failing');
    await waitFor('orders-2 to leave', async () => !(await addresses(cluster)).includes('10.10.1.12'));
    say(`  gone after ${Date.now() - t0} ms`);
    say(indent(await cluster.kubectl(['get', 'workloadentries', '-n', NS, '-l', 'app=orders', '-o', 'wide'])));
    t0 = Date.now();
    await agent.setTtl('orders-2-alive', 'pass', 'demo: healthy again');
    await waitFor('orders-2 to come back', async () => (await addresses(cluster)).includes('10.10.1.12'));
    say(`  passing again: back after ${Date.now() - t0} ms`);
    say(indent(await cluster.kubectl(['get', 'workloadentries', '-n', NS, '-l', 'app=orders', '-o', 'wide'])));

    step('Someone edits a managed WorkloadEntry by hand: the operator puts it back');
    const name = (await cluster.kubectl(['get', 'workloadentries', '-n', NS, '-l', 'app=payments-db', '-o', 'jsonpath={.items[0].metadata.name}'])).trim();
    const before = await address(cluster, name);
    say(`  kubectl patch workloadentry ${name} --type=merge -p '{"spec":{"address":"192.0.2.66"}}'`);
    t0 = Date.now();
    await cluster.kubectl(['patch', 'workloadentry', name, '-n', NS, '--type=merge', '-p', '{"spec":{"address":"192.0.2.66"}}']);
    await waitFor('the address to be restored', async () => (await address(cluster, name)) === before);
    say(`  restored to ${before} after ${Date.now() - t0} ms`);

    step('Final state');
    await show(cluster, say);
    say(`\nDemo finished in ${Math.round((Date.now() - started) / 1000)} s. Everything it started runs in temporary`);
    say('directories on loopback and stops now; nothing is left running.');
    say(`Built binaries stay cached in ${cacheRoot()} (delete that folder to reclaim the disk space).`);
    say('To try sources by hand: "make dev" (a control plane and Consul that keep running).');
    return 0;
  } finally {
    await operator?.stop();
    await agent?.stop();
    await cluster.stop();
  }
}

function indent(s: string): string {
  return s.trimEnd().replace(/^/gm, '  ');
}

async function show(cluster: LocalCluster, say: (s: string) => void): Promise<void> {
  say('\n$ kubectl get vmrs -n demo');
  say(indent(await cluster.kubectl(['get', 'vmrs', '-n', NS])));
  say('\n$ kubectl get workloadentries -n demo -o wide');
  say(indent(await cluster.kubectl(['get', 'workloadentries', '-n', NS, '-o', 'wide', '-L', 'app,version,role'])));
  say('\n$ kubectl get serviceentries -n demo   # one per service, generated from the same registry data');
  say(indent(await cluster.kubectl(['get', 'serviceentries', '-n', NS, '-o', 'custom-columns=NAME:.metadata.name,HOSTS:.spec.hosts,PORTS:.spec.ports[*].name,NUMBERS:.spec.ports[*].number,SELECTOR:.spec.workloadSelector.labels.app'])));
}

async function serviceEntryCount(cluster: LocalCluster): Promise<number> {
  return (JSON.parse(await cluster.kubectl(['get', 'serviceentries', '-n', NS, '-o', 'json'])) as { items: unknown[] }).items.length;
}

async function entries(cluster: LocalCluster): Promise<{ metadata: { name: string }; spec: { address: string } }[]> {
  return (JSON.parse(await cluster.kubectl(['get', 'workloadentries', '-n', NS, '-o', 'json'])) as { items: { metadata: { name: string }; spec: { address: string } }[] }).items;
}

async function entryCount(cluster: LocalCluster): Promise<number> {
  return (await entries(cluster)).length;
}

async function addresses(cluster: LocalCluster): Promise<string[]> {
  return (await entries(cluster)).map((e) => e.spec.address);
}

async function address(cluster: LocalCluster, name: string): Promise<string> {
  return (await cluster.kubectl(['get', 'workloadentry', name, '-n', NS, '-o', 'jsonpath={.spec.address}'])).trim();
}

async function ready(cluster: LocalCluster): Promise<boolean> {
  return (await cluster.kubectl(['get', 'vmrs', 'consul-vms', '-n', NS, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).trim() === 'True';
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`demo: timed out waiting for ${what}`);
}
