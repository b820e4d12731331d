/** config/argocd: the ConfigMap snippet embeds health.lua verbatim; the Applications carry the sync options. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONFIG_DIR, readDocs } from '../../harness/manifests.ts';

const DIR = join(CONFIG_DIR, 'argocd');
const KEY = 'resource.customizations.health.vmregistry.io_VmRegistrySource';

interface Application {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { source: { path: string }; syncPolicy?: { syncOptions?: string[] } };
}

describe('config/argocd', () => {
  test('argocd-cm embeds health.lua byte for byte under the VmRegistrySource health key', async () => {
    const [cm] = await readDocs(join(DIR, 'argocd-cm.yaml'));
    assert.equal(cm?.kind, 'ConfigMap');
    assert.equal(cm?.metadata.name, 'argocd-cm');
    const data = (cm as unknown as { data: Record<string, string> }).data;
    assert.deepEqual(Object.keys(data), [KEY]);
    assert.equal(data[KEY], await readFile(join(DIR, 'health.lua'), 'utf8'));
  });

  test('the operator Application deploys config/default before the sources Application', async () => {
    const apps = (await readDocs(join(DIR, 'application.yaml'))) as unknown as Application[];
    assert.ok(apps.every((a) => a.kind === 'Application'));
    const operator = apps.find((a) => a.spec.source.path === 'config/default');
    const sources = apps.find((a) => a !== operator);
    assert.ok(operator && sources, 'two Applications');
    const wave = (a: Application) => Number(a.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? '0');
    assert.ok(wave(operator) < wave(sources), 'the CRD-carrying Application syncs in an earlier wave');
    assert.ok(sources.spec.syncPolicy?.syncOptions?.includes('SkipDryRunOnMissingResource=true'), 'sources skip the dry run while the CRD is missing');
    assert.ok(!operator.spec.syncPolicy?.syncOptions?.includes('SkipDryRunOnMissingResource=true'), 'the operator Application carries its own CRD');
  });
});
