/**
 * Well-formed SQL92 filter expressions (lib/broker/filter/sql-parser.ts's grammar), generated as
 * a tree with fc.letrec, printed to text, and evaluated by a reference evaluator written from the
 * semantics in sql-eval.ts's header: three-valued logic, properties read as strings, numbers
 * compared as doubles, a property that is not a number never equal to one, string tests against
 * '' false, IN items compared as = compares them and NOT IN its negation.
 */
import fc from 'fast-check';

type Cmp = '=' | '<>' | '<' | '<=' | '>' | '>=';
export type Operand =
  | { kind: 'prop'; name: string }
  | { kind: 'num'; value: number; text: string }
  | { kind: 'str'; value: string }
  | { kind: 'bool'; value: boolean };
type Prop = Extract<Operand, { kind: 'prop' }>;
type Num = Extract<Operand, { kind: 'num' }>;
type Str = Extract<Operand, { kind: 'str' }>;

export type Cond =
  | { kind: 'and' | 'or'; items: Cond[] }
  | { kind: 'not'; item: Cond }
  | { kind: 'const'; value: boolean }
  | { kind: 'cmp'; op: Cmp; left: Operand; right: Operand }
  | { kind: 'isNull'; negated: boolean; prop: Prop }
  | { kind: 'between'; negated: boolean; prop: Prop; low: Num; high: Num }
  | { kind: 'in'; negated: boolean; operand: Prop | Str; list: (Str | Num)[] }
  | { kind: 'test'; op: 'CONTAINS' | 'STARTSWITH' | 'ENDSWITH'; negated: boolean;
      operand: Prop | Str; pattern: string };

export const PROPERTY_NAMES = ['a', 'b', 'c', 'TAGS', 'x.y', '$p', '_q9', '__proto__',
  'constructor'];
/** Property values: numbers in several spellings, words, booleans in any case, blanks. */
export const VALUE_POOL = ['0', '5', '-5', '5.0', '+5', '.5', '5.', '1e1', '-1.5E-1', '7', 'abc',
  '', ' 5', '5 ', 'true', 'TRUE', 'False', 'NaN', 'Infinity', '0x10', "it's", 'x'];

const ALL_OPS: readonly Cmp[] = ['=', '<>', '<', '<=', '>', '>='];
const EQ_OPS: readonly Cmp[] = ['=', '<>'];
const MIRRORED: Readonly<Record<Cmp, Cmp>> = {
  '=': '=', '<>': '<>', '<': '>', '<=': '>=', '>': '<', '>=': '<=',
};

const propArb: fc.Arbitrary<Prop> = fc.constantFrom(...PROPERTY_NAMES)
  .map((name) => ({ kind: 'prop' as const, name }));
const textArb = fc.oneof(fc.constantFrom(...VALUE_POOL), fc.string({ maxLength: 6 }));
const strArb: fc.Arbitrary<Str> = textArb.map((value) => ({ kind: 'str' as const, value }));

/** A number literal: its value and a spelling the lexer reads as that value. */
const numArb: fc.Arbitrary<Num> = fc.oneof(
  { arbitrary: fc.nat({ max: 10 }).map((n) => ({ value: n, text: String(n) })), weight: 3 },
  fc.maxSafeNat().map((n) => ({ value: n, text: String(n) })),
  fc.nat({ max: 100 }).map((n) => ({ value: n, text: `${n}L` })),
  // A double printed without '.' or 'e' would lex as an integer, refused past 2^53 - 1.
  fc.double({ min: 0, max: 1e300, noNaN: true, noDefaultInfinity: true })
    .map((d) => ({ value: d, text: /[.e]/.test(String(d)) ? String(d) : `${d}.0` })),
  fc.constantFrom({ value: 0.5, text: '.5' }, { value: 5, text: '5.' },
    { value: 1000, text: '1e3' }, { value: 0.0025, text: '2.5E-3' }, { value: 5, text: '5.0' }),
  // fast-check bias finds -0 and tiny doubles; a sign is a token of its own.
).chain((n) => fc.boolean().map((neg) => ({ kind: 'num' as const,
  value: neg ? -n.value : n.value, text: neg ? `-${n.text}` : n.text })));

const cmpArb: fc.Arbitrary<Cond> = fc.oneof(
  fc.tuple(propArb, fc.constantFrom(...ALL_OPS), fc.oneof(numArb, propArb)),
  fc.tuple(numArb, fc.constantFrom(...ALL_OPS), fc.oneof(numArb, propArb)),
  fc.tuple(fc.oneof(propArb, strArb), fc.constantFrom(...EQ_OPS), strArb),
  fc.tuple(strArb, fc.constantFrom(...EQ_OPS), propArb),
  fc.tuple(fc.oneof(propArb, fc.boolean().map((value) => ({ kind: 'bool' as const, value }))),
    fc.constantFrom(...EQ_OPS), fc.boolean().map((value) => ({ kind: 'bool' as const, value }))),
).map(([left, op, right]) => ({ kind: 'cmp' as const, op, left, right }));

const predicateArb: fc.Arbitrary<Cond> = fc.oneof(
  cmpArb,
  fc.boolean().map((value) => ({ kind: 'const' as const, value })),
  fc.record({ kind: fc.constant('isNull' as const), negated: fc.boolean(), prop: propArb }),
  // BETWEEN needs low <= high (the parser refuses an empty range); NOT BETWEEN takes any.
  fc.record({ kind: fc.constant('between' as const), negated: fc.boolean(), prop: propArb,
    low: numArb, high: numArb }).map((c) => (c.negated || c.low.value <= c.high.value ? c
    : { ...c, low: c.high, high: c.low })),
  // Number items only with a property operand: a string literal cannot be compared with one.
  fc.record({ kind: fc.constant('in' as const), negated: fc.boolean(), operand: propArb,
    list: fc.array(fc.oneof(strArb, numArb), { minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('in' as const), negated: fc.boolean(), operand: strArb,
    list: fc.array(strArb, { minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('test' as const),
    op: fc.constantFrom('CONTAINS' as const, 'STARTSWITH' as const, 'ENDSWITH' as const),
    negated: fc.boolean(), operand: fc.oneof(propArb, strArb), pattern: textArb }),
);

/** Conditions nested at most 20 deep: two nesting levels (NOT and '(') each, under the 64. */
export const condArb: fc.Arbitrary<Cond> = fc.letrec<{ cond: Cond }>((tie) => ({
  cond: fc.oneof({ maxDepth: 20, depthSize: 'small' },
    predicateArb,
    fc.record({ kind: fc.constantFrom('and' as const, 'or' as const),
      items: fc.array(tie('cond'), { minLength: 2, maxLength: 3 }) }),
    fc.record({ kind: fc.constant('not' as const), item: tie('cond') }),
  ),
})).cond;

function quote(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

function printOperand(o: Operand): string {
  switch (o.kind) {
    case 'prop': return o.name;
    case 'num': return o.text;
    case 'str': return quote(o.value);
    case 'bool': return o.value ? 'TRUE' : 'FALSE';
  }
}

/** The expression text; every compound operand is parenthesized, keywords in random case. */
export function print(c: Cond): string {
  const sub = (x: Cond): string => (x.kind === 'and' || x.kind === 'or' || x.kind === 'not'
    ? `(${print(x)})` : print(x));
  const not = (negated: boolean): string => (negated ? 'NOT ' : '');
  switch (c.kind) {
    case 'and': return c.items.map(sub).join(' AND ');
    case 'or': return c.items.map(sub).join(' or ');
    case 'not': return `NOT ${sub(c.item)}`;
    case 'const': return c.value ? 'TRUE' : 'false';
    case 'cmp': return `${printOperand(c.left)} ${c.op} ${printOperand(c.right)}`;
    case 'isNull': return `${c.prop.name} IS ${not(c.negated)}NULL`;
    case 'between': return `${c.prop.name} ${not(c.negated)}BETWEEN ${c.low.text} AND ` +
      `${c.high.text}`;
    case 'in': return `${printOperand(c.operand)} ${not(c.negated)}IN ` +
      `(${c.list.map(printOperand).join(', ')})`;
    case 'test': return `${printOperand(c.operand)} ${not(c.negated)}${c.op} ${quote(c.pattern)}`;
  }
}

type Truth = boolean | null;
type Props = Readonly<Record<string, string>>;
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function asNumber(s: string): number {
  return DECIMAL.test(s) ? Number(s) : NaN;
}

function read(o: Operand, tags: string | undefined, props: Props): string | null {
  if (o.kind !== 'prop') return String(o.value);
  if (o.name === 'TAGS' && tags !== undefined && tags !== '') return tags;
  return Object.hasOwn(props, o.name) ? props[o.name]! : null;
}

function order(op: Cmp, x: number, y: number): boolean {
  switch (op) {
    case '=': return x === y;
    case '<>': return x !== y;
    case '<': return x < y;
    case '<=': return x <= y;
    case '>': return x > y;
    case '>=': return x >= y;
  }
}

function compare(op: Cmp, left: Operand, right: Operand, tags: string | undefined,
  props: Props): Truth {
  if (left.kind !== 'prop' && right.kind === 'prop') {
    return compare(MIRRORED[op], right, left, tags, props);
  }
  const a = read(left, tags, props);
  if (a === null) return null;
  if (right.kind === 'num') {
    const x = left.kind === 'num' ? left.value : asNumber(a);
    return !Number.isNaN(x) && order(op, x, right.value);
  }
  if (right.kind === 'str') return (a === right.value) === (op === '=');
  if (right.kind === 'bool') return (a.toLowerCase() === String(right.value)) === (op === '=');
  const b = read(right, tags, props);
  if (b === null) return null;
  const [x, y] = [asNumber(a), asNumber(b)];
  if (!Number.isNaN(x) && !Number.isNaN(y)) return order(op, x, y);
  return (op === '=' || op === '<>') && (a === b) === (op === '=');
}

const and = (xs: Truth[]): Truth => (xs.includes(false) ? false : xs.includes(null) ? null : true);
const or = (xs: Truth[]): Truth => (xs.includes(true) ? true : xs.includes(null) ? null : false);

/** The reference truth of `c` for a message with these tags and properties. */
export function evaluate(c: Cond, tags: string | undefined, props: Props): Truth {
  const flip = (v: Truth, negated: boolean): Truth => (v === null ? null : v !== negated);
  switch (c.kind) {
    case 'and': return and(c.items.map((x) => evaluate(x, tags, props)));
    case 'or': return or(c.items.map((x) => evaluate(x, tags, props)));
    case 'not': return flip(evaluate(c.item, tags, props), true);
    case 'const': return c.value;
    case 'cmp': return compare(c.op, c.left, c.right, tags, props);
    case 'isNull': return (read(c.prop, tags, props) === null) !== c.negated;
    case 'between': return c.negated
      ? or([compare('<', c.prop, c.low, tags, props), compare('>', c.prop, c.high, tags, props)])
      : and([compare('>=', c.prop, c.low, tags, props),
        compare('<=', c.prop, c.high, tags, props)]);
    case 'in': {
      const s = read(c.operand, tags, props);
      if (s === null) return null;
      const hit = c.list.some((item) => (item.kind === 'str' ? item.value === s
        : asNumber(s) === item.value));
      return flip(hit, c.negated);
    }
    case 'test': {
      if (c.pattern === '') return false; // RocketMQ: false against '', even negated
      const s = read(c.operand, tags, props);
      if (s === null) return null;
      const hit = c.op === 'CONTAINS' ? s.includes(c.pattern)
        : c.op === 'STARTSWITH' ? s.startsWith(c.pattern) : s.endsWith(c.pattern);
      return flip(hit, c.negated);
    }
  }
}

/** Property maps over the names the generator uses, with values from the pool and beyond. */
export const propsArb: fc.Arbitrary<Record<string, string>> = fc.dictionary(
  fc.oneof({ arbitrary: fc.constantFrom(...PROPERTY_NAMES), weight: 5 },
    fc.constantFrom('toString', 'valueOf')),
  fc.oneof({ arbitrary: fc.constantFrom(...VALUE_POOL), weight: 3 }, fc.string({ maxLength: 5 })),
  { maxKeys: 7 },
);

export const tagsArb: fc.Arbitrary<string | undefined> = fc.option(
  fc.oneof(fc.constantFrom(...VALUE_POOL), fc.string({ maxLength: 5 })), { nil: undefined });
