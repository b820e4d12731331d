/** The ports tag: "http=8080,grpc=9090" → {http: 8080, grpc: 9090}, read by the shared parser. */
import { parsePortList, type PortList } from '../ports.ts';

/** The ports tag of an instance: its valid pairs and, for bad parts, a problem naming the tag. */
export function readPortsTag(key: string, value: string): PortList {
  return parsePortList(value, `ports tag ${JSON.stringify(key)}`);
}

/** The valid pairs of a ports tag (bad parts are reported through readPortsTag's problems). */
export function parsePortsTag(value: string): Map<string, number> {
  return new Map(parsePortList(value, 'ports tag').ports);
}
