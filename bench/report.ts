/** Small numeric helpers and the printed table of the benchmark. */

/** Nearest-rank percentile of an unsorted list (NaN when empty). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export function mib(bytes: number): number {
  return round(bytes / (1024 * 1024), 1);
}

export type Row = readonly [string, string | number, string?];

export function table(rows: readonly Row[]): string {
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => String(r[1]).length));
  return rows
    .map(([k, v, note]) => `  ${k.padEnd(w0)}  ${String(v).padStart(w1)}${note ? `  ${note}` : ''}`)
    .join('\n');
}
