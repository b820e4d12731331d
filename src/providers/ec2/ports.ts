/** The ports tag: "http=8080,grpc=9090" → {http: 8080, grpc: 9090}. */

// A port name as Istio accepts it in a WorkloadEntry (a DNS label).
const PORT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Parses a ports tag value. Tags are written by hand, so malformed parts (no "=", a
 * bad name, a number outside 1–65535) are ignored rather than failing the whole
 * snapshot; the first occurrence of a name wins.
 */
export function parsePortsTag(value: string): Map<string, number> {
  const ports = new Map<string, number>();
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    const num = part.slice(eq + 1).trim();
    if (name.length > 63 || !PORT_NAME.test(name) || !/^[0-9]{1,5}$/.test(num)) continue;
    const port = Number(num);
    if (port < 1 || port > 65535 || ports.has(name)) continue;
    ports.set(name, port);
  }
  return ports;
}
