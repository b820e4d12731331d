/**
 * One copy of values that thousands of cached objects repeat. JSON parsing gives every
 * object its own copy of each string longer than a few characters and of each nested
 * object, so 20,000 cached WorkloadEntries hold 20,000 equal owner references, API
 * versions and label values. A pool hands out the first copy instead. The pool is
 * bounded: when full it starts over (values already handed out stay valid; only their
 * sharing with later objects is lost), so churn cannot grow it without limit.
 */
export class ValuePool {
  private strings = new Map<string, string>();
  private objects = new Map<string, unknown>();
  private readonly max: number;

  constructor(max = 50_000) {
    this.max = max;
  }

  /** Values held (strings and shared values), for tests. */
  get size(): number {
    return this.strings.size + this.objects.size;
  }

  /** The pooled copy of a short string (long ones are rarely repeated and are kept as they are). */
  string<S extends string | undefined>(s: S): S {
    if (s === undefined || s.length > 96) return s;
    const pooled = this.strings.get(s);
    if (pooled !== undefined) return pooled as S;
    if (this.strings.size >= this.max) this.strings = new Map();
    this.strings.set(s, s);
    return s;
  }

  /**
   * A record with pooled keys and values; the values of `uniqueKeys` are kept as they are
   * (a value no other object repeats would only keep its dead copies alive under churn).
   */
  record(r: Readonly<Record<string, string>>, uniqueKeys?: ReadonlySet<string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const k in r) {
      const v = r[k] as string;
      out[this.string(k)] = uniqueKeys?.has(k) === true ? v : this.string(v);
    }
    return out;
  }

  /** The pooled copy of a small JSON value that many objects share whole (owner references, ports). */
  shared<T>(value: T): T {
    const key = JSON.stringify(value);
    const pooled = this.objects.get(key);
    if (pooled !== undefined) return pooled as T;
    if (this.objects.size >= this.max) this.objects = new Map();
    this.objects.set(key, value);
    return value;
  }
}
