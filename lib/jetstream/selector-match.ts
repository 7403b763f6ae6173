/**
 * ADAPTER, to be replaced: `matchesSelector(selector, tags, properties)`, the check the embedded
 * store runs on each message against a consumer's MessageSelector. pocketmq's public API exports
 * MessageSelector (which parses and validates its expression when it is made) but no way to run
 * it, so JetStream consumers evaluate it here, on the client, with the embedded store's
 * semantics:
 *
 * - Tags: `*` (or blank) selects everything; otherwise a message matches when its tag is one of
 *   the tags listed with `||`. An untagged message matches only `*`.
 * - SQL92: three-valued logic (a missing property is NULL, and a comparison with NULL is
 *   unknown; only true matches). Against a number a property is read as a decimal number (not
 *   a number: false); against TRUE / FALSE it equals 'true' / 'false' in any case; strings
 *   compare exactly; two properties compare as numbers when both are, else as strings for = and
 *   <>. `TAGS` reads the message's tag.
 *
 * The expression was validated by `MessageSelector.bySql`, so this evaluator assumes the grammar
 * holds. When pocketmq exports its own matcher, this module becomes one re-export.
 */
import type { MessageSelector } from '../index.js';

type Props = Readonly<Record<string, string>>;
type Truth = boolean | null;
type Test = (tags: string | undefined, props: Props) => Truth;
/** An operand: its string (numbers and booleans as text), or null for NULL. */
type Read = (tags: string | undefined, props: Props) => string | null;
interface Operand { readonly read: Read; readonly kind: 'prop' | 'str' | 'num' | 'bool' | 'null' }

const compiled = new WeakMap<MessageSelector, Test>();
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const TOKEN = /\s*(?:('(?:[^']|'')*')|(\d+\.?\d*(?:[eE][+-]?\d+)?[lL]?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z_$][A-Za-z0-9_$.]*)|(<>|<=|>=|[=<>(),+-]))/y;
const KEYWORDS = new Set(['NOT', 'AND', 'OR', 'BETWEEN', 'IN', 'TRUE', 'FALSE', 'NULL', 'IS',
  'CONTAINS', 'STARTSWITH', 'ENDSWITH']);
const LITERALS = new Set(['TRUE', 'FALSE', 'NULL']);
const COMPARISONS = new Set(['=', '<>', '<', '<=', '>', '>=']);
/** What NOT may stand before, after an operand (`a NOT IN (...)`). */
const NEGATABLE = new Set(['BETWEEN', 'IN', 'CONTAINS', 'STARTSWITH', 'ENDSWITH']);

/** True when a message with `tags` and `properties` passes `selector`. */
export function matchesSelector(selector: MessageSelector, tags: string | undefined,
  properties: Props): boolean {
  let test = compiled.get(selector);
  if (test === undefined) {
    test = selector.type === 'SQL92' ? compileSql(selector.expression)
      : compileTags(selector.expression);
    compiled.set(selector, test);
  }
  return test(tags, properties) === true;
}

function compileTags(expression: string): Test {
  const listed = expression.split('||').map((t) => t.trim());
  if (listed.length === 1 && (listed[0] === '' || listed[0] === '*')) return () => true;
  const wanted = new Set(listed);
  return (tags) => tags !== undefined && wanted.has(tags);
}

function toNumber(s: string): number {
  return NUMBER.test(s) ? Number(s) : NaN;
}

function own(props: Props, name: string): string | null {
  const v: unknown = Object.prototype.hasOwnProperty.call(props, name) ? props[name] : undefined;
  return typeof v === 'string' ? v : null;
}

function compileSql(expression: string): Test {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(expression); m !== null; m = TOKEN.exec(expression)) {
    tokens.push(m[0].trim());
  }
  return new SqlReader(tokens).condition();
}

/** Recursive descent over the tokens: or := and (OR and)*, and := not (AND not)*, ... */
class SqlReader {
  private at = 0;

  constructor(private readonly tokens: readonly string[]) {}

  condition(): Test {
    const items = [this.and()];
    while (this.take('OR')) items.push(this.and());
    return junction(items, true);
  }

  private and(): Test {
    const items = [this.not()];
    while (this.take('AND')) items.push(this.not());
    return junction(items, false);
  }

  private not(): Test {
    if (!this.take('NOT')) return this.predicate();
    const item = this.not();
    return (t, p) => {
      const v = item(t, p);
      return v === null ? null : !v;
    };
  }

  private peek(): string {
    return this.tokens[this.at] ?? '';
  }

  private take(word: string): boolean {
    if (this.peek().toUpperCase() !== word) return false;
    this.at++;
    return true;
  }

  /** A parenthesized condition, a boolean literal, or an operand and what follows it. */
  private predicate(): Test {
    if (this.peek() === '(' && this.isConditionGroup()) {
      this.at++;
      const inner = this.condition();
      this.take(')');
      return inner;
    }
    const left = this.operand();
    const op = this.peek().toUpperCase();
    if (COMPARISONS.has(op)) {
      this.at++;
      return compare(op, left, this.operand());
    }
    if (this.take('IS')) {
      const negated = this.take('NOT');
      this.take('NULL');
      return (t, p) => (left.read(t, p) === null) !== negated;
    }
    const next = this.tokens[this.at + 1]?.toUpperCase() ?? '';
    const negated = op === 'NOT' && NEGATABLE.has(next);
    if (negated) this.at++;
    if (this.take('BETWEEN')) {
      const low = this.operand();
      this.take('AND');
      const high = this.operand();
      return negated ? junction([compare('<', left, low), compare('>', left, high)], true)
        : junction([compare('>=', left, low), compare('<=', left, high)], false);
    }
    if (this.take('IN')) return this.inList(left, negated);
    const test = this.peek().toUpperCase();
    // A bare value is a condition only as TRUE or FALSE (the parser refused anything else).
    if (!NEGATABLE.has(test)) return () => left.read(undefined, {}) === 'true';
    this.at++;
    const pattern = unquote(this.tokens[this.at++] ?? "''");
    const check = test === 'CONTAINS' ? (s: string) => s.includes(pattern)
      : test === 'STARTSWITH' ? (s: string) => s.startsWith(pattern)
        : (s: string) => s.endsWith(pattern);
    return (t, p) => {
      const s = left.read(t, p);
      return s === null ? null : check(s) !== negated;
    };
  }

  private inList(left: Operand, negated: boolean): Test {
    this.take('(');
    const set = new Set<string>();
    do set.add(unquote(this.tokens[this.at++] ?? "''")); while (this.take(','));
    this.take(')');
    return (t, p) => {
      const s = left.read(t, p);
      return s === null ? null : set.has(s) !== negated;
    };
  }

  /** At '(': does the group hold a condition, or does it wrap a value (`(a) = 1`)? */
  private isConditionGroup(): boolean {
    let depth = 0;
    for (let i = this.at; i < this.tokens.length; i++) {
      const t = this.tokens[i]!.toUpperCase();
      if (t === '(') depth++;
      else if (t === ')' && --depth === 0) return false;
      else if (COMPARISONS.has(t) || (KEYWORDS.has(t) && !LITERALS.has(t))) return true;
    }
    return false;
  }

  private operand(): Operand {
    const token = this.tokens[this.at++] ?? '';
    const upper = token.toUpperCase();
    if (token === '(') {
      const inner = this.operand();
      this.take(')');
      return inner;
    }
    if (token === '-' || token === '+') {
      const n = Number((this.tokens[this.at++] ?? '0').replace(/[lL]$/, ''));
      return literal('num', String(token === '-' ? -n : n));
    }
    if (token.startsWith("'")) return literal('str', unquote(token));
    if (/^[\d.]/.test(token)) return literal('num', String(Number(token.replace(/[lL]$/, ''))));
    if (upper === 'TRUE' || upper === 'FALSE') return literal('bool', upper.toLowerCase());
    if (upper === 'NULL') return { kind: 'null', read: () => null };
    if (token === 'TAGS') {
      return { kind: 'prop',
        read: (tags, props) => tags !== undefined && tags !== '' ? tags : own(props, token) };
    }
    return { kind: 'prop', read: (_tags, props) => own(props, token) };
  }
}

function literal(kind: Operand['kind'], value: string): Operand {
  return { kind, read: () => value };
}

function unquote(token: string): string {
  return token.slice(1, -1).replaceAll("''", "'");
}

/**
 * SQL's OR (`decisive` true) or AND (false) over three-valued items: `decisive` if any item is,
 * else unknown if any is, else the other value.
 */
function junction(items: readonly Test[], decisive: boolean): Test {
  if (items.length === 1) return items[0]!;
  return (t, p) => {
    let result: Truth = !decisive;
    for (const item of items) {
      const v = item(t, p);
      if (v === decisive) return decisive;
      if (v === null) result = null;
    }
    return result;
  };
}

const ORDER: Record<string, (a: number, b: number) => boolean> = {
  '=': (a, b) => a === b, '<>': (a, b) => a !== b, '<': (a, b) => a < b,
  '<=': (a, b) => a <= b, '>': (a, b) => a > b, '>=': (a, b) => a >= b,
};
const MIRROR: Record<string, string> = { '=': '=', '<>': '<>', '<': '>', '<=': '>=', '>': '<',
  '>=': '<=' };

function compare(op: string, left: Operand, right: Operand): Test {
  if (left.kind !== 'prop' && right.kind === 'prop') return compare(MIRROR[op]!, right, left);
  const numeric = ORDER[op]!;
  const equality = op === '=' || op === '<>';
  if (right.kind === 'null' || left.kind === 'null') return () => null;
  if (right.kind === 'num') {
    const n = Number(right.read(undefined, {}));
    return (t, p) => {
      const s = left.read(t, p);
      if (s === null) return null;
      const x = toNumber(s);
      return !Number.isNaN(x) && numeric(x, n);
    };
  }
  if (right.kind === 'str' || right.kind === 'bool') {
    if (!equality) return () => false;
    const want = right.read(undefined, {});
    const fold = right.kind === 'bool';
    return (t, p) => {
      const s = left.read(t, p);
      return s === null ? null : ((fold ? s.toLowerCase() : s) === want) === (op === '=');
    };
  }
  return (t, p) => {
    const a = left.read(t, p);
    const b = right.read(t, p);
    if (a === null || b === null) return null;
    const x = toNumber(a);
    const y = toNumber(b);
    if (!Number.isNaN(x) && !Number.isNaN(y)) return numeric(x, y);
    return equality && (a === b) === (op === '=');
  };
}
