/**
 * The SQL92 filter lexer: expression text to tokens, following RocketMQ's SelectorParser.jj.
 *
 * - Keywords (case-insensitive): NOT AND OR BETWEEN IN TRUE FALSE NULL IS CONTAINS STARTSWITH
 *   ENDSWITH. Identifiers: [A-Za-z_$][A-Za-z0-9_$.]*, case-sensitive, not a keyword.
 * - Numbers: `0`, `42`, `42L`, `3.14`, `5.`, `.5`, `1e3`, `2.5E-3`. No leading zeros on
 *   integers (RocketMQ has no octal), no hex. Integers beyond 2^53 - 1 and literals that overflow
 *   a double are refused: values compare as doubles, and a silently rounded literal would match
 *   the wrong messages. A sign is a separate token, folded by the parser.
 * - Strings: single quotes, `''` is an escaped quote; any other character stands for itself.
 * - Operators: = <> < <= > >= ( ) , + -. Comments are not supported.
 *
 * Positions are 1-based character offsets into the expression, for error messages.
 */
import { invalidFilter } from './filter-limits.js';

export const KEYWORDS = new Set([
  'NOT', 'AND', 'OR', 'BETWEEN', 'IN', 'TRUE', 'FALSE', 'NULL', 'IS',
  'CONTAINS', 'STARTSWITH', 'ENDSWITH',
]);

export type TokenKind = 'ident' | 'keyword' | 'string' | 'number' | 'op' | 'end';

export interface Token {
  readonly kind: TokenKind;
  /** Keywords upper-cased; identifiers as written; strings unescaped; operators verbatim. */
  readonly text: string;
  /** The value of a number token. */
  readonly value: number;
  /** 1-based offset of the token's first character. */
  readonly pos: number;
}

const OPERATORS = ['<>', '<=', '>=', '=', '<', '>', '(', ')', ',', '+', '-'];

function isIdentStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36; // A-Z a-z _ $
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isIdentPart(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || c === 46; // .
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12;
}

/** Describe a token for an error message: `end of expression`, `')'`, `number 5`. */
export function describeToken(t: Token): string {
  switch (t.kind) {
    case 'end': return 'end of expression';
    case 'string': return `string '${t.text.replaceAll("'", "''")}'`;
    case 'number': return `number ${t.text}`;
    case 'ident': return `identifier ${t.text}`;
    case 'keyword': return t.text;
    case 'op': return `'${t.text}'`;
  }
}

/** Split `src` into tokens, ending with one `end` token; throws INVALID_FILTER. */
export function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src.charCodeAt(i);
    if (isSpace(c)) {
      i++;
    } else if (isIdentStart(c)) {
      const start = i;
      while (i < src.length && isIdentPart(src.charCodeAt(i))) i++;
      const word = src.slice(start, i);
      const upper = word.toUpperCase();
      tokens.push(KEYWORDS.has(upper)
        ? { kind: 'keyword', text: upper, value: 0, pos: start + 1 }
        : { kind: 'ident', text: word, value: 0, pos: start + 1 });
    } else if (isDigit(c) || (c === 46 && isDigit(src.charCodeAt(i + 1)))) {
      const token = lexNumber(src, i);
      tokens.push(token);
      i = token.pos - 1 + token.text.length;
    } else if (c === 39) { // '
      const [text, end] = lexString(src, i);
      tokens.push({ kind: 'string', text, value: 0, pos: i + 1 });
      i = end;
    } else {
      const op = OPERATORS.find((o) => src.startsWith(o, i));
      if (op === undefined) throw unexpectedChar(src, i);
      tokens.push({ kind: 'op', text: op, value: 0, pos: i + 1 });
      i += op.length;
    }
  }
  tokens.push({ kind: 'end', text: '', value: 0, pos: src.length + 1 });
  return tokens;
}

function unexpectedChar(src: string, i: number): Error {
  const ch = String.fromCodePoint(src.codePointAt(i) ?? 0);
  const hint = src.startsWith('!=', i) ? "; use '<>' for not equal"
    : src.startsWith('"', i) ? '; strings take single quotes' : '';
  return invalidFilter(`unexpected character ${JSON.stringify(ch)} at position ${i + 1}${hint}`);
}

function digitsEnd(src: string, i: number): number {
  while (i < src.length && isDigit(src.charCodeAt(i))) i++;
  return i;
}

/** A number starting at `start`; its text is the exact source slice it covers. */
function lexNumber(src: string, start: number): Token {
  const pos = start + 1;
  const intEnd = digitsEnd(src, start);
  let i = intEnd;
  let integer = true;
  if (src.charCodeAt(i) === 46) { // .
    integer = false;
    i = digitsEnd(src, i + 1);
  }
  if (src.charCodeAt(i) === 69 || src.charCodeAt(i) === 101) { // E e
    integer = false;
    let j = i + 1;
    if (src[j] === '+' || src[j] === '-') j++;
    const expEnd = digitsEnd(src, j);
    if (expEnd === j) {
      throw invalidFilter(`malformed number at position ${pos}: expected exponent digits ` +
        `at position ${j + 1}`);
    }
    i = expEnd;
  }
  const digitsStop = i;
  if (integer && (src[i] === 'L' || src[i] === 'l')) i++;
  if (i < src.length && isIdentPart(src.charCodeAt(i))) {
    throw invalidFilter(`malformed number at position ${pos}: unexpected ` +
      `${JSON.stringify(src[i])} at position ${i + 1}`);
  }
  const text = src.slice(start, i);
  if (integer && intEnd - start > 1 && src.charCodeAt(start) === 48) {
    throw invalidFilter(`malformed number ${text} at position ${pos}: integers take no ` +
      'leading zeros');
  }
  const value = Number(src.slice(start, digitsStop));
  if (integer && !Number.isSafeInteger(value)) {
    throw invalidFilter(`integer ${text} at position ${pos} is out of range: numbers compare ` +
      'as doubles, exact for integers up to 2^53 - 1');
  }
  if (!Number.isFinite(value)) {
    throw invalidFilter(`number ${text} at position ${pos} does not fit in a double`);
  }
  return { kind: 'number', text, value, pos };
}

/** The unescaped string whose opening quote is at `start`, and the index after its close. */
function lexString(src: string, start: number): [string, number] {
  let out = '';
  let from = start + 1;
  for (;;) {
    const q = src.indexOf("'", from);
    if (q < 0) {
      throw invalidFilter(`unterminated string starting at position ${start + 1}: ` +
        "expected a closing ' before the end of the expression");
    }
    out += src.slice(from, q);
    if (src.charCodeAt(q + 1) !== 39) return [out, q + 1];
    out += "'";
    from = q + 2;
  }
}
