/**
 * Prometheus-style relabelling of endpoint label sets. A rule set is compiled once
 * (regexes, replacement templates) and then applied to thousands of endpoints per sync.
 *
 * Semantics follow Prometheus: source label values (missing ones count as "") are
 * joined by the separator and matched against the regex anchored at both ends, with
 * "." matching newlines too; replacements expand `$1`, `${1}`, `$name`, `${name}` and
 * `$$` the way Go's regexp.Expand does; a value that ends up empty removes its label.
 * Regexes run on RE2 (re2js: linear time, no backtracking), and the input a rule reads
 * is bounded, so no registry value can make a rule run away.
 */
import { RE2JS } from 're2js';
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
// Regex: RE2 syntax and semantics (re2js), anchored as Prometheus anchors them.

/**
 * The longest value (joined source labels, or a label name for labelmap, labeldrop
 * and labelkeep) a rule reads.
 */
export const MAX_RELABEL_INPUT_LENGTH = 4096;

/**
 * RE2 matches in time linear in the input, but the step that finds groups costs about
 * the input length times the regex's program size. A rule therefore reads at most
 * RELABEL_WORK_BUDGET / program size characters (and never more than the length
 * above): `(.+)` reads 2048, a 100-instruction regex 163, and the default `(.*)`, which
needs no matching, 4096. This keeps one evaluation
 * within milliseconds whatever the registry reports (docs/mapping.md).
 */
export const RELABEL_WORK_BUDGET = 16_384;

/** The largest compiled regex (RE2 program instructions) a rule may use. */
export const MAX_REGEX_PROGRAM_SIZE = 500;

/** A compiled relabel regex: full-match tests and group extraction. */
export interface AnchoredRegex {
  /** True when the whole value matches. */
  test(value: string): boolean;
  /** The groups of a whole-value match, or null when it does not match. */
  match(value: string): Match | null;
  /** The longest input this regex reads (see RELABEL_WORK_BUDGET). */
  readonly maxInputLength: number;
}

/** The groups of one match, as Go's regexp.Expand reads them. */
export interface Match {
  /** Group by number (0 is the whole match); unmatched and unknown groups are undefined. */
  group(index: number): string | undefined;
  /** Group by name; unmatched and unknown names are undefined. */
  named(name: string): string | undefined;
}

function compileRe2(pattern: string): RE2JS {
  try {
    return RE2JS.compile(pattern);
  } catch (e) {
    // RE2JSSyntaxException carries Go's wording, e.g. "invalid or unsupported Perl syntax: `(?=`".
    throw new Error(e instanceof Error ? e.message.replace(/^error parsing regexp: /, '') : String(e), { cause: e });
  }
}

/** The default regex: `^(?s:(.*))$` matches every value whole, with group 1 the value itself. */
const MATCH_ALL = '(.*)';
const matchAll: AnchoredRegex = {
  maxInputLength: MAX_RELABEL_INPUT_LENGTH,
  test: () => true,
  match: (value) => ({ group: (index) => (index <= 1 ? value : undefined), named: () => undefined }),
};

/**
 * Compiles a Prometheus relabel regex: RE2 syntax, anchored at both ends, "." matching
 * newlines (Prometheus compiles `^(?s:<regex>)$`). The pattern is first compiled alone,
 * so text like `a)|(b` cannot escape the anchors. Backreferences and lookaround are not
 * RE2 and are rejected. Throws an Error with RE2's message.
 */
export function compileAnchored(pattern: string): AnchoredRegex {
  if (pattern === MATCH_ALL) return matchAll;
  compileRe2(pattern);
  const re = compileRe2(`^(?s:${pattern})$`);
  const size = re.programSize();
  if (size > MAX_REGEX_PROGRAM_SIZE) {
    throw new Error(`regex too large: it compiles to ${size} instructions, at most ${MAX_REGEX_PROGRAM_SIZE} are allowed`);
  }
  const names = re.namedGroups();
  const groupCount = re.groupCount();
  return remembered({
    maxInputLength: Math.min(MAX_RELABEL_INPUT_LENGTH, Math.floor(RELABEL_WORK_BUDGET / size)),
    // testExact asks for no groups, so RE2 runs its DFA: the cheap path for keep and drop.
    test: (value) => re.testExact(value),
    match(value) {
      // Rejecting on the DFA first keeps the slower group-finding pass for values that match.
      if (!re.testExact(value)) return null;
      const m = re.matcher(value);
      if (!m.matches()) return null;
      const groups: (string | undefined)[] = [];
      for (let i = 0; i <= groupCount; i++) groups.push(m.group(i) ?? undefined);
      return {
        group: (index) => groups[index],
        named: (name) => (Object.hasOwn(names, name) ? groups[names[name] as number] : undefined),
      };
    },
  });
}

/** Results kept per regex (values up to REMEMBERED_LENGTH characters); when full the memory starts over. */
const REMEMBERED_VALUES = 4096;
const REMEMBERED_LENGTH = 256;

/**
 * The same regex on the same value gives the same answer, and registry values repeat:
 * label names (labelmap, labeldrop) on every endpoint, service names and tags on every
 * instance. Remembering recent answers spares RE2 most of a large source's mapping.
 * Matches are immutable, so one can be handed out many times.
 */
function remembered(regex: AnchoredRegex): AnchoredRegex {
  let tests = new Map<string, boolean>();
  let matches = new Map<string, Match | null>();
  return {
    maxInputLength: regex.maxInputLength,
    test(value) {
      if (value.length > REMEMBERED_LENGTH) return regex.test(value);
      let r = tests.get(value);
      if (r === undefined) {
        r = regex.test(value);
        if (tests.size >= REMEMBERED_VALUES) tests = new Map();
        tests.set(value, r);
      }
      return r;
    },
    match(value) {
      if (value.length > REMEMBERED_LENGTH) return regex.match(value);
      let r = matches.get(value);
      if (r === undefined) {
        r = regex.match(value);
        if (matches.size >= REMEMBERED_VALUES) matches = new Map();
        matches.set(value, r);
      }
      return r;
    },
  };
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
export function expandTemplate(template: Template, match: Match): string {
  if (template.constant !== null) return template.constant;
  let out = '';
  for (const part of template.parts) {
    if (typeof part === 'string') out += part;
    else if ('group' in part) out += match.group(part.group) ?? '';
    else out += match.named(part.name) ?? '';
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

/**
 * A rule was asked to read a value longer than MAX_RELABEL_INPUT_LENGTH: registry
 * data, not a bad spec. The endpoint is skipped with this message as the reason.
 */
export class RelabelInputTooLongError extends Error {
  override readonly name = 'RelabelInputTooLongError';
  readonly rule: string;
  readonly length: number;
  readonly limit: number;
  constructor(rule: string, what: string, length: number, limit: number) {
    super(`${rule} reads ${what} of ${length} characters; this rule reads at most ${limit}`);
    this.rule = rule;
    this.length = length;
    this.limit = limit;
  }
}

function describeSources(sourceLabels: readonly string[]): string {
  const names = sourceLabels.slice(0, 3).join(', ') + (sourceLabels.length > 3 ? ', ...' : '');
  return sourceLabels.length === 1 ? `the value of ${names}` : `the joined values of ${names}`;
}

function sourceValue(sourceLabels: readonly string[], separator: string, rule: string, limit: number): (labels: Map<string, string>) => string {
  const [first, second] = sourceLabels;
  const join =
    first === undefined
      ? () => ''
      : second === undefined
        ? (labels: Map<string, string>) => labels.get(first) ?? ''
        : (labels: Map<string, string>) => sourceLabels.map((l) => labels.get(l) ?? '').join(separator);
  return (labels) => {
    const value = join(labels);
    if (value.length > limit) throw new RelabelInputTooLongError(rule, describeSources(sourceLabels), value.length, limit);
    return value;
  };
}

/** The label names a label* rule matches, each within the input bound. */
function labelNames(labels: Map<string, string>, rule: string, limit: number): string[] {
  const names = [...labels.keys()];
  for (const name of names) {
    if (name.length > limit) throw new RelabelInputTooLongError(rule, `the label name ${JSON.stringify(`${name.slice(0, 40)}...`)}`, name.length, limit);
  }
  return names;
}

/** Sets a label, or removes it for an empty value (as Prometheus does). */
function setOrDelete(labels: Map<string, string>, name: string, value: string): void {
  if (value === '') labels.delete(name);
  else labels.set(name, value);
}

function compileRule(rule: RelabelRuleInput, where: string, fail: (message: string, cause?: unknown) => never): CompiledRule {
  const action = rule.action ?? DEFAULTS.action;
  if (!ACTIONS.has(action)) fail(`unknown action "${String(action)}"`);
  const separator = rule.separator ?? DEFAULTS.separator;
  const sources = rule.sourceLabels ?? [];
  const target = rule.targetLabel ?? '';
  const needsTarget = action === 'replace' || action === 'lowercase' || action === 'uppercase';
  if (needsTarget && target === '') fail(`targetLabel is required for the ${action} action`);
  const needsSources = action === 'keep' || action === 'drop' || action === 'lowercase' || action === 'uppercase';
  if (needsSources && sources.length === 0) fail(`sourceLabels is required for the ${action} action`);

  let regex: AnchoredRegex;
  try {
    regex = compileAnchored(rule.regex ?? DEFAULTS.regex);
  } catch (e) {
    fail(`invalid regex ${JSON.stringify(rule.regex)}: ${e instanceof Error ? e.message : String(e)}`, e);
  }
  // lowercase and uppercase use no regex: they read up to the general bound.
  const limit = action === 'lowercase' || action === 'uppercase' ? MAX_RELABEL_INPUT_LENGTH : regex.maxInputLength;
  const value = sourceValue(sources, separator, where, limit);
  const replacement = parseTemplate(rule.replacement ?? DEFAULTS.replacement);

  switch (action) {
    case 'keep':
      return (labels) => regex.test(value(labels));
    case 'drop':
      return (labels) => !regex.test(value(labels));
    case 'replace': {
      const targetTemplate = parseTemplate(target);
      return (labels) => {
        const match = regex.match(value(labels));
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
        for (const name of labelNames(labels, where, regex.maxInputLength)) {
          const match = regex.match(name);
          if (match !== null) hits.push([name, expandTemplate(replacement, match), labels.get(name) as string]);
        }
        if (hits.length > 1) hits.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        for (const [, mapped, v] of hits) if (mapped !== '') setOrDelete(labels, mapped, v);
        return true;
      };
    case 'labeldrop':
      return (labels) => {
        for (const name of labelNames(labels, where, regex.maxInputLength)) if (regex.test(name)) labels.delete(name);
        return true;
      };
    case 'labelkeep':
      return (labels) => {
        for (const name of labelNames(labels, where, regex.maxInputLength)) if (!regex.test(name)) labels.delete(name);
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
    compileRule(rule, `${field}[${index}]`, (message, cause) => {
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
