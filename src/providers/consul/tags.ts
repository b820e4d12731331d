/** Consul tags as labels: the ",a,b," list of Prometheus and key<sep>value tags of Istio's Consul registry. */

/** Prometheus consul_sd's form: tags joined by commas, with a comma at both ends (",a,b,"), so a regex can match ",tag,". */
export function tagsLabel(tags: readonly string[]): string {
  return tags.length === 0 ? ',,' : `,${tags.join(',')},`;
}

/**
 * Tags of the form key<sep>value become key → value; the value is everything after the
 * first separator. Tags without a separator or with an empty key are not labels. When a
 * key repeats, the last tag wins (as in Istio's registry).
 */
export function parseTagPairs(tags: readonly string[], separator: string): Map<string, string> {
  const out = new Map<string, string>();
  if (separator === '') return out;
  for (const tag of tags) {
    const at = tag.indexOf(separator);
    if (at <= 0) continue;
    out.set(tag.slice(0, at), tag.slice(at + separator.length));
  }
  return out;
}

/** True when every required tag is present. */
export function hasAllTags(tags: readonly string[] | null | undefined, required: readonly string[]): boolean {
  if (required.length === 0) return true;
  const have = new Set(tags ?? []);
  return required.every((t) => have.has(t));
}
