/**
 * The SQL92 filter evaluator: a checked syntax tree compiled once into a tree of closures.
 *
 * Semantics (RocketMQ's, where it has one):
 * - Property values are strings. `TAGS` reads the message's tags, falling back to a `TAGS`
 *   property. A missing property, or one whose value is not a string, is NULL.
 * - Truth has three values: true, false and unknown (null). Any comparison, IN or string test
 *   with a NULL operand is unknown; AND, OR and NOT follow SQL (unknown AND false = false,
 *   unknown OR true = true, NOT unknown = unknown). A filter matches only when it is true.
 * - Against a number, a property is read as a decimal number (`-1.5e3`; no spaces, hex, NaN or
 *   Infinity words); a string that is not one makes the comparison false, never unknown. So
 *   `a <> 5` and `a NOT BETWEEN 1 AND 5` are false for a = 'abc'.
 * - Against TRUE / FALSE, a property equals when its string is 'true' / 'false' in any case; `<>`
 *   is the negation of that string test.
 * - Strings compare exactly, with = and <> only (the parser refuses string orderings).
 * - CONTAINS, STARTSWITH and ENDSWITH with the empty string are false, NOT or not (RocketMQ's
 *   rule), even for a NULL operand.
 * - IN compares string items exactly and number items as `=` does (the property read as a
 *   number); NOT IN is the negation of IN, so it is true for a property that is not a number.
 * - Two properties compare as numbers when both read as numbers, else as strings for = and <>;
 *   an ordering of two properties where either is not a number is false.
 * Evaluation never throws: property reads are guarded, everything else works on strings.
 */
import type { Condition, CompareOp, Value } from './sql-ast.js';
import { MIRRORED } from './sql-ast.js';

/** Three-valued truth: true, false, or null for unknown. */
export type Truth = boolean | null;
export type Properties = Readonly<Record<string, string>>;
/** A compiled condition. */
export type Test = (tags: string | undefined, props: Properties) => Truth;
/** A compiled operand: its string, or null for NULL. */
type Read = (tags: string | undefined, props: Properties) => string | null;

/** The property that carries the message's tags (RocketMQ's MessageConst.PROPERTY_TAGS). */
export const TAGS_PROPERTY = 'TAGS';

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const EMPTY: Properties = Object.freeze({});
const hasOwn = Object.prototype.hasOwnProperty;

/** A property string read as a number; NaN when it is not a decimal number. */
export function toNumber(s: string): number {
  return NUMBER.test(s) ? Number(s) : NaN;
}

const NUMBER_TESTS: Readonly<Record<CompareOp, (a: number, b: number) => boolean>> = {
  '=': (a, b) => a === b,
  '<>': (a, b) => a !== b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

/** Own string properties only: `constructor` or `__proto__` never reach Object.prototype. */
function readOwn(props: Properties, name: string): string | null {
  try {
    if (props === null || props === undefined || !hasOwn.call(props, name)) return null;
    const v: unknown = props[name];
    return typeof v === 'string' ? v : null;
  } catch {
    return null; // a throwing getter or proxy trap: the property is unreadable, so NULL
  }
}

function reader(v: Value): Read {
  switch (v.kind) {
    case 'property': {
      const name = v.name;
      if (name !== TAGS_PROPERTY) return (_tags, props) => readOwn(props, name);
      return (tags, props) =>
        typeof tags === 'string' && tags !== '' ? tags : readOwn(props, name);
    }
    case 'string': return constant(v.value);
    case 'number': return constant(String(v.value));
    case 'boolean': return constant(v.value ? 'true' : 'false');
    case 'null': return constant(null);
  }
}

function constant<T>(value: T): () => T {
  return () => value;
}

/** Compile a checked condition; a condition over literals alone is folded to a constant. */
export function compileCondition(c: Condition): Test {
  const test = compile(c);
  return usesProperties(c) ? test : constant(test(undefined, EMPTY));
}

function usesProperties(c: Condition): boolean {
  switch (c.kind) {
    case 'and': case 'or': return c.items.some(usesProperties);
    case 'not': return usesProperties(c.item);
    case 'const': return false;
    case 'compare': return c.left.kind === 'property' || c.right.kind === 'property';
    case 'isNull': case 'in': case 'test': return c.operand.kind === 'property';
  }
}

function compile(c: Condition): Test {
  switch (c.kind) {
    case 'and': return all(c.items.map(compile));
    case 'or': return any(c.items.map(compile));
    case 'not': {
      const item = compile(c.item);
      return (tags, props) => {
        const v = item(tags, props);
        return v === null ? null : !v;
      };
    }
    case 'const': return constant(c.value);
    case 'compare': return compileCompare(c.op, c.left, c.right);
    case 'isNull': {
      const read = reader(c.operand);
      const isNull = !c.negated;
      return (tags, props) => (read(tags, props) === null) === isNull;
    }
    case 'in': return compileIn(reader(c.operand), c.list, c.negated);
    case 'test': return compileStringTest(c.op, reader(c.operand), c.pattern, c.negated);
  }
}

function all(items: Test[]): Test {
  return (tags, props) => {
    let result: Truth = true;
    for (const item of items) {
      const v = item(tags, props);
      if (v === false) return false;
      if (v === null) result = null;
    }
    return result;
  };
}

function any(items: Test[]): Test {
  return (tags, props) => {
    let result: Truth = false;
    for (const item of items) {
      const v = item(tags, props);
      if (v === true) return true;
      if (v === null) result = null;
    }
    return result;
  };
}

/**
 * IN: true when the operand equals a string item, or reads as a number equal to a number item
 * (as `=` compares them); NOT IN is its negation (RocketMQ's), so `a NOT IN (1)` is true for
 * a = 'abc'. NULL for a NULL operand.
 */
function compileIn(read: Read, list: readonly (string | number)[], negated: boolean): Test {
  const strings = new Set<string>();
  const numbers = new Set<number>();
  for (const item of list) {
    if (typeof item === 'string') strings.add(item);
    else numbers.add(item);
  }
  const withNumbers = numbers.size > 0;
  return (tags, props) => {
    const s = read(tags, props);
    if (s === null) return null;
    const hit = strings.has(s) || (withNumbers && numbers.has(toNumber(s)));
    return hit !== negated;
  };
}

function compileStringTest(op: 'CONTAINS' | 'STARTSWITH' | 'ENDSWITH', read: Read,
  pattern: string, negated: boolean): Test {
  // RocketMQ: a test against the empty string is false, negated or not, whatever the operand.
  if (pattern === '') return constant(false);
  const test = op === 'CONTAINS' ? (s: string) => s.includes(pattern)
    : op === 'STARTSWITH' ? (s: string) => s.startsWith(pattern)
      : (s: string) => s.endsWith(pattern);
  return (tags, props) => {
    const s = read(tags, props);
    return s === null ? null : test(s) !== negated;
  };
}

function compileCompare(op: CompareOp, left: Value, right: Value): Test {
  // Keep any property on the left, so the right decides how the left is read.
  if (left.kind !== 'property' && right.kind === 'property') {
    return compileCompare(MIRRORED[op], right, left);
  }
  const read = reader(left);
  const numberTest = NUMBER_TESTS[op];
  const equality = op === '=' || op === '<>';
  switch (right.kind) {
    case 'number': {
      const n = right.value;
      return (tags, props) => {
        const s = read(tags, props);
        if (s === null) return null;
        const x = toNumber(s);
        return x === x && numberTest(x, n); // x !== x: not a number, so false
      };
    }
    case 'string': case 'boolean': {
      if (!equality) return constant(false); // refused by the parser; false is SQL's answer
      const boolean = right.kind === 'boolean';
      const want = boolean ? String(right.value) : right.value;
      const equal = op === '=';
      return (tags, props) => {
        const s = read(tags, props);
        if (s === null) return null;
        return ((boolean ? s.toLowerCase() : s) === want) === equal;
      };
    }
    case 'null': return constant(null);
    case 'property': return compareReads(op, read, reader(right));
  }
}

/** Two operands read at evaluation time: numbers when both are, else strings for = and <>. */
function compareReads(op: CompareOp, readLeft: Read, readRight: Read): Test {
  const numberTest = NUMBER_TESTS[op];
  const equality = op === '=' || op === '<>';
  const equal = op === '=';
  return (tags, props) => {
    const a = readLeft(tags, props);
    const b = readRight(tags, props);
    if (a === null || b === null) return null;
    const x = toNumber(a);
    const y = toNumber(b);
    if (x === x && y === y) return numberTest(x, y);
    return equality && (a === b) === equal;
  };
}
