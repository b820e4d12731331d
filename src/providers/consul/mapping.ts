/**
 * The default mapping of Consul labels to WorkloadEntry fields (to be listed in the README's Consul section):
 * - service name → __service__;
 * - tags key<sep>value → WorkloadEntry labels key=value (Istio 1.7 Consul registry);
 * - service meta `protocol` → __port_name__, lower-cased, when it is a protocol Istio
 *   knows (Istio's registry named the port after this meta value); otherwise the
 *   engine's default port name (tcp) applies;
 * - datacenter → __locality__ (the region part; Istio's registry used the datacenter
 *   as the instance's availability zone);
 * - service meta `port_<name>` = number → __port_<name>__ (extra named ports); a name
 *   that is not a DNS label or a value that is not a port skips the endpoint with a
 *   reason (the engine checks them), as a bad ports tag does for EC2 and GCE.
 * In health mode `status`, every entry carries proxy.istio.io/health-checks-enabled,
 * so istiod routes to it only while the Healthy condition the operator writes is True.
 */
import { HEALTH_CHECKS_ANNOTATION } from '../../api/istio.ts';
import type { RelabelRule, VmRegistrySourceSpec } from '../../api/types.ts';
import { CONSUL_LABELS } from './labels.ts';

/** Port names Istio derives a protocol from (its protocol.Parse list, lower case). */
export const ISTIO_PROTOCOLS = ['http', 'http2', 'https', 'grpc', 'grpc-web', 'tcp', 'tls', 'mongo', 'mysql', 'redis', 'udp'] as const;

const TMP_PROTOCOL = '__tmp_consul_protocol';

function rule(r: Partial<RelabelRule> & Pick<RelabelRule, 'action'>): RelabelRule {
  return { separator: ';', regex: '(.*)', replacement: '$1', ...r };
}

export function consulDefaultMapping(): RelabelRule[] {
  return [
    rule({ action: 'replace', sourceLabels: [CONSUL_LABELS.service], targetLabel: '__service__' }),
    rule({ action: 'labelmap', regex: `${CONSUL_LABELS.tagPrefix}(.+)`, replacement: '$1' }),
    rule({ action: 'replace', sourceLabels: [`${CONSUL_LABELS.serviceMetaPrefix}protocol`], regex: '(.+)', targetLabel: TMP_PROTOCOL }),
    rule({ action: 'lowercase', sourceLabels: [TMP_PROTOCOL], targetLabel: TMP_PROTOCOL }),
    rule({ action: 'replace', sourceLabels: [TMP_PROTOCOL], regex: `(${ISTIO_PROTOCOLS.join('|')})`, targetLabel: '__port_name__' }),
    rule({ action: 'labeldrop', regex: TMP_PROTOCOL }),
    rule({ action: 'replace', sourceLabels: [CONSUL_LABELS.dc], regex: '(.+)', targetLabel: '__locality__' }),
    rule({ action: 'labelmap', regex: `${CONSUL_LABELS.serviceMetaPrefix}port_(.+)`, replacement: '__port_${1}__' }),
  ];
}

/** Annotations every Consul entry of this spec carries. */
export function consulEntryAnnotations(spec: VmRegistrySourceSpec): Record<string, string> {
  return spec.consul?.health.mode === 'status' ? { [HEALTH_CHECKS_ANNOTATION]: 'true' } : {};
}
