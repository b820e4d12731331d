/**
 * Which nodes a /v1/catalog/nodes answer shows changed: every node carries its own
 * ModifyIndex, so the nodes added or changed (e.g. re-addressed) after the index of the
 * previous answer are known without keeping the list. Their services are then looked up
 * with one request per node (/v1/catalog/node-services/<node>), instead of waiting for a
 * sweep to probe every service.
 */
import { ProviderError } from '../errors.ts';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Names of the nodes whose ModifyIndex is above `since`. The answer is MBs for a large
 * fleet and comes on every node change: as bytes (the client's raw mode) it is scanned
 * without building an object per node (scanNodeList).
 */
export function nodesChangedSince(body: unknown, since: number): string[] {
  if (Buffer.isBuffer(body)) return scanNodeList(body, since);
  if (!Array.isArray(body)) throw notAList();
  const out: string[] = [];
  for (const node of body) {
    if (isRecord(node) && typeof node['Node'] === 'string' && typeof node['ModifyIndex'] === 'number' && node['ModifyIndex'] > since) out.push(node['Node']);
  }
  return out;
}

/** Service names from a /v1/catalog/node-services/<node> answer (Services is null when the node is gone). */
export function servicesOfNode(body: unknown): string[] {
  const services = isRecord(body) ? body['Services'] : undefined;
  if (services === null) return [];
  if (!Array.isArray(services)) throw new ProviderError('consul', 'BadResponse', 'GET /v1/catalog/node-services: answer has no Services list');
  return [...new Set(services.filter(isRecord).map((s) => s['Service']).filter((n): n is string => typeof n === 'string'))];
}

function notAList(): ProviderError {
  return new ProviderError('consul', 'BadResponse', 'GET /v1/catalog/nodes: answer is not a list');
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const NODE_KEY = Buffer.from('Node');
const MODIFY_INDEX_KEY = Buffer.from('ModifyIndex');

/** Whether buf[start, end) holds exactly these bytes (no copy). */
function bytesEqual(buf: Buffer, start: number, end: number, want: Buffer): boolean {
  if (end - start !== want.length) return false;
  for (let k = 0; k < want.length; k++) if (buf[start + k] !== want[k]) return false;
  return true;
}

function isWhitespace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/**
 * nodesChangedSince over the raw JSON of a node list: one pass over its bytes that
 * follows the structure and reads only the keys of each node (depth 2) and the values
 * of `Node` and `ModifyIndex`. Nested maps (Meta, TaggedAddresses) are deeper, so their
 * keys can never pass for a node's own; no object is built but the names returned.
 */
export function scanNodeList(buf: Buffer, since: number): string[] {
  const out: string[] = [];
  const n = buf.length;
  let i = 0;
  while (isWhitespace(buf[i])) i++;
  if (buf[i] !== 0x5b) throw notAList();
  let depth = 0;
  let key: 'node' | 'index' | 'other' | undefined;
  let expectKey = false;
  let name: string | undefined;
  let modifyIndex: number | undefined;
  for (; i < n; i++) {
    const b = buf[i] as number;
    if (b === QUOTE) {
      const open = i;
      for (i++; i < n && buf[i] !== QUOTE; i++) if (buf[i] === BACKSLASH) i++;
      if (i >= n) throw notAList();
      if (depth !== 2) continue;
      if (expectKey) {
        key = bytesEqual(buf, open + 1, i, NODE_KEY) ? 'node' : bytesEqual(buf, open + 1, i, MODIFY_INDEX_KEY) ? 'index' : 'other';
        expectKey = false;
      } else if (key === 'node') {
        name = JSON.parse(buf.toString('utf8', open, i + 1)) as string;
      }
    } else if (b === 0x7b || b === 0x5b) {
      depth++;
      if (depth === 2) {
        expectKey = true;
        name = undefined;
        modifyIndex = undefined;
      }
    } else if (b === 0x7d || b === 0x5d) {
      if (depth === 2 && name !== undefined && modifyIndex !== undefined && modifyIndex > since) out.push(name);
      depth--;
    } else if (depth === 2 && b === 0x2c) {
      expectKey = true;
      key = undefined;
    } else if (depth === 2 && key === 'index' && b >= 0x30 && b <= 0x39) {
      let value = 0;
      for (; i < n && (buf[i] as number) >= 0x30 && (buf[i] as number) <= 0x39; i++) value = value * 10 + (buf[i] as number) - 0x30;
      modifyIndex = value;
      i--;
    }
  }
  if (depth !== 0) throw notAList();
  return out;
}
