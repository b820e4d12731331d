/**
 * A walk over the raw JSON of a list of objects (Consul's catalog-wide answers, MBs at
 * fleet size) that builds no object per element: for each element it hands over the
 * element's byte range and the byte ranges of the values of a few top-level keys. Keys of
 * nested objects (Meta, TaggedAddresses) are skipped with their parent's value, so they
 * can never pass for the element's own.
 */
import { ProviderError } from '../errors.ts';

/** A value's bytes: [start, end). */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_LIST = 0x5b;
const CLOSE_LIST = 0x5d;

/**
 * Calls visit for each element of buf (a JSON list of objects) with the value ranges of
 * `keys` (undefined where the element lacks the key) and the element's own range.
 * Throws a BadResponse naming `what` when buf is not such a list.
 */
export function forEachElement(buf: Buffer, keys: readonly Buffer[], what: string, visit: (values: ReadonlyArray<ByteRange | undefined>, element: ByteRange) => void): void {
  const bad = (): ProviderError => new ProviderError('consul', 'BadResponse', `${what}: answer is not a list of objects`);
  let i = skipWhitespace(buf, 0);
  if (buf[i] !== OPEN_LIST) throw bad();
  i = skipWhitespace(buf, i + 1);
  if (buf[i] === CLOSE_LIST) return;
  for (;;) {
    if (buf[i] !== OPEN_OBJECT) throw bad();
    const start = i;
    const values: Array<ByteRange | undefined> = keys.map(() => undefined);
    i = skipWhitespace(buf, i + 1);
    while (buf[i] !== CLOSE_OBJECT) {
      if (buf[i] !== QUOTE) throw bad();
      const keyEnd = endOfString(buf, i, bad);
      const k = keys.findIndex((key) => bytesEqual(buf, i + 1, keyEnd - 1, key));
      i = skipWhitespace(buf, keyEnd);
      if (buf[i] !== COLON) throw bad();
      const valueStart = skipWhitespace(buf, i + 1);
      i = endOfValue(buf, valueStart, bad);
      if (k >= 0) values[k] = { start: valueStart, end: i };
      i = skipWhitespace(buf, i);
      if (buf[i] === COMMA) i = skipWhitespace(buf, i + 1);
      else if (buf[i] !== CLOSE_OBJECT) throw bad();
    }
    i += 1;
    visit(values, { start, end: i });
    i = skipWhitespace(buf, i);
    if (buf[i] === CLOSE_LIST) return;
    if (buf[i] !== COMMA) throw bad();
    i = skipWhitespace(buf, i + 1);
  }
}

/** The string at r, or undefined when the value is not a string. */
export function stringAt(buf: Buffer, r: ByteRange | undefined): string | undefined {
  if (r === undefined || buf[r.start] !== QUOTE) return undefined;
  return JSON.parse(buf.toString('utf8', r.start, r.end)) as string;
}

/** The non-negative integer at r, or undefined when the value is not one. */
export function integerAt(buf: Buffer, r: ByteRange | undefined): number | undefined {
  if (r === undefined || r.end <= r.start) return undefined;
  let value = 0;
  for (let i = r.start; i < r.end; i++) {
    const b = buf[i] as number;
    if (b < 0x30 || b > 0x39) return undefined;
    value = value * 10 + b - 0x30;
  }
  return value;
}

/** The index just past the string that opens at i. */
function endOfString(buf: Buffer, i: number, bad: () => ProviderError): number {
  for (i++; i < buf.length; i++) {
    const b = buf[i];
    if (b === BACKSLASH) i++;
    else if (b === QUOTE) return i + 1;
  }
  throw bad();
}

/** The index just past the value that starts at i (a string, object, list or literal). */
function endOfValue(buf: Buffer, i: number, bad: () => ProviderError): number {
  const first = buf[i];
  if (first === QUOTE) return endOfString(buf, i, bad);
  if (first === OPEN_OBJECT || first === OPEN_LIST) {
    let depth = 0;
    for (; i < buf.length; i++) {
      const b = buf[i];
      if (b === QUOTE) i = endOfString(buf, i, bad) - 1;
      else if (b === OPEN_OBJECT || b === OPEN_LIST) depth++;
      else if ((b === CLOSE_OBJECT || b === CLOSE_LIST) && --depth === 0) return i + 1;
    }
    throw bad();
  }
  // A number, true, false or null: up to the next delimiter.
  const start = i;
  while (i < buf.length && !isDelimiter(buf[i] as number)) i++;
  if (i === start) throw bad();
  return i;
}

function isDelimiter(b: number): boolean {
  return b === COMMA || b === CLOSE_OBJECT || b === CLOSE_LIST || isWhitespace(b);
}

function skipWhitespace(buf: Buffer, i: number): number {
  while (isWhitespace(buf[i])) i++;
  return i;
}

function isWhitespace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/** Whether buf[start, end) holds exactly these bytes (no copy). */
function bytesEqual(buf: Buffer, start: number, end: number, want: Buffer): boolean {
  if (end - start !== want.length) return false;
  for (let k = 0; k < want.length; k++) if (buf[start + k] !== want[k]) return false;
  return true;
}
