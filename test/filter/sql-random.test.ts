/**
 * Seeded random property maps against a few SQL92 filters, each held to a hand-written oracle.
 * The oracle knows which pool strings are numbers from a table, not from the filter's parser.
 */
import { describe, expect, it } from 'vitest';
import { mulberry32, sql } from './helpers.js';

type Tri = boolean | null;
type Props = Record<string, string>;

/** The pool's numeric strings and their values; every other pool string is not a number. */
const NUMBERS: Readonly<Record<string, number>> = {
  '0': 0, '2': 2, '3': 3, '3.0': 3, '5': 5, '6': 6, '7': 7, '-2': -2, '1e1': 10, '-1.5': -1.5,
  '.5': 0.5, '+7': 7,
};
const POOL = [...Object.keys(NUMBERS), 'abc', '', 'x', 'xy', 'p', 'q', 'pq', 'TRUE', 'true',
  'False', ' 5', '5 ', '1,5', 'NaN'];

const and = (...xs: Tri[]): Tri => xs.includes(false) ? false : xs.includes(null) ? null : true;
const or = (...xs: Tri[]): Tri => xs.includes(true) ? true : xs.includes(null) ? null : false;
const not = (x: Tri): Tri => x === null ? null : !x;

/** A property against a number: unknown when missing, false when not a number. */
function num(s: string | undefined, test: (n: number) => boolean): Tri {
  if (s === undefined) return null;
  const n = NUMBERS[s];
  return n !== undefined && test(n);
}

function str(s: string | undefined, test: (s: string) => boolean): Tri {
  return s === undefined ? null : test(s);
}

/** Two properties: numbers when both are, else strings for equality, else false. */
function pair(a: string | undefined, b: string | undefined, op: '=' | '>='): Tri {
  if (a === undefined || b === undefined) return null;
  const x = NUMBERS[a];
  const y = NUMBERS[b];
  if (x !== undefined && y !== undefined) return op === '=' ? x === y : x >= y;
  return op === '=' ? a === b : false;
}

const cases: [string, (p: Props) => Tri][] = [
  ["a > 5 AND b = 'x'", (p) => and(num(p.a, (n) => n > 5), str(p.b, (s) => s === 'x'))],
  ["NOT (a BETWEEN 2 AND 7) OR c IN ('p', 'q')", (p) => or(
    not(and(num(p.a, (n) => n >= 2), num(p.a, (n) => n <= 7))),
    str(p.c, (s) => s === 'p' || s === 'q'))],
  ['a = b OR c IS NULL', (p) => or(pair(p.a, p.b, '='), p.c === undefined)],
  ["NOT (a <> 3 AND c NOT CONTAINS 'q')", (p) => not(and(num(p.a, (n) => n !== 3),
    str(p.c, (s) => !s.includes('q'))))],
  ["b STARTSWITH 'x' AND NOT c ENDSWITH 'q' OR a <= -1.5", (p) => or(
    and(str(p.b, (s) => s.startsWith('x')), not(str(p.c, (s) => s.endsWith('q')))),
    num(p.a, (n) => n <= -1.5))],
  ["a = TRUE OR b <> 'x' AND c >= a", (p) => or(str(p.a, (s) => s.toLowerCase() === 'true'),
    and(str(p.b, (s) => s !== 'x'), pair(p.c, p.a, '>=')))],
  ['a NOT BETWEEN -2 AND .5 AND NOT b < 3', (p) => and(
    or(num(p.a, (n) => n < -2), num(p.a, (n) => n > 0.5)), not(num(p.b, (n) => n < 3)))],
];

function randomProps(random: () => number): Props {
  const props: Props = {};
  for (const name of ['a', 'b', 'c']) {
    if (random() < 0.7) props[name] = POOL[Math.floor(random() * POOL.length)]!;
  }
  if (random() < 0.2) props.other = 'x';
  return props;
}

describe('SQL92 filters against an oracle', () => {
  it.each(cases)('%s', (expression, oracle) => {
    const filter = sql(expression);
    for (const seed of [1, 2, 3, 0xbeef]) {
      const random = mulberry32(seed);
      const outcomes = new Set<Tri>();
      for (let n = 0; n < 1500; n++) {
        const props = randomProps(random);
        const want = oracle(props);
        outcomes.add(want);
        expect(filter.matches(undefined, props), `seed ${seed} run ${n}: ${JSON.stringify(props)}`)
          .toBe(want === true);
      }
      // The run exercised true, false and unknown, so it proves something about each.
      expect([...outcomes].sort()).toEqual([false, null, true].sort());
    }
  });
});
