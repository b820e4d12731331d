/**
 * A local control plane with the VmRegistrySource CRD and Istio's CRDs installed and
 * Established: what the demo, `vmreg dev` and the integration tests start from.
 */
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { LocalControlPlane, type ControlPlaneOptions } from './controlplane.ts';
import { istioCrdsYaml } from './istio-crds.ts';
import { REPO_ROOT } from './paths.ts';

export interface LocalCluster {
  readonly cp: LocalControlPlane;
  /** Admin credentials. */
  readonly kc: KubeConfig;
  kubectl(args: string[], options?: { input?: string; kubeconfig?: string }): Promise<string>;
  stop(): Promise<void>;
}

export interface LocalClusterOptions extends ControlPlaneOptions {
  /**
   * The VmRegistrySource CRD to install instead of crds/: tests that register a provider
   * of their own install the CRD built with it.
   */
  readonly vmRegistrySourceCrd?: string;
}

export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  const cp = await LocalControlPlane.start(options);
  try {
    if (options.vmRegistrySourceCrd === undefined) await cp.kubectl(['apply', '--server-side', '-f', join(REPO_ROOT, 'crds')]);
    else await cp.kubectl(['apply', '--server-side', '-f', '-'], { input: options.vmRegistrySourceCrd });
    await cp.kubectl(['apply', '--server-side', '-f', '-'], { input: await istioCrdsYaml() });
    await cp.kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
    // The garbage collector discovers resource types every 30 s; a restart makes it see the CRDs now.
    if (options.controllerManager ?? true) await cp.restartControllerManager();
  } catch (e) {
    await cp.stop();
    throw e;
  }
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  return {
    cp,
    kc,
    kubectl: (args, o) => cp.kubectl(args, o),
    stop: () => cp.stop(),
  };
}
