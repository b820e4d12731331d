/**
 * Default relabel rules of the GCE provider (run before spec settings and the user's
 * rules; see docs/mapping.md):
 * - the GCE label named by serviceLabelKey (default "service") → __service__;
 * - region/zone → __locality__ (Istio's region/zone);
 * - the short VPC name of the chosen interface → __network__;
 * - every GCE label → a WorkloadEntry label of the same key.
 *
 * Not mapped: the instance's service-account email. It names a Google identity, not a
 * Kubernetes ServiceAccount, and Istio uses spec.serviceAccount as the workload's mTLS
 * identity in the source's namespace; guessing a Kubernetes name from an email would
 * hand out identities nobody chose. Set workloadEntry.serviceAccount, or a relabel rule
 * from __meta_gce_service_account, when the mapping is known.
 */
import type { RelabelRule, VmRegistrySourceSpec } from '../../api/types.ts';
import { LABEL_NETWORK, LABEL_PREFIX, LABEL_REGION, LABEL_ZONE } from './labels.ts';

const DEFAULT_SERVICE_LABEL_KEY = 'service';

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function gceDefaultMapping(spec: VmRegistrySourceSpec): RelabelRule[] {
  const serviceKey = spec.gce?.serviceLabelKey ?? DEFAULT_SERVICE_LABEL_KEY;
  return [
    {
      action: 'replace',
      sourceLabels: [LABEL_PREFIX + serviceKey],
      separator: ';',
      regex: '(.+)',
      targetLabel: '__service__',
      replacement: '$1',
    },
    {
      action: 'replace',
      sourceLabels: [LABEL_REGION, LABEL_ZONE],
      separator: '/',
      regex: '(.+/.+)',
      targetLabel: '__locality__',
      replacement: '$1',
    },
    {
      action: 'replace',
      sourceLabels: [LABEL_NETWORK],
      separator: ';',
      regex: '(.+)',
      targetLabel: '__network__',
      replacement: '$1',
    },
    {
      action: 'labelmap',
      separator: ';',
      regex: `${escapeRegex(LABEL_PREFIX)}(.+)`,
      replacement: '$1',
    },
  ];
}
