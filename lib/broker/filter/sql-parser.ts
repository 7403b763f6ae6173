/**
 * The SQL92 filter parser: tokens to a checked syntax tree (sql-ast.ts), by recursive descent.
 *
 *   filter     := or END
 *   or         := and (OR and)*
 *   and        := not (AND not)*
 *   not        := NOT not | predicate
 *   predicate  := operand [ ('=' | '<>' | '<' | '<=' | '>' | '>=') operand
 *                         | IS [NOT] NULL
 *                         | [NOT] BETWEEN operand AND operand
 *                         | [NOT] IN '(' item (',' item)* ')'
 *                         | [NOT] (CONTAINS | STARTSWITH | ENDSWITH) string ]
 *   operand    := '(' or ')' | string | ['+' | '-'] number | TRUE | FALSE | NULL | identifier
 *   item       := string | ['+' | '-'] number
 *
 * Precedence NOT > AND > OR, as in SQL. RocketMQ's grammar differs in two corners, where this
 * one is stricter: there NOT binds to an operand (`NOT a = 1` reads `(NOT a) = 1`), here to a
 * predicate (`NOT (a = 1)`); and there a bare property is a condition, always false for string
 * properties, here it is refused. Comparisons do not chain (`a = 1 = 2` is refused).
 *
 * Sorts are checked here, once: a comparison refuses NULL (`a = NULL` is never true; say
 * `a IS NULL`), an ordering (<, <=, >, >=, BETWEEN) refuses string and boolean literals, two
 * literals of different kinds cannot be compared, and IN / CONTAINS / STARTSWITH / ENDSWITH
 * take a property or a string. As in RocketMQ, `BETWEEN low AND high` with number bounds needs
 * low <= high (`a BETWEEN 10 AND 0` is refused; NOT BETWEEN is not checked). An IN list holds
 * strings and numbers (RocketMQ's holds strings only): a number item is compared as `=` compares
 * a property with a number. Nesting of parentheses and NOTs is bounded by MAX_FILTER_DEPTH and
 * IN lists by MAX_FILTER_IN_ITEMS.
 */
import type { CompareOp, Condition, Node, StringTest, Value } from './sql-ast.js';
import { isValue } from './sql-ast.js';
import {
  checkExpression, invalidFilter, MAX_FILTER_DEPTH, MAX_FILTER_IN_ITEMS,
} from './filter-limits.js';
import { describeToken, tokenize, type Token } from './sql-lexer.js';

const COMPARE_OPS: ReadonlySet<string> = new Set(['=', '<>', '<', '<=', '>', '>=']);
const NEGATABLE: ReadonlySet<string> = new Set(['BETWEEN', 'IN', 'CONTAINS', 'STARTSWITH',
  'ENDSWITH']);
const PREDICATE_OPS = "a comparison (=, <>, <, <=, >, >=, IS, BETWEEN, IN, CONTAINS, " +
  'STARTSWITH, ENDSWITH)';

/** Parse a SQL92 filter expression; throws INVALID_FILTER saying where and what was expected. */
export function parseSql(expression: unknown): Condition {
  const src = checkExpression(expression, 'SQL92');
  const parser = new Parser(tokenize(src));
  return parser.parseFilter();
}

function describeValue(v: Value): string {
  switch (v.kind) {
    case 'string': return `string '${v.value.replaceAll("'", "''")}'`;
    case 'number': return `number ${v.value}`;
    case 'boolean': return v.value ? 'TRUE' : 'FALSE';
    case 'null': return 'NULL';
    case 'property': return `identifier ${v.name}`;
  }
}

function isNegatable(t: Token): boolean {
  return t.kind === 'keyword' && NEGATABLE.has(t.text);
}

function isLiteral(v: Value): boolean {
  return v.kind !== 'property';
}

class Parser {
  private at = 0;
  private depth = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  parseFilter(): Condition {
    if (this.peek().kind === 'end') {
      throw invalidFilter('SQL92 expression is empty: expected a condition such as a = 1');
    }
    const filter = this.condition(this.or());
    if (this.peek().kind !== 'end') this.fail('AND, OR or the end of the expression');
    return filter;
  }

  // The token list always ends with an `end` token, which is never consumed.
  private peek(ahead = 0): Token {
    return this.tokens[Math.min(this.at + ahead, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'end') this.at++;
    return t;
  }

  private isKeyword(word: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === 'keyword' && t.text === word;
  }

  private isOp(op: string): boolean {
    const t = this.peek();
    return t.kind === 'op' && t.text === op;
  }

  private fail(expected: string, t: Token = this.peek()): never {
    throw invalidFilter(`expected ${expected} at position ${t.pos}, found ${describeToken(t)}`);
  }

  private expectKeyword(word: string, expected: string): void {
    if (!this.isKeyword(word)) this.fail(expected);
    this.next();
  }

  private expectOp(op: string, expected: string): void {
    if (!this.isOp(op)) this.fail(expected);
    this.next();
  }

  private enter(t: Token): void {
    if (++this.depth > MAX_FILTER_DEPTH) {
      throw invalidFilter(`expression nests parentheses and NOTs more than ${MAX_FILTER_DEPTH} ` +
        `deep at position ${t.pos}`, MAX_FILTER_DEPTH, this.depth);
    }
  }

  /** `node` used as a condition; call it right after parsing `node`, to report what follows. */
  private condition(node: Node): Condition {
    if (!isValue(node)) return node;
    if (node.kind === 'boolean') return { kind: 'const', value: node.value };
    const t = this.peek();
    throw invalidFilter(`${describeValue(node)} at position ${node.pos} is not a condition: ` +
      `expected ${PREDICATE_OPS} at position ${t.pos}, found ${describeToken(t)}`);
  }

  /** `node`, which started at token `start`, used as a value. */
  private value(node: Node, start: Token): Value {
    if (isValue(node)) return node;
    throw invalidFilter(`expected a value at position ${start.pos}, found a condition`);
  }

  private or(): Node {
    const first = this.and();
    if (!this.isKeyword('OR')) return first;
    const items = [this.condition(first)];
    while (this.isKeyword('OR')) {
      this.next();
      items.push(this.condition(this.and()));
    }
    return { kind: 'or', items };
  }

  private and(): Node {
    const first = this.not();
    if (!this.isKeyword('AND')) return first;
    const items = [this.condition(first)];
    while (this.isKeyword('AND')) {
      this.next();
      items.push(this.condition(this.not()));
    }
    return { kind: 'and', items };
  }

  // Iterative over a run of NOTs, so a long run fails on depth, never on the stack.
  private not(): Node {
    let nots = 0;
    while (this.isKeyword('NOT')) {
      this.enter(this.next());
      nots++;
    }
    if (nots === 0) return this.predicate();
    let item = this.condition(this.predicate());
    this.depth -= nots;
    for (let k = 0; k < nots; k++) item = { kind: 'not', item };
    return item;
  }

  private predicate(): Node {
    const start = this.peek();
    const left = this.operand('a condition or a value');
    const t = this.peek();
    if (t.kind === 'op' && COMPARE_OPS.has(t.text)) {
      this.next();
      const rightStart = this.peek();
      const right = this.value(this.operand(`a value after '${t.text}'`), rightStart);
      return compare(t.text as CompareOp, this.value(left, start), right, t);
    }
    if (this.isKeyword('IS')) return this.isNull(this.value(left, start));
    let negated = false;
    if (this.isKeyword('NOT') && isNegatable(this.peek(1))) {
      this.next();
      negated = true;
    }
    const op = this.peek();
    if (!isNegatable(op)) return left;
    this.next();
    const operand = this.value(left, start);
    if (op.text === 'BETWEEN') return this.between(operand, negated, op);
    if (op.text === 'IN') return this.inList(stringOperand(operand, op), negated, op);
    const pattern = this.stringLiteral(`a string after ${op.text}`);
    return { kind: 'test', op: op.text as StringTest, negated,
      operand: stringOperand(operand, op), pattern };
  }

  private isNull(operand: Value): Condition {
    this.next();
    const negated = this.isKeyword('NOT');
    if (negated) this.next();
    this.expectKeyword('NULL', negated ? 'NULL after IS NOT' : 'NULL or NOT NULL after IS');
    return { kind: 'isNull', negated, operand };
  }

  private between(operand: Value, negated: boolean, op: Token): Condition {
    const lowStart = this.peek();
    const low = this.value(this.operand('a value after BETWEEN'), lowStart);
    this.expectKeyword('AND', 'AND after BETWEEN\'s lower bound');
    const highStart = this.peek();
    const high = this.value(this.operand('a value after BETWEEN ... AND'), highStart);
    // RocketMQ refuses an empty range when it parses it (NOT BETWEEN it leaves unchecked).
    if (!negated && low.kind === 'number' && high.kind === 'number' && high.value < low.value) {
      throw invalidFilter(`BETWEEN at position ${op.pos} has its lower bound ${low.value} above ` +
        `its upper bound ${high.value}: it could never match; write BETWEEN ${high.value} AND ` +
        `${low.value}`);
    }
    // RocketMQ's reading: x >= low AND x <= high; NOT BETWEEN is x < low OR x > high.
    return negated
      ? { kind: 'or', items: [compare('<', operand, low, op), compare('>', operand, high, op)] }
      : { kind: 'and', items: [compare('>=', operand, low, op), compare('<=', operand, high, op)] };
  }

  private inList(operand: Value, negated: boolean, op: Token): Condition {
    this.expectOp('(', "'(' after IN");
    const list = [this.inItem('a string or a number in the IN list')];
    while (this.isOp(',')) {
      this.next();
      list.push(this.inItem("a string or a number after ',' in the IN list"));
      if (list.length > MAX_FILTER_IN_ITEMS) {
        throw invalidFilter(`IN list has more than ${MAX_FILTER_IN_ITEMS} items at position ` +
          `${this.peek().pos}`, MAX_FILTER_IN_ITEMS, list.length);
      }
    }
    this.expectOp(')', "',' or ')' in the IN list");
    const number = list.find((item) => typeof item === 'number');
    if (operand.kind === 'string' && number !== undefined) {
      throw invalidFilter(`IN at position ${op.pos} cannot compare ${describeValue(operand)} ` +
        `with number ${number}`);
    }
    return { kind: 'in', negated, operand, list };
  }

  /** An IN list item: a string, or a number with an optional sign. */
  private inItem(expected: string): string | number {
    const t = this.peek();
    if (t.kind === 'string') {
      this.next();
      return t.text;
    }
    if (t.kind === 'number' || (t.kind === 'op' && (t.text === '-' || t.text === '+'))) {
      const item = this.operand(expected);
      if (item.kind === 'number') return item.value;
    }
    return this.fail(expected, t);
  }

  private stringLiteral(expected: string): string {
    const t = this.peek();
    if (t.kind !== 'string') this.fail(expected);
    this.next();
    return t.text;
  }

  private operand(expected: string): Node {
    const t = this.next();
    switch (t.kind) {
      case 'string': return { kind: 'string', value: t.text, pos: t.pos };
      case 'number': return { kind: 'number', value: t.value, pos: t.pos };
      case 'ident': return { kind: 'property', name: t.text, pos: t.pos };
      case 'keyword':
        if (t.text === 'TRUE' || t.text === 'FALSE') {
          return { kind: 'boolean', value: t.text === 'TRUE', pos: t.pos };
        }
        if (t.text === 'NULL') return { kind: 'null', pos: t.pos };
        return this.fail(expected, t);
      case 'op': return this.group(t, expected);
      case 'end': return this.fail(expected, t);
    }
  }

  /** A parenthesized expression or a signed number, opened by operator token `t`. */
  private group(t: Token, expected: string): Node {
    if (t.text === '-' || t.text === '+') {
      const n = this.next();
      if (n.kind !== 'number') this.fail(`a number after '${t.text}'`, n);
      return { kind: 'number', value: t.text === '-' ? -n.value : n.value, pos: t.pos };
    }
    if (t.text !== '(') this.fail(expected, t);
    this.enter(t);
    const inner = this.or();
    if (!this.isOp(')')) {
      const found = this.peek();
      throw invalidFilter(`expected AND, OR or ')' at position ${found.pos}, found ` +
        `${describeToken(found)}; the '(' at position ${t.pos} is not closed`);
    }
    this.next();
    this.depth--;
    return inner;
  }
}

/** IN and the string tests compare strings: the operand must be a property or a string. */
function stringOperand(operand: Value, op: Token): Value {
  if (operand.kind === 'property' || operand.kind === 'string') return operand;
  throw invalidFilter(`${op.text} at position ${op.pos} tests strings; ` +
    `${describeValue(operand)} at position ${operand.pos} is not a string`);
}

/** A comparison whose operand sorts can ever make sense; `t` is the operator token. */
function compare(op: CompareOp, left: Value, right: Value, t: Token): Condition {
  for (const v of [left, right]) {
    if (v.kind === 'null') {
      throw invalidFilter(`NULL at position ${v.pos} cannot be compared (the result would ` +
        'never be true); use IS NULL or IS NOT NULL');
    }
    if (op !== '=' && op !== '<>' && (v.kind === 'string' || v.kind === 'boolean')) {
      throw invalidFilter(`${describeToken(t)} at position ${t.pos} compares numbers; ` +
        `${describeValue(v)} at position ${v.pos} is not a number`);
    }
  }
  if (isLiteral(left) && isLiteral(right) && left.kind !== right.kind) {
    throw invalidFilter(`${describeToken(t)} at position ${t.pos} cannot compare ` +
      `${describeValue(left)} with ${describeValue(right)}`);
  }
  return { kind: 'compare', op, left, right };
}
