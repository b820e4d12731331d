/**
 * Finds the metric selectors in PromQL expressions (alert rules, dashboard queries), so
 * tests can check every name and label against what the operator exports. A small
 * scanner, not a full parser: it knows PromQL's functions, aggregations, keywords,
 * strings, durations and label matchers, and Grafana's variables and label_values().
 */

export interface MetricSelector {
  readonly name: string;
  /** Label names used in the selector's matchers. */
  readonly labels: readonly string[];
}

export interface ExpressionNames {
  readonly selectors: readonly MetricSelector[];
  /** Label names in by/without/on/ignoring/group_left/group_right lists. */
  readonly groupingLabels: readonly string[];
}

export class PromqlScanError extends Error {
  override readonly name = 'PromqlScanError';
}

const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio']);
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);

/** Grafana's variables, replaced by something PromQL-shaped before scanning. */
function withoutGrafanaVariables(expr: string): string {
  return expr.replace(/\$__(rate_)?interval|\$__range/g, '5m').replace(/\$\{?\w+\}?/g, 'VAR');
}

/** Grafana's `label_values(selector, label)`: only the selector is PromQL. */
function unwrapLabelValues(expr: string): string {
  const m = /^\s*label_values\((.*),\s*[A-Za-z_]\w*\s*\)\s*$/s.exec(expr);
  return m?.[1] ?? expr;
}

/** Index just past the string literal starting at i. */
function skipString(s: string, i: number): number {
  const quote = s[i];
  let j = i + 1;
  while (j < s.length && s[j] !== quote) j += s[j] === '\\' && quote !== '`' ? 2 : 1;
  if (j >= s.length) throw new PromqlScanError(`unterminated string in: ${s}`);
  return j + 1;
}

function skipSpaces(s: string, i: number): number {
  while (i < s.length && /\s/.test(s[i] ?? '')) i++;
  return i;
}

/** Reads `{a="x", b=~"y"}` starting at the brace; returns the label names and the index after it. */
function readMatchers(s: string, i: number): { labels: string[]; end: number } {
  const labels: string[] = [];
  let j = i + 1;
  while (j < s.length && s[j] !== '}') {
    const c = s[j] ?? '';
    if (c === '"' || c === "'" || c === '`') j = skipString(s, j);
    else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_]\w*/.exec(s.slice(j));
      const word = m?.[0] ?? '';
      labels.push(word);
      j += word.length;
    } else j++;
  }
  if (j >= s.length) throw new PromqlScanError(`unterminated label matcher in: ${s}`);
  return { labels, end: j + 1 };
}

/** Reads a parenthesised list of label names `(a, b)` at i (after spaces). */
function readLabelList(s: string, i: number): { labels: string[]; end: number } {
  const start = skipSpaces(s, i);
  if (s[start] !== '(') return { labels: [], end: i };
  const close = s.indexOf(')', start);
  if (close < 0) throw new PromqlScanError(`unterminated label list in: ${s}`);
  const labels = s.slice(start + 1, close).split(',').map((l) => l.trim()).filter(Boolean);
  return { labels, end: close + 1 };
}

export function scanExpression(raw: string): ExpressionNames {
  const s = withoutGrafanaVariables(unwrapLabelValues(raw));
  const selectors: MetricSelector[] = [];
  const groupingLabels: string[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i] ?? '';
    if (c === '"' || c === "'" || c === '`') {
      i = skipString(s, i);
    } else if (c === '[') {
      // A range or subquery duration.
      const close = s.indexOf(']', i);
      if (close < 0) throw new PromqlScanError(`unterminated range in: ${s}`);
      i = close + 1;
    } else if (/[0-9.]/.test(c)) {
      i += /^[0-9.][0-9A-Za-z_.]*/.exec(s.slice(i))?.[0].length ?? 1;
    } else if (c === '{') {
      // A selector without a metric name, e.g. {__name__="x"}: only its labels.
      const { labels, end } = readMatchers(s, i);
      const name = /__name__\s*=\s*"([^"]+)"/.exec(s.slice(i, end))?.[1];
      if (name) selectors.push({ name, labels: labels.filter((l) => l !== '__name__') });
      i = end;
    } else if (/[A-Za-z_:]/.test(c)) {
      const word = /^[A-Za-z_:][\w:]*/.exec(s.slice(i))?.[0] ?? c;
      i += word.length;
      const next = skipSpaces(s, i);
      if (GROUPING.has(word)) {
        const list = readLabelList(s, i);
        groupingLabels.push(...list.labels);
        i = list.end;
      } else if (AGGREGATIONS.has(word) || KEYWORDS.has(word) || word === 'VAR' || s[next] === '(') {
        // A function, aggregation or keyword.
      } else if (s[next] === '{') {
        const { labels, end } = readMatchers(s, next);
        selectors.push({ name: word, labels });
        i = end;
      } else {
        selectors.push({ name: word, labels: [] });
      }
    } else {
      i++;
    }
  }
  return { selectors, groupingLabels };
}

/**
 * What is wrong with the metric names and labels of some expressions, measured against
 * the exported series (name → label names) plus the labels a scrape adds.
 */
export function unknownNames(where: string, expr: string, exported: ReadonlyMap<string, ReadonlySet<string>>, scrapeLabels: readonly string[]): string[] {
  const problems: string[] = [];
  const { selectors, groupingLabels } = scanExpression(expr);
  const known = new Set(scrapeLabels);
  for (const sel of selectors) {
    const labels = exported.get(sel.name);
    if (!labels) {
      problems.push(`${where}: names ${sel.name}, which the operator does not export`);
      continue;
    }
    for (const l of labels) known.add(l);
    for (const l of sel.labels) if (!labels.has(l) && !scrapeLabels.includes(l)) problems.push(`${where}: ${sel.name} has no label ${l}`);
  }
  for (const l of groupingLabels) if (!known.has(l)) problems.push(`${where}: groups by ${l}, a label none of its metrics has`);
  return problems;
}
