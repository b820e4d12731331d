/**
 * Prometheus-style relabelling of endpoint label sets. A rule set is compiled once
 * (regexes, replacement templates) and then applied to thousands of endpoints per sync.
 *
 * Semantics follow Prometheus: source label values (missing ones count as "") are
 * joined by the separator and matched against the regex anchored at both ends, with
 * "." matching newlines too; replacements expand `$1`, `${1}`, `$name`, `${name}` and
 * `$$` the way Go's regexp.Expand does; a value that ends up empty removes its label.
 */
import type { RelabelRule, RelabelRuleInput } from '../api/types.ts';

export type RelabelAction = RelabelRule['action'];

const DEFAULTS = { action: 'replace', separator: ';', regex: '(.*)', replacement: '$1' } as const;
const ACTIONS: ReadonlySet<string> = new Set<RelabelAction>([
  'replace', 'keep', 'drop', 'labelmap', 'labeldrop', 'labelkeep', 'lowercase', 'uppercase',
]);

/** A rule set that cannot be compiled: the spec (or a provider's default mapping) is wrong. */
export class RelabelError extends Error {
  override readonly name = 'RelabelError';
  /** Where the rule list lives, e.g. "spec.workloadEntry.relabelings". */
  readonly field: string;
  readonly ruleIndex: number;
  constructor(field: string, ruleIndex: number, message: string, options?: { cause?: unknown }) {
    super(`${field}[${ruleIndex}]: ${message}`, options);
    this.field = field;
    this.ruleIndex = ruleIndex;
  }
}

export function isRelabelError(e: unknown): e is RelabelError {
  return e instanceof RelabelError;
}

// ---------------------------------------------------------------------------------
// Regex: Prometheus writes RE2; JavaScript's engine differs in a few spellings.

class RegexSyntaxError extends Error {}

// POSIX classes RE2 accepts inside brackets, e.g. [[:alpha:]_].
const POSIX_CLASSES: Readonly<Record<string, string>> = {
  alnum: '0-9A-Za-z', alpha: 'A-Za-z', ascii: '\\x00-\\x7f', blank: '\\t ', cntrl: '\\x00-\\x1f\\x7f',
  digit: '0-9', graph: '!-~', lower: 'a-z', print: ' -~', punct: '!-\\/:-@\\[-`{-~', space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z', word: '0-9A-Za-z_', xdigit: '0-9A-Fa-f',
};

/**
 * Rewrites an RE2 pattern into an equivalent JavaScript (unicode mode) pattern:
 * `(?P<name>` becomes `(?<name>`, a leading `(?flags)` becomes a modifier group,
 * escaped ASCII punctuation is written as `\xHH` (unicode mode rejects e.g. `\-`),
 * POSIX bracket classes are expanded and a leading `]` in a class is literal.
 * Backreferences and lookaround are rejected: RE2 has neither, and they are the
 * usual source of catastrophic backtracking.
 */
export function translateRegex(re2: string): string {
  let src = re2;
  let prefix = '';
  let suffix = '';
  const flags = /^\(\?([ims]+)\)/.exec(src);
  if (flags) {
    prefix = `(?${flags[1]}:`;
    suffix = ')';
    src = src.slice(flags[0].length);
  }
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; ) {
    const c = src[i] as string;
    if (c === '\\') {
      const next = src[i + 1];
      if (next === undefined) throw new RegexSyntaxError('trailing backslash');
      if (!inClass && /[1-9k]/.test(next)) throw new RegexSyntaxError(`backreference \\${next} is not supported`);
      const code = next.charCodeAt(0);
      out += code < 0x80 && !/[A-Za-z0-9]/.test(next) ? `\\x${code.toString(16).padStart(2, '0')}` : `\\${next}`;
      i += 2;
      continue;
    }
    if (inClass) {
      const posix = /^\[:(\^?)([a-z]+):\]/.exec(src.slice(i));
      if (posix) {
        const set = POSIX_CLASSES[posix[2] as string];
        if (set === undefined || posix[1] === '^') throw new RegexSyntaxError(`unsupported character class ${posix[0]}`);
        out += set;
        i += posix[0].length;
        continue;
      }
      if (c === ']') inClass = false;
      out += c;
      i += 1;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += '[';
      i += 1;
      if (src[i] === '^') {
        out += '^';
        i += 1;
      }
      if (src[i] === ']') {
        out += '\\]';
        i += 1;
      }
      continue;
    }
    if (c === '(' && src[i + 1] === '?') {
      if (src.startsWith('(?P<', i)) {
        out += '(?<';
        i += 4;
        continue;
      }
      if (/^\(\?(=|!|<=|<!)/.test(src.slice(i, i + 4))) throw new RegexSyntaxError('lookaround is not supported');
    }
    out += c;
    i += 1;
  }
  return prefix + out + suffix;
}

/** Compiles a Prometheus regex: anchored at both ends, "." matches newlines (Prometheus wraps it in ^(?s:...)$). */
export function compileAnchored(re2: string): RegExp {
  return new RegExp(`^(?:${translateRegex(re2)})$`, 'su');
}

// ---------------------------------------------------------------------------------
// Replacement templates, parsed once.

type TemplatePart = string | { readonly group: number } | { readonly name: string };

export interface Template {
  readonly parts: readonly TemplatePart[];
  /** The expansion when the template has no references (the common case). */
  readonly constant: string | null;
}

const NAME_CHAR = /[\p{L}\p{Nd}_]/u;

/** A `$` reference at `start` (just after the `$`): its name and where it ends, or null if malformed. */
function readReference(t: string, start: number): { name: string; end: number } | null {
  const brace = t[start] === '{';
  let i = brace ? start + 1 : start;
  while (i < t.length) {
    const cp = t.codePointAt(i) as number;
    const ch = String.fromCodePoint(cp);
    if (!NAME_CHAR.test(ch)) break;
    i += ch.length;
  }
  const name = t.slice(brace ? start + 1 : start, i);
  if (name === '') return null;
  if (brace) {
    if (t[i] !== '}') return null;
    i += 1;
  }
  return { name, end: i };
}

/**
 * Parses a template like Go's regexp.Expand reads it: `$$` is a dollar, `$name` takes
 * the longest run of letters, digits and "_" (so `$1x` means group "1x", write `${1}x`),
 * a name of ASCII digits without a leading zero is a group number, and a malformed
 * reference leaves the `$` as text.
 */
export function parseTemplate(t: string): Template {
  const parts: TemplatePart[] = [];
  let text = '';
  let i = 0;
  while (i < t.length) {
    const dollar = t.indexOf('$', i);
    if (dollar < 0) {
      text += t.slice(i);
      break;
    }
    text += t.slice(i, dollar);
    i = dollar + 1;
    if (t[i] === '$') {
      text += '$';
      i += 1;
      continue;
    }
    const ref = readReference(t, i);
    if (ref === null) {
      text += '$';
      continue;
    }
    if (text !== '') parts.push(text);
    text = '';
    parts.push(/^(0|[1-9][0-9]*)$/.test(ref.name) ? { group: Number(ref.name) } : { name: ref.name });
    i = ref.end;
  }
  if (text !== '') parts.push(text);
  const constant = parts.every((p) => typeof p === 'string') ? parts.join('') : null;
  return { parts, constant };
}

/** Expands a template against a match; unknown or unmatched groups expand to "". */
export function expandTemplate(template: Template, match: RegExpExecArray): string {
  if (template.constant !== null) return template.constant;
  let out = '';
  for (const part of template.parts) {
    if (typeof part === 'string') out += part;
    else if ('group' in part) out += match[part.group] ?? '';
    else out += match.groups?.[part.name] ?? '';
  }
  return out;
}

// ---------------------------------------------------------------------------------
// Rules.

/** Applies a rule to a label set in place; false means the endpoint is dropped. */
type CompiledRule = (labels: Map<string, string>) => boolean;

/** A compiled rule set working on a mutable Map (what the pipeline uses). */
export interface CompiledRuleSet {
  readonly size: number;
  /** Relabels `labels` in place; false when a keep or drop rule dropped the endpoint. */
  apply(labels: Map<string, string>): boolean;
}

export interface CompileOptions {
  /** Where the rules come from, for error messages. Default "relabelings". */
  readonly field?: string;
}

function sourceValue(sourceLabels: readonly string[], separator: string): (labels: Map<string, string>) => string {
  const [first, second] = sourceLabels;
  if (first === undefined) return () => '';
  if (second === undefined) return (labels) => labels.get(first) ?? '';
  return (labels) => sourceLabels.map((l) => labels.get(l) ?? '').join(separator);
}

/** Sets a label, or removes it for an empty value (as Prometheus does). */
function setOrDelete(labels: Map<string, string>, name: string, value: string): void {
  if (value === '') labels.delete(name);
  else labels.set(name, value);
}


function compileRule(rule: RelabelRuleInput, fail: (message: string, cause?: unknown) => never): CompiledRule {
  const action = rule.action ?? DEFAULTS.action;
  if (!ACTIONS.has(action)) fail(`unknown action "${String(action)}"`);
  const separator = rule.separator ?? DEFAULTS.separator;
  const sources = rule.sourceLabels ?? [];
  const target = rule.targetLabel ?? '';
  const needsTarget = action === 'replace' || action === 'lowercase' || action === 'uppercase';
  if (needsTarget && target === '') fail(`targetLabel is required for the ${action} action`);
  const needsSources = action === 'keep' || action === 'drop' || action === 'lowercase' || action === 'uppercase';
  if (needsSources && sources.length === 0) fail(`sourceLabels is required for the ${action} action`);

  let regex: RegExp;
  try {
    regex = compileAnchored(rule.regex ?? DEFAULTS.regex);
  } catch (e) {
    fail(`invalid regex ${JSON.stringify(rule.regex)}: ${e instanceof Error ? e.message : String(e)}`, e);
  }
  const value = sourceValue(sources, separator);
  const replacement = parseTemplate(rule.replacement ?? DEFAULTS.replacement);

  switch (action) {
    case 'keep':
      return (labels) => regex.test(value(labels));
    case 'drop':
      return (labels) => !regex.test(value(labels));
    case 'replace': {
      const targetTemplate = parseTemplate(target);
      return (labels) => {
        const match = regex.exec(value(labels));
        if (match === null) return true;
        const name = expandTemplate(targetTemplate, match);
        if (name !== '') setOrDelete(labels, name, expandTemplate(replacement, match));
        return true;
      };
    }
    case 'lowercase':
      return (labels) => {
        setOrDelete(labels, target, value(labels).toLowerCase());
        return true;
      };
    case 'uppercase':
      return (labels) => {
        setOrDelete(labels, target, value(labels).toUpperCase());
        return true;
      };
    case 'labelmap':
      return (labels) => {
        // Collect first (new labels are not mapped again), then apply in name order so
        // that when two names map to the same label the result does not depend on
        // insertion order: the last name in sorted order wins, as in Prometheus.
        const hits: [name: string, mapped: string, value: string][] = [];
        for (const [name, v] of labels) {
          const match = regex.exec(name);
          if (match !== null) hits.push([name, expandTemplate(replacement, match), v]);
        }
        if (hits.length > 1) hits.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        for (const [, mapped, v] of hits) if (mapped !== '') setOrDelete(labels, mapped, v);
        return true;
      };
    case 'labeldrop':
      return (labels) => {
        for (const name of [...labels.keys()]) if (regex.test(name)) labels.delete(name);
        return true;
      };
    case 'labelkeep':
      return (labels) => {
        for (const name of [...labels.keys()]) if (!regex.test(name)) labels.delete(name);
        return true;
      };
    default:
      return fail(`unknown action "${String(action)}"`);
  }
}

/** Compiles a rule set for the pipeline. Throws RelabelError naming the first bad rule. */
export function compileRuleSet(rules: readonly RelabelRuleInput[], options: CompileOptions = {}): CompiledRuleSet {
  const field = options.field ?? 'relabelings';
  const compiled = rules.map((rule, index) =>
    compileRule(rule, (message, cause) => {
      throw new RelabelError(field, index, message, cause === undefined ? undefined : { cause });
    }),
  );
  return {
    size: compiled.length,
    apply(labels) {
      for (const rule of compiled) if (!rule(labels)) return false;
      return true;
    },
  };
}

/**
 * Compiles a rule set into a function from a label set to the relabelled set, or null
 * when a keep or drop rule drops it. The input is never modified.
 */
export function compileRules(
  rules: readonly RelabelRuleInput[],
  options: CompileOptions = {},
): (labels: Readonly<Record<string, string>>) => Record<string, string> | null {
  const set = compileRuleSet(rules, options);
  return (labels) => {
    const map = new Map(Object.entries(labels));
    return set.apply(map) ? Object.fromEntries(map) : null;
  };
}

/** One-off relabelling; compile once with compileRules when applying to many label sets. */
export function relabel(
  labels: Readonly<Record<string, string>>,
  rules: readonly RelabelRuleInput[],
): Record<string, string> | null {
  return compileRules(rules)(labels);
}
