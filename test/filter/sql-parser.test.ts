import { describe, expect, it } from 'vitest';
import {
  MAX_FILTER_DEPTH, MAX_FILTER_EXPRESSION_BYTES, MAX_FILTER_IN_ITEMS,
} from '../../lib/broker/filter/filter.js';
import { MessageSelector } from '../../lib/broker/filter/message-selector.js';
import { parseSql } from '../../lib/broker/filter/sql-parser.js';
import { filterError, matchSql, mulberry32 } from './helpers.js';

const bySql = (e: unknown) => MessageSelector.bySql(e as string);

describe('malformed SQL92 expressions', () => {
  // [expression, a fragment the message must hold]
  const cases: [string, RegExp][] = [
    ['a IN ()', /expected a string or a number in the IN list at position 7, found '\)'/],
    ['a >', /expected a value after '>' at position 4, found end of expression/],
    ['(a = 1', /expected AND, OR or '\)' at position 7.*'\(' at position 1 is not closed/],
    ['a = 1)', /expected AND, OR or the end of the expression at position 6, found '\)'/],
    ["'unterminated", /unterminated string starting at position 1/],
    ["a = 'x", /unterminated string starting at position 5/],
    ['a = = 1', /expected a value after '=' at position 5, found '='/],
    ['a BETWEEN 1', /expected AND .* at position 12, found end of expression/],
    ['a BETWEEN 1 OR 2', /expected AND .* at position 13, found OR/],
    ['', /empty/],
    ['   \n\t', /empty/],
    ['AND', /expected a condition or a value at position 1, found AND/],
    ['a @ 1', /unexpected character "@" at position 3/],
    ['a IS 5', /expected NULL or NOT NULL after IS at position 6, found number 5/],
    ['a IS NOT 5', /expected NULL after IS NOT at position 10/],
    ['a', /identifier a at position 1 is not a condition.* at position 2, found end/],
    ['a b', /identifier a at position 1 is not a condition.* at position 3, found identifier b/],
    ['a NOT 5', /not a condition.* at position 3, found NOT/],
    ['a = 1 AND b', /identifier b at position 11 is not a condition/],
    ['NULL', /NULL at position 1 is not a condition/],
    ["'x'", /string 'x' at position 1 is not a condition/],
    ['NOT', /expected a condition or a value at position 4, found end/],
    ['a = NULL', /NULL at position 5 cannot be compared.*IS NULL/],
    ['NULL <> a', /NULL at position 1 cannot be compared/],
    ["a > 'x'", /'>' at position 3 compares numbers; string 'x' at position 5 is not a number/],
    ['a <= TRUE', /'<=' at position 3 compares numbers; TRUE/],
    ["a BETWEEN 'a' AND 'z'", /compares numbers; string 'a'/],
    ["1 = 'a'", /'=' at position 3 cannot compare number 1 with string 'a'/],
    ['TRUE <> 1', /cannot compare TRUE with number 1/],
    ['5 IN (\'a\')', /IN at position 3 tests strings; number 5 at position 1 is not a string/],
    ["a IN ('x',)",
      /expected a string or a number after ',' in the IN list at position 11, found '\)'/],
    ["a IN ('x' 'y')", /expected ',' or '\)' in the IN list at position 11/],
    ['a IN (TRUE)', /expected a string or a number in the IN list at position 7, found TRUE/],
    ['a IN (b)', /expected a string or a number in the IN list at position 7, found identifier/],
    ['a IN (- b)', /expected a number after '-' at position 9, found identifier b/],
    ["'x' IN (1)", /IN at position 5 cannot compare string 'x' with number 1/],
    ['a BETWEEN 10 AND 0', /BETWEEN at position 3 has its lower bound 10 above its upper bound 0/],
    ['a BETWEEN 1.5 AND -2', /lower bound 1.5 above its upper bound -2.*BETWEEN -2 AND 1.5/],
    ["a IN 'x'", /expected '\(' after IN at position 6/],
    ['a CONTAINS 5', /expected a string after CONTAINS at position 12/],
    ['TRUE STARTSWITH \'x\'', /STARTSWITH at position 6 tests strings; TRUE/],
    ['a = (b = 1)', /expected a value at position 5, found a condition/],
    ['(a = 1) = 2', /expected a value at position 1, found a condition/],
    ['a = - b', /expected a number after '-' at position 7, found identifier b/],
    ['a = --1', /expected a number after '-' at position 6/],
    ['a != 1', /unexpected character "!" at position 3; use '<>'/],
    ['a = "x"', /unexpected character "\\"" at position 5; strings take single quotes/],
    ['a = 5abc', /malformed number at position 5/],
    ['a = 1.2.3', /malformed number at position 5/],
    ['a = 1e', /expected exponent digits at position 7/],
    ['a = 1.5L', /malformed number at position 5/],
    ['a = 012', /leading zeros/],
    ['a = 9007199254740993', /out of range/],
    ['a = 1e999', /does not fit in a double/],
    ['a = 1 = 2', /expected AND, OR or the end of the expression at position 7/],
    ['a = 1 a = 2', /expected AND, OR or the end of the expression at position 7/],
    ['a = 1 OR', /expected a condition or a value at position 9, found end/],
    ['a = 1 AND AND b = 2', /expected a condition or a value at position 11, found AND/],
    ['a = ,', /expected a value after '=' at position 5, found ','/],
    ['a BETWEEN 1 AND', /expected a value after BETWEEN ... AND at position 16/],
    ['a = é', /unexpected character "é" at position 5/],
    ['a = 1 -- comment', /expected AND, OR or the end of the expression at position 7, found '-'/],
  ];
  it.each(cases)('%j throws INVALID_FILTER', (expression, message) => {
    expect(filterError(() => bySql(expression)).message).toMatch(message);
  });

  it('refuses an argument that is not a string', () => {
    for (const arg of [42, null, undefined, {}, ['a = 1'], true]) {
      expect(filterError(() => bySql(arg)).message).toMatch(/must be a string/);
    }
  });

  it('reports only INVALID_FILTER for random token soup', () => {
    const parts = ['a', 'b', '1', '-', "'x'", '(', ')', '=', '<>', '>', 'AND', 'OR', 'NOT',
      'IN', 'IS', 'NULL', 'BETWEEN', ',', 'TRUE', 'CONTAINS', '@', "'", '.', '1e', ''];
    const random = mulberry32(20240611);
    let parsed = 0;
    for (let n = 0; n < 3000; n++) {
      const len = 1 + Math.floor(random() * 8);
      const words = Array.from({ length: len }, () => parts[Math.floor(random() * parts.length)]);
      const e = words.join(random() < 0.5 ? ' ' : '');
      try {
        const f = bySql(e);
        expect(typeof matchSql(e, { a: '1', b: 'x' })).toBe('boolean');
        expect(f.type).toBe('SQL92');
        parsed++;
      } catch (err) {
        expect((err as { code?: string }).code, `${JSON.stringify(e)}: ${String(err)}`)
          .toBe('INVALID_FILTER');
      }
    }
    expect(parsed).toBeGreaterThan(0);
  });
});

describe('SQL92 limits', () => {
  it('limits the expression to 16 KiB of UTF-8', () => {
    expect(MAX_FILTER_EXPRESSION_BYTES).toBe(16 * 1024);
    const fits = `a = '${'x'.repeat(MAX_FILTER_EXPRESSION_BYTES - 6)}'`;
    expect(Buffer.byteLength(fits)).toBe(MAX_FILTER_EXPRESSION_BYTES);
    expect(matchSql(fits, { a: 'x'.repeat(MAX_FILTER_EXPRESSION_BYTES - 6) })).toBe(true);
    const err = filterError(() => bySql(`${fits} `));
    expect(err.limit).toBe(MAX_FILTER_EXPRESSION_BYTES);
    expect(err.actual).toBe(MAX_FILTER_EXPRESSION_BYTES + 1);
    // 8,200 characters, but 16,406 bytes
    expect(filterError(() => bySql(`a = '${'é'.repeat(8200)}'`)).limit)
      .toBe(MAX_FILTER_EXPRESSION_BYTES);
  });

  it('limits nesting of parentheses to MAX_FILTER_DEPTH', () => {
    expect(MAX_FILTER_DEPTH).toBe(64);
    const nest = (n: number) => `${'('.repeat(n)}a = 1${')'.repeat(n)}`;
    expect(matchSql(nest(MAX_FILTER_DEPTH), { a: '1' })).toBe(true);
    expect(matchSql(nest(MAX_FILTER_DEPTH), { a: '2' })).toBe(false);
    const err = filterError(() => bySql(nest(MAX_FILTER_DEPTH + 1)));
    expect(err.message).toMatch(/more than 64 deep at position 65/);
    expect(err.limit).toBe(MAX_FILTER_DEPTH);
  });

  it('throws INVALID_FILTER, not a stack overflow, for 10,000 parentheses', () => {
    expect(filterError(() => bySql(`${'('.repeat(10_000)}a = 1`)).message).toMatch(/deep/);
    expect(filterError(() => bySql(`a = ${'('.repeat(10_000)}1`)).message).toMatch(/deep/);
  });

  it('limits runs of NOT, alone and mixed with parentheses', () => {
    const nots = (n: number) => `${'NOT '.repeat(n)}a = 1`;
    expect(matchSql(nots(MAX_FILTER_DEPTH), { a: '1' })).toBe(true); // an even count
    expect(matchSql(nots(MAX_FILTER_DEPTH - 1), { a: '1' })).toBe(false);
    expect(filterError(() => bySql(nots(MAX_FILTER_DEPTH + 1))).limit).toBe(MAX_FILTER_DEPTH);
    expect(filterError(() => bySql(nots(4000))).message).toMatch(/deep/);
    const mixed = `${'NOT ('.repeat(33)}a = 1${')'.repeat(33)}`; // 66 deep
    expect(filterError(() => bySql(mixed)).message).toMatch(/deep/);
    // Depth is nesting, not a count: siblings at depth 1 add nothing.
    const siblings = Array.from({ length: 200 }, () => '(NOT a = 2)').join(' AND ');
    expect(matchSql(siblings, { a: '1' })).toBe(true);
  });

  it('evaluates long flat AND and OR chains', () => {
    const ands = Array.from({ length: 900 }, (_, i) => `a${i} = ${i}`).join(' AND ');
    const props = Object.fromEntries(Array.from({ length: 900 }, (_, i) => [`a${i}`, `${i}`]));
    expect(matchSql(ands, props)).toBe(true);
    expect(matchSql(ands, { ...props, a899: '0' })).toBe(false);
    const ors = Array.from({ length: 1000 }, (_, i) => `a = ${i}`).join(' OR ');
    expect(matchSql(ors, { a: '999' })).toBe(true);
    expect(matchSql(ors, { a: '1000' })).toBe(false);
  });

  it('limits IN lists to MAX_FILTER_IN_ITEMS strings', () => {
    expect(MAX_FILTER_IN_ITEMS).toBe(1024);
    const list = (n: number) => `a IN (${Array.from({ length: n }, (_, i) => `'${i}'`)})`;
    expect(matchSql(list(MAX_FILTER_IN_ITEMS), { a: '1023' })).toBe(true);
    expect(matchSql(list(MAX_FILTER_IN_ITEMS), { a: '1024' })).toBe(false);
    const err = filterError(() => bySql(list(MAX_FILTER_IN_ITEMS + 1)));
    expect(err.limit).toBe(MAX_FILTER_IN_ITEMS);
    expect(err.message).toMatch(/IN list has more than 1024/);
  });
});

describe('SQL92 syntax tree', () => {
  it('rewrites BETWEEN into two comparisons and keeps NOT on the predicate', () => {
    expect(parseSql('NOT a BETWEEN 1 AND 2')).toEqual({ kind: 'not', item: { kind: 'and',
      items: [
        { kind: 'compare', op: '>=', left: { kind: 'property', name: 'a', pos: 5 },
          right: { kind: 'number', value: 1, pos: 15 } },
        { kind: 'compare', op: '<=', left: { kind: 'property', name: 'a', pos: 5 },
          right: { kind: 'number', value: 2, pos: 21 } },
      ] } });
  });

  it('gathers a run of AND or OR into one node', () => {
    const tree = parseSql('a = 1 OR b = 1 OR c = 1 AND d = 1 AND e = 1');
    expect(tree.kind).toBe('or');
    if (tree.kind !== 'or') return;
    expect(tree.items.map((i) => i.kind)).toEqual(['compare', 'compare', 'and']);
    const last = tree.items[2]!;
    expect(last.kind === 'and' && last.items.length).toBe(3);
  });
});
