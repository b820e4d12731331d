/**
 * `vmreg preview -f source.yaml`: reads the registry (no cluster needed) and prints the
 * WorkloadEntries the source would produce, for review in a GitOps pull request. It
 * takes the operator's path (map → plan against an empty cluster) and prints the
 * objects the applier would write.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { parseDuration } from '../api/duration.ts';
import { KIND, providerOf, type VmRegistrySource } from '../api/types.ts';
import { ControllerMetrics } from '../metrics/controller-metrics.ts';
import { createLogger } from '../metrics/logger.ts';
import { builtinProviders } from '../providers/builtin.ts';
import { secretKey } from '../providers/provider.ts';
import { SERVICE_ENTRY_KIND, toAppliedObject, toAppliedServiceEntry } from '../plan/kinds.ts';
import { mapEndpoints } from '../mapping/mapping.ts';
import { planObjects } from '../plan/object-plan.ts';
import { plan } from '../plan/plan.ts';
import { buildDesiredServiceEntries } from '../mapping/service-entries.ts';
import { UsageError } from './errors.ts';
import { Registry } from 'prom-client';

export { PREVIEW_HELP } from './help.ts';

export async function preview(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s)): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      file: { type: 'string', short: 'f' },
      secret: { type: 'string', multiple: true, default: [] },
      timeout: { type: 'string', default: '30s' },
      'log-level': { type: 'string', default: 'warn' },
    },
    strict: true,
  });
  if (!values.file) throw new UsageError('-f FILE is required');
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(values.timeout);
  } catch (e) {
    throw new UsageError(`--timeout: ${(e as Error).message}`);
  }
  const secrets = new Map<string, string>();
  for (const s of values.secret) {
    const m = /^([^/=]+)\/([^=]+)=(.*)$/s.exec(s);
    if (!m) throw new UsageError(`--secret must look like NAME/KEY=VALUE, got "${s.split('=')[0]}..."`);
    secrets.set(`${m[1]}/${m[2]}`, m[3] ?? '');
  }
  const text = await readFile(values.file, 'utf8');
  const sources = parseAllDocuments(text)
    .map((d) => d.toJSON() as Partial<VmRegistrySource> | null)
    .filter((d): d is Partial<VmRegistrySource> => d?.kind === KIND);
  if (sources.length === 0) throw new UsageError(`${values.file} holds no ${KIND}`);

  const factories = builtinProviders();
  const log = createLogger(values['log-level'] === 'debug' ? 'debug' : 'warn');
  const metrics = new ControllerMetrics(new Registry(), { defaultMetrics: false });
  for (const raw of sources) {
    const name = raw.metadata?.name ?? 'preview';
    const namespace = raw.metadata?.namespace ?? 'default';
    const spec = factories.api.validateSpec(raw.spec);
    const factory = await factories.load(providerOf(spec));
    if (!factory) throw new UsageError(`provider ${providerOf(spec)} is not in this build`);
    for (const ref of factory.secretRefs(spec)) {
      if (!secrets.has(secretKey(ref))) throw new UsageError(`${namespace}/${name} needs Secret key ${ref.name}/${ref.key}: pass --secret ${ref.name}/${ref.key}=VALUE`);
    }
    const provider = factory.create({ source: `${namespace}/${name}`, spec, secrets, metrics: metrics.provider, log });
    try {
      const snapshot = await provider.snapshot(AbortSignal.timeout(timeoutMs));
      const desired = mapEndpoints({ sourceName: name, spec, endpoints: snapshot.endpoints, mapping: factory });
      const entries = plan({ desired: desired.entries, owned: [], policy: spec.policy, unknownScopes: snapshot.unknownScopes, guard: spec.deletionGuard }).creates;
      const source: VmRegistrySource = { apiVersion: 'vmregistry.io/v1alpha1', kind: KIND, metadata: { name, namespace, uid: 'preview' }, spec };
      out(`# ${namespace}/${name}: ${desired.entries.length} WorkloadEntries from ${snapshot.endpoints.length} endpoints (ownerReferences are added in the cluster)\n`);
      for (const d of entries) {
        const obj = toAppliedObject(d, source);
        delete obj.metadata.ownerReferences;
        out('---\n' + stringify(obj));
      }
      if (spec.serviceEntries) {
        const ses = buildDesiredServiceEntries({
          sourceName: name,
          namespace,
          provider: providerOf(spec),
          template: spec.serviceEntries,
          serviceLabel: spec.workloadEntry.serviceLabel,
          entries: desired.entries,
        });
        out(`# ${namespace}/${name}: ${ses.serviceEntries.length} ServiceEntries for ${desired.entries.length} WorkloadEntries\n`);
        const creates = planObjects({ desired: ses.serviceEntries, owned: [], policy: spec.policy, guard: spec.deletionGuard }, SERVICE_ENTRY_KIND.rules).creates;
        for (const d of creates) {
          const obj = toAppliedServiceEntry(d, source);
          delete obj.metadata.ownerReferences;
          out('---\n' + stringify(obj));
        }
        for (const s of ses.skipped) err(`service ${s.service}: ${s.reason}\n`);
        for (const n of ses.unselected) err(`not selected by its ServiceEntry (DNS-name address): ${n}\n`);
      }
      for (const s of desired.skipped) err(`skipped ${s.endpointId}: ${s.reason}\n`);
      for (const w of snapshot.warnings) err(`warning: ${w}\n`);
    } finally {
      await provider.close();
    }
  }
  return 0;
}
