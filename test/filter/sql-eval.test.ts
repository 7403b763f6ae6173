import { describe, expect, it } from 'vitest';
import { matchSql, sql } from './helpers.js';

type Case = [expression: string, props: Record<string, string>, expected: boolean];

describe('SQL92 operators', () => {
  const cases: Case[] = [
    ['a > 5', { a: '6' }, true], ['a > 5', { a: '5' }, false],
    ['a >= 5', { a: '5' }, true], ['a >= 5', { a: '4.99' }, false],
    ['a < 5', { a: '4' }, true], ['a < 5', { a: '5' }, false],
    ['a <= 5', { a: '5' }, true], ['a <= 5', { a: '5.01' }, false],
    ['a = 5', { a: '5' }, true], ['a = 5', { a: '6' }, false],
    ['a <> 5', { a: '6' }, true], ['a <> 5', { a: '5' }, false],
    ["a = 'x'", { a: 'x' }, true], ["a = 'x'", { a: 'X' }, false],
    ["a <> 'x'", { a: 'y' }, true], ["a <> 'x'", { a: 'x' }, false],
    ['a BETWEEN 1 AND 5', { a: '1' }, true], ['a BETWEEN 1 AND 5', { a: '5' }, true],
    ['a BETWEEN 1 AND 5', { a: '3' }, true], ['a BETWEEN 1 AND 5', { a: '0' }, false],
    ['a BETWEEN 1 AND 5', { a: '6' }, false],
    ['a NOT BETWEEN 1 AND 5', { a: '0' }, true], ['a NOT BETWEEN 1 AND 5', { a: '6' }, true],
    ['a NOT BETWEEN 1 AND 5', { a: '3' }, false], ['a NOT BETWEEN 1 AND 5', { a: '5' }, false],
    ["a IN ('x', 'y')", { a: 'y' }, true], ["a IN ('x', 'y')", { a: 'z' }, false],
    ["a NOT IN ('x', 'y')", { a: 'z' }, true], ["a NOT IN ('x', 'y')", { a: 'x' }, false],
    ['a IS NULL', {}, true], ['a IS NULL', { a: '' }, false],
    ['a IS NOT NULL', { a: '' }, true], ['a IS NOT NULL', {}, false],
    ["a CONTAINS 'bc'", { a: 'abcd' }, true], ["a CONTAINS 'bc'", { a: 'acbd' }, false],
    ["a NOT CONTAINS 'bc'", { a: 'acbd' }, true], ["a NOT CONTAINS 'bc'", { a: 'abc' }, false],
    ["a STARTSWITH 'ab'", { a: 'abc' }, true], ["a STARTSWITH 'ab'", { a: 'cab' }, false],
    ["a NOT STARTSWITH 'ab'", { a: 'cab' }, true], ["a NOT STARTSWITH 'ab'", { a: 'ab' }, false],
    ["a ENDSWITH 'ab'", { a: 'cab' }, true], ["a ENDSWITH 'ab'", { a: 'abc' }, false],
    ["a NOT ENDSWITH 'ab'", { a: 'abc' }, true], ["a NOT ENDSWITH 'ab'", { a: 'ab' }, false],
    // RocketMQ: a test against the empty string is false, negated or not, NULL or not.
    ["a CONTAINS ''", { a: 'abc' }, false], ["a NOT CONTAINS ''", { a: 'abc' }, false],
    ["a STARTSWITH ''", { a: 'abc' }, false], ["a NOT STARTSWITH ''", { a: '' }, false],
    ["a ENDSWITH ''", { a: '' }, false], ["a NOT ENDSWITH ''", { a: 'abc' }, false],
    ["NOT (a CONTAINS '')", { a: 'abc' }, true], ["NOT (a CONTAINS '')", {}, true],
    // IN with numbers compares as = does; NOT IN is IN negated.
    ['a IN (1, 2)', { a: '2' }, true], ['a IN (1, 2)', { a: '2.0' }, true],
    ['a IN (1, 2)', { a: '3' }, false], ['a IN (1, 2)', { a: 'x' }, false],
    ['a IN (-1.5, 1e3)', { a: '-1.5' }, true], ['a IN (-1.5, 1e3)', { a: '1000' }, true],
    ["a IN ('x', 7)", { a: 'x' }, true], ["a IN ('x', 7)", { a: '07' }, true],
    ["a IN ('x', 7)", { a: 'y' }, false],
    ['a NOT IN (1, 2)', { a: '3' }, true], ['a NOT IN (1, 2)', { a: '1' }, false],
    ['a NOT IN (1, 2)', { a: 'abc' }, true], ['a NOT IN (1, 2)', {}, false],
    ['a IN (1)', {}, false],
    ['a BETWEEN 3 AND 3', { a: '3' }, true], ['a NOT BETWEEN 10 AND 0', { a: '5' }, true],
    ['a = 1 AND b = 2', { a: '1', b: '2' }, true], ['a = 1 AND b = 2', { a: '1', b: '3' }, false],
    ['a = 1 OR b = 2', { a: '0', b: '2' }, true], ['a = 1 OR b = 2', { a: '0', b: '0' }, false],
    ['NOT a = 1', { a: '2' }, true], ['NOT a = 1', { a: '1' }, false],
    ['NOT NOT a = 1', { a: '1' }, true], ['NOT NOT a = 1', { a: '2' }, false],
    ['(a = 1 OR b = 1) AND c = 1', { b: '1', c: '1' }, true],
    ['(a = 1 OR b = 1) AND c = 1', { a: '1', c: '0' }, false],
    ['((a = 1))', { a: '1' }, true], ['(a) = (1)', { a: '1' }, true],
  ];
  it.each(cases)('%s with %j is %s', (expression, props, expected) => {
    expect(matchSql(expression, props)).toBe(expected);
  });
});

describe('SQL92 NULL and three-valued logic', () => {
  const cases: Case[] = [
    ['a = 1', {}, false], ['a <> 1', {}, false], ["a <> 'x'", {}, false],
    ['NOT (a = 1)', {}, false], ['NOT (a <> 1)', {}, false],
    ["a IN ('x')", {}, false], ["a NOT IN ('x')", {}, false],
    ["a CONTAINS 'x'", {}, false], ["a NOT CONTAINS 'x'", {}, false],
    ['a BETWEEN 1 AND 2', {}, false], ['a NOT BETWEEN 1 AND 2', {}, false],
    ['a = b', { a: '1' }, false], ['a <> b', { a: '1' }, false],
    // unknown OR true = true; unknown OR false = unknown
    ['a = 1 OR b = 1', { b: '1' }, true], ['a = 1 OR b = 1', { b: '0' }, false],
    ['NOT (a = 1 OR b = 1)', { b: '1' }, false], ['NOT (a = 1 OR b = 1)', { b: '0' }, false],
    // unknown AND false = false; unknown AND true = unknown
    ['a = 1 AND b = 1', { b: '1' }, false], ['NOT (a = 1 AND b = 1)', { b: '0' }, true],
    ['NOT (a = 1 AND b = 1)', { b: '1' }, false],
    ['a IS NULL OR a = 1', {}, true], ['a IS NOT NULL AND a = 1', {}, false],
  ];
  it.each(cases)('%s with %j is %s', (expression, props, expected) => {
    expect(matchSql(expression, props)).toBe(expected);
  });
});

describe('SQL92 numbers and strings', () => {
  it('reads a property as a number against a number', () => {
    for (const a of ['5', '5.0', '+5', '5e0', '0.5E1', '05', '.5e1']) {
      expect(matchSql('a = 5', { a }), a).toBe(true);
    }
    for (const a of ['', ' 5', '5 ', 'five', '0x5', '5L', 'Infinity', 'NaN', '5,0', '--5']) {
      expect(matchSql('a = 5', { a }), a).toBe(false);
      expect(matchSql('a <> 5', { a }), a).toBe(false); // not a number: false, never true
      expect(matchSql('NOT (a = 5)', { a }), a).toBe(true); // false, not unknown
    }
  });

  it('parses number literals: signs, decimals, exponents, long suffix', () => {
    expect(matchSql('a > -5', { a: '-4' })).toBe(true);
    expect(matchSql('a > -5', { a: '-6' })).toBe(false);
    expect(matchSql('a < - 4.5e0', { a: '-5' })).toBe(true);
    expect(matchSql('a = +3', { a: '3' })).toBe(true);
    expect(matchSql('a = 10L', { a: '10' })).toBe(true);
    expect(matchSql('a = 10l', { a: '11' })).toBe(false);
    expect(matchSql('a = .5', { a: '0.5' })).toBe(true);
    expect(matchSql('a = 5.', { a: '5' })).toBe(true);
    expect(matchSql('a = 2.5E-3', { a: '0.0025' })).toBe(true);
    expect(matchSql('a = 1e3', { a: '1000' })).toBe(true);
    expect(matchSql('a = 0', { a: '-0' })).toBe(true);
    expect(matchSql('a = 9007199254740991', { a: '9007199254740991' })).toBe(true);
  });

  it('compares strings exactly against a string', () => {
    expect(matchSql("a = '5'", { a: '5' })).toBe(true);
    expect(matchSql("a = '5'", { a: '5.0' })).toBe(false);
    expect(matchSql("a IN ('5')", { a: '5.0' })).toBe(false);
    expect(matchSql("a = 'é😀'", { a: 'é😀' })).toBe(true);
  });

  it('compares two properties as numbers when both are, else as strings', () => {
    expect(matchSql('a = b', { a: '1', b: '1.0' })).toBe(true);
    expect(matchSql('a <> b', { a: '1', b: '1.0' })).toBe(false);
    expect(matchSql('a = b', { a: 'x', b: 'x' })).toBe(true);
    expect(matchSql('a = b', { a: 'x', b: 'X' })).toBe(false);
    expect(matchSql('a <> b', { a: '1', b: 'x' })).toBe(true);
    expect(matchSql('a < b', { a: '2', b: '10' })).toBe(true); // numeric, not '2' < '10'
    expect(matchSql('a < b', { a: 'a', b: 'b' })).toBe(false); // no string ordering
    expect(matchSql('a >= b', { a: 'b', b: 'a' })).toBe(false);
    expect(matchSql('a BETWEEN b AND c', { a: '5', b: '1', c: '10' })).toBe(true);
    expect(matchSql('a BETWEEN b AND c', { a: '50', b: '1', c: '10' })).toBe(false);
  });

  it('puts a literal on either side', () => {
    expect(matchSql('5 < a', { a: '6' })).toBe(true);
    expect(matchSql('5 < a', { a: '5' })).toBe(false);
    expect(matchSql('5 >= a', { a: '5' })).toBe(true);
    expect(matchSql("'x' = a", { a: 'x' })).toBe(true);
    expect(matchSql("'x' <> a", { a: 'x' })).toBe(false);
  });

  it('folds conditions over literals alone', () => {
    expect(matchSql('1 = 1.0', {})).toBe(true);
    expect(matchSql('1 > 2', {})).toBe(false);
    expect(matchSql("'a' = 'a'", {})).toBe(true);
    expect(matchSql("'a' <> 'a'", {})).toBe(false);
    expect(matchSql('TRUE', {})).toBe(true);
    expect(matchSql('FALSE', {})).toBe(false);
    expect(matchSql('FALSE OR a = 1', { a: '1' })).toBe(true);
    expect(matchSql('NULL IS NULL', {})).toBe(true);
    expect(matchSql('5 IS NULL', {})).toBe(false);
    expect(matchSql("'abc' CONTAINS 'b'", {})).toBe(true);
  });
});

describe('SQL92 booleans', () => {
  it('compares with the strings true and false in any case', () => {
    for (const a of ['true', 'TRUE', 'True']) expect(matchSql('a = TRUE', { a }), a).toBe(true);
    for (const a of ['false', '1', 'yes', ' true', '']) {
      expect(matchSql('a = TRUE', { a }), a).toBe(false);
    }
    expect(matchSql('a = FALSE', { a: 'False' })).toBe(true);
    expect(matchSql('a = FALSE', { a: 'true' })).toBe(false);
    expect(matchSql('a <> TRUE', { a: 'false' })).toBe(true);
    expect(matchSql('a <> TRUE', { a: 'yes' })).toBe(true);
    expect(matchSql('a <> TRUE', { a: 'tRuE' })).toBe(false);
    expect(matchSql('a = TRUE', {})).toBe(false);
    expect(matchSql('TRUE = a', { a: 'true' })).toBe(true);
    expect(matchSql('TRUE = TRUE AND FALSE <> TRUE', {})).toBe(true);
  });
});

describe('SQL92 precedence and keywords', () => {
  it('binds NOT tighter than AND, and AND tighter than OR', () => {
    expect(matchSql('a = 1 OR b = 1 AND c = 1', { a: '1', b: '0', c: '0' })).toBe(true);
    expect(matchSql('(a = 1 OR b = 1) AND c = 1', { a: '1', b: '0', c: '0' })).toBe(false);
    expect(matchSql('b = 1 AND c = 1 OR a = 1', { a: '1', b: '0', c: '0' })).toBe(true);
    expect(matchSql('NOT a = 1 AND b = 1', { a: '2', b: '1' })).toBe(true);
    expect(matchSql('NOT a = 1 AND b = 1', { a: '2', b: '2' })).toBe(false);
    expect(matchSql('NOT (a = 1 AND b = 1)', { a: '2', b: '2' })).toBe(true);
    expect(matchSql('NOT a = 1 OR b = 1', { a: '1', b: '1' })).toBe(true);
    expect(matchSql('NOT a = 1 OR b = 1', { a: '1', b: '2' })).toBe(false);
  });

  it('reads keywords in any case; identifiers keep theirs', () => {
    const e = "a between 1 AnD 5 and b iS nOt NuLl oR c In ('x') Or d not contains 'q'";
    expect(matchSql(e, { a: '3', b: '' })).toBe(true);
    expect(matchSql(e, { c: 'x' })).toBe(true);
    expect(matchSql(e, { d: 'q' })).toBe(false);
    expect(matchSql("x StartsWith 'a' AND y ENDSWITH 'b' AND true", { x: 'ab', y: 'ab' }))
      .toBe(true);
    expect(matchSql('A = 1', { a: '1' })).toBe(false);
    expect(matchSql('A = 1', { A: '1' })).toBe(true);
  });

  it('unescapes doubled quotes in strings', () => {
    expect(matchSql("a = 'it''s'", { a: "it's" })).toBe(true);
    expect(matchSql("a = ''''", { a: "'" })).toBe(true);
    expect(matchSql("a = ''", { a: '' })).toBe(true);
    expect(matchSql("a = ''", { a: "'" })).toBe(false);
    expect(matchSql("a IN ('a''b', 'c')", { a: "a'b" })).toBe(true);
    expect(matchSql("a = 'x\ny'", { a: 'x\ny' })).toBe(true);
  });

  it('takes identifiers with dots, $ and _', () => {
    expect(matchSql('order.region = 1 AND $x = 2 AND _y = 3', { 'order.region': '1', $x: '2',
      _y: '3' })).toBe(true);
    expect(matchSql('a1.b_c$ IS NOT NULL', { 'a1.b_c$': '' })).toBe(true);
  });
});

describe('SQL92 properties', () => {
  it('reads TAGS from the message tags, then from a TAGS property', () => {
    expect(matchSql("TAGS = 'TagA'", {}, 'TagA')).toBe(true);
    expect(matchSql("TAGS = 'TagA'", {}, 'TagB')).toBe(false);
    expect(matchSql("TAGS IN ('TagA', 'TagB')", { TAGS: 'TagA' })).toBe(true);
    expect(matchSql('TAGS IS NULL', {})).toBe(true);
    expect(matchSql('TAGS IS NULL', {}, '')).toBe(true);
    expect(matchSql('TAGS IS NULL', {}, 'x')).toBe(false);
    expect(matchSql("tags = 'x'", {}, 'x')).toBe(false); // property names are case-sensitive
  });

  it('reads own properties only', () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(matchSql(`${name} IS NULL`, {}), name).toBe(true);
    }
    // JSON.parse makes '__proto__' an own property, as a decoded property map may have.
    const own = JSON.parse('{"constructor": "x", "__proto__": "y"}') as Record<string, string>;
    expect(matchSql("constructor = 'x' AND __proto__ = 'y'", own)).toBe(true);
  });

  it('never throws on odd property maps or values', () => {
    const throwing = Object.defineProperty({}, 'a', {
      enumerable: true, get() { throw new Error('boom'); },
    }) as Record<string, string>;
    const proxy = new Proxy({}, { has() { throw new Error('boom'); },
      getOwnPropertyDescriptor() { throw new Error('boom'); } }) as Record<string, string>;
    const odd = [throwing, proxy, { a: 5 }, { a: null }, { a: {} }, null, undefined, 'str']
      .map((p) => p as unknown as Record<string, string>);
    const f = sql("a = 1 OR a IS NULL OR a IN ('x') OR a CONTAINS 'y' OR a = b OR a = TRUE");
    for (const props of odd) expect(f.matches(undefined, props)).toBe(true); // a reads NULL
    const g = sql('a = 1');
    for (const props of odd) expect(g.matches(5 as unknown as string, props)).toBe(false);
  });

  it('never consults tag codes', () => {
    const f = sql('a = 1');
    for (const code of [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 123456789]) {
      expect(f.matchesTagsCode(code)).toBe(true);
    }
    expect(f.type).toBe('SQL92');
    expect(f.expression).toBe('a = 1');
  });
});
