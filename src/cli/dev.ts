/** `vmreg dev`: a local control plane with the CRDs installed, kept running until Ctrl-C. */
import { copyFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startLocalCluster } from '../dev/cluster.ts';
import { ConsulAgent } from '../dev/consul-agent.ts';

export const DEV_HELP = `vmreg dev — a local Kubernetes control plane for trying sources by hand

Usage: vmreg dev [--consul] [--kubeconfig-out PATH]

Starts etcd, kube-apiserver and kube-controller-manager on loopback (built from the
published Go modules on first use and cached), installs the VmRegistrySource CRD and
Istio's WorkloadEntry/ServiceEntry/WorkloadGroup CRDs, and prints how to reach it.
--consul also starts a Consul dev agent. Run "vmreg run --kubeconfig <printed path>"
in another terminal to run the operator against it. Ctrl-C stops everything.
`;

export async function dev(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { consul: { type: 'boolean', default: false }, 'kubeconfig-out': { type: 'string' } }, strict: true });
  const say = (s: string): void => void process.stdout.write(s + '\n');
  say('Starting the local control plane...');
  const cluster = await startLocalCluster({ log: say });
  let agent: ConsulAgent | undefined;
  try {
    if (values.consul) {
      say('Starting a Consul dev agent...');
      agent = await ConsulAgent.start({ log: say });
    }
    let kubeconfig = cluster.cp.kubeconfig;
    if (values['kubeconfig-out']) {
      await copyFile(kubeconfig, values['kubeconfig-out']);
      kubeconfig = values['kubeconfig-out'];
    }
    say(`\nReady. API server: ${cluster.cp.server}`);
    say(`  export KUBECONFIG=${kubeconfig}`);
    if (agent) say(`  Consul HTTP API: ${agent.address}`);
    say('  vmreg run --kubeconfig "$KUBECONFIG" --metrics-bind-address=:8080   # the operator, in another terminal');
    say('Press Ctrl-C to stop and remove everything.');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  } finally {
    await agent?.stop();
    await cluster.stop();
  }
  return 0;
}
