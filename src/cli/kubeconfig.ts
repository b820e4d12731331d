/**
 * Loads credentials for the operator: --kubeconfig, else $KUBECONFIG, else the in-cluster
 * service account. client-node would silently fall back to http://localhost:8080 when
 * none exists; we fail fast with a message instead.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { UsageError } from './errors.ts';

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  const candidate = path ?? process.env['KUBECONFIG'] ?? (existsSync(join(homedir(), '.kube', 'config')) ? join(homedir(), '.kube', 'config') : undefined);
  if (candidate !== undefined) {
    if (!existsSync(candidate)) throw new UsageError(`kubeconfig ${candidate} does not exist`);
    kc.loadFromFile(candidate);
  } else if (process.env['KUBERNETES_SERVICE_HOST'] && existsSync(IN_CLUSTER_TOKEN)) {
    kc.loadFromCluster();
  } else {
    throw new UsageError('no cluster credentials: pass --kubeconfig, set KUBECONFIG, or run inside a cluster');
  }
  if (!kc.getCurrentCluster()) throw new UsageError('the kubeconfig has no current cluster');
  return kc;
}
