/**
 * The EC2 provider's default relabel rules (step 2 of docs/mapping.md):
 * - __service__ from the tag named by serviceTagKey;
 * - __locality__ = region/zone;
 * - __network__ = VPC id, unless the provider already set it (vpcNetworks or networkTagKey);
 * - WorkloadEntry labels from tags: every tag except AWS-reserved ones (aws:*, e.g.
 *   aws:autoscaling:groupName), Name (free text meant for people) and the tags the spec
 *   already consumes (service, ports, network, service-account tags).
 */
import type { RelabelRule } from '../../api/types.ts';
import type { Ec2Spec } from './spec-schema.ts';
import { EC2_LABELS, META, tagLabel } from './labels.ts';

function rule(r: Partial<RelabelRule> & Pick<RelabelRule, 'action'>): RelabelRule {
  return { separator: ';', regex: '(.*)', replacement: '$1', ...r };
}

/** Escapes a literal for an anchored relabel regex. */
function literal(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

/** Tag keys that are not turned into WorkloadEntry labels (besides aws:*). */
export function consumedTagKeys(spec: Pick<Ec2Spec, 'serviceTagKey' | 'portsTagKey' | 'networkTagKey' | 'serviceAccountTagKey'>): string[] {
  const keys = ['Name', spec.serviceTagKey, spec.portsTagKey, spec.networkTagKey, spec.serviceAccountTagKey];
  return [...new Set(keys.filter((k): k is string => typeof k === 'string' && k !== ''))];
}

export function ec2DefaultMapping(spec: Ec2Spec): RelabelRule[] {
  // Grouped so the alternation stays inside the engine's anchors.
  const dropped = `(${['aws:.*', ...consumedTagKeys(spec).map(literal)].join('|')})`;
  return [
    rule({ action: 'replace', sourceLabels: [tagLabel(spec.serviceTagKey)], regex: '(.+)', targetLabel: '__service__' }),
    rule({ action: 'replace', sourceLabels: [EC2_LABELS.region, EC2_LABELS.availabilityZone], separator: '/', regex: '(.+/.+)', targetLabel: '__locality__' }),
    // Matches only while __network__ is empty: "" + ";" + vpc id.
    rule({ action: 'replace', sourceLabels: [EC2_LABELS.network, EC2_LABELS.vpcId], regex: ';(.+)', targetLabel: EC2_LABELS.network }),
    rule({ action: 'labelmap', regex: `${literal(`${META}tag_`)}(.+)`, replacement: '$1' }),
    rule({ action: 'labeldrop', regex: dropped }),
  ];
}
