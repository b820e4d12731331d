/** Durations in the API's form ("30s", "1m30s", "500ms"). */
const PART = /([0-9]+)(ms|s|m|h)/g;
const WHOLE = /^([0-9]+(ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export class DurationError extends Error {
  override readonly name = 'DurationError';
}

export function parseDuration(text: string): number {
  if (!WHOLE.test(text)) throw new DurationError(`invalid duration "${text}": use a number with ms, s, m or h, e.g. 30s or 1m30s`);
  let ms = 0;
  for (const m of text.matchAll(PART)) ms += Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 0);
  return ms;
}
