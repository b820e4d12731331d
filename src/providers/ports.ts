/**
 * The "name=number,name=number" lists registries carry in a tag or metadata entry
 * (EC2 portsTagKey, GCE portsMetadataKey). Every provider reads them with this one
 * parser, so a bad list is treated the same everywhere: the good pairs are read, and
 * each bad part is a problem that skips the endpoint with a reason (never dropped
 * without a word).
 */

// A port name as Istio accepts it in a WorkloadEntry (a DNS-1123 label).
const PORT_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const PORT_NUMBER = /^[0-9]{1,5}$/;

export interface PortList {
  /** The valid pairs, in the order written. */
  readonly ports: ReadonlyMap<string, number>;
  /** One sentence per bad part; empty when the whole list is good. */
  readonly problems: readonly string[];
}

function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 37)}...` : s);
}

/** Reads one "name=number" part: the pair, or why it is not one. */
function readPart(part: string): { name: string; port: number } | string {
  const eq = part.indexOf('=');
  if (eq < 0) return `${quote(part)} is not name=number`;
  const name = part.slice(0, eq).trim();
  const raw = part.slice(eq + 1).trim();
  if (name === '') return `${quote(part)} has no port name`;
  if (!PORT_NAME.test(name)) return `${quote(part)}: port name ${quote(name)} is not a DNS-1123 label (lower case letters, digits and "-")`;
  const port = PORT_NUMBER.test(raw) ? Number(raw) : NaN;
  if (!(port >= 1 && port <= 65535)) return `${quote(part)}: ${quote(raw)} is not a port number from 1 to 65535`;
  return { name, port };
}

/**
 * Parses a port list. Spaces around names and numbers and empty parts (a trailing
 * comma) are allowed; anything else that is not a valid pair, or a name given twice,
 * is a problem. `where` names the tag or metadata entry for the problem text.
 */
export function parsePortList(value: string, where: string): PortList {
  const ports = new Map<string, number>();
  const bad: string[] = [];
  for (const part of value.split(',')) {
    if (part.trim() === '') continue;
    const pair = readPart(part.trim());
    if (typeof pair === 'string') bad.push(pair);
    else if (ports.has(pair.name)) bad.push(`port ${quote(pair.name)} is given twice`);
    else ports.set(pair.name, pair.port);
  }
  const problems = bad.length === 0 ? [] : [`invalid ${where} ${quote(value)}: ${bad.slice(0, 5).join('; ')}${bad.length > 5 ? `; and ${bad.length - 5} more` : ''}`];
  return { ports, problems };
}
