/**
 * The JetStream consumers' selector adapter gives the embedded store's answer for every tag and
 * SQL92 expression: checked against the embedded filter on hand-picked corners and on random
 * expressions over random messages.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MessageSelector } from '../../lib/index.js';
import { selectorFilter } from '../../lib/broker/filter/message-selector.js';
import { matchesSelector } from '../../lib/jetstream/selector-match.js';

type Props = Record<string, string>;

const MESSAGES: [string | undefined, Props][] = [
  [undefined, {}],
  ['TagA', { a: '5', b: 'x', region: 'eu', flag: 'TRUE' }],
  ['TagB', { a: '-1.5e1', b: "it's", region: 'us', amount: '150' }],
  ['TagC', { a: 'abc', b: '5', c: '5.0', flag: 'false' }],
  [undefined, { TAGS: 'TagA', a: '0', amount: '100' }],
];

function agree(selector: MessageSelector): void {
  const embedded = selectorFilter(selector);
  for (const [tags, props] of MESSAGES) {
    expect(matchesSelector(selector, tags, props), `${selector.expression} on ` +
      `${String(tags)} ${JSON.stringify(props)}`).toBe(embedded.matches(tags, props));
  }
}

describe('matchesSelector', () => {
  it('matches tag expressions as the embedded store does', () => {
    for (const expression of ['*', '', 'TagA', 'TagA || TagB', ' TagC ||TagA ', 'Nope']) {
      agree(MessageSelector.byTag(expression));
    }
    agree(MessageSelector.byTag(null));
    expect(matchesSelector(MessageSelector.byTag('TagA || TagB'), 'TagB', {})).toBe(true);
    expect(matchesSelector(MessageSelector.byTag('TagA'), undefined, {})).toBe(false);
  });

  it('evaluates hand-picked SQL92 corners as the embedded store does', () => {
    const corners = [
      "region = 'eu' AND amount > 100", 'a > 3', 'a <> 5', 'a NOT BETWEEN 1 AND 5',
      'a BETWEEN -20 AND 0', 'a IS NULL', 'a IS NOT NULL', "b IN ('x', 'it''s')",
      "b NOT IN ('x')", "region CONTAINS 'u'", "region NOT STARTSWITH 'e'", "b ENDSWITH 's'",
      'flag = TRUE', 'flag <> FALSE', 'NOT (a > 3)', 'NOT a > 3 OR b = 5', '(a) = 5',
      '((a = 5)) OR (amount >= 150)', 'b = c', 'a < b', "TAGS = 'TagA'", 'TRUE', 'FALSE OR a = 0',
      'x = 1 OR a = 5', 'NOT x = 1', 'NOT (x = 1 OR a = 5)', 'a = 5L', 'a > .5', 'a >= +5',
      "1 = 1 AND 'p' = 'p'", 'amount = 100',
    ];
    for (const expression of corners) agree(MessageSelector.bySql(expression));
  });

  it('agrees with the embedded store on random expressions', () => {
    const prop = fc.constantFrom('a', 'b', 'c', 'amount', 'region', 'flag', 'TAGS', 'missing');
    const value = fc.oneof(fc.integer({ min: -20, max: 200 }).map(String),
      fc.constantFrom("'eu'", "'x'", "'5'", 'TRUE', 'FALSE', '1.5', '-0.5'));
    const leaf = fc.oneof(
      fc.tuple(prop, fc.constantFrom('=', '<>', '<', '<=', '>', '>='), value)
        .map(([p, op, v]) => `${p} ${op} ${v}`),
      fc.tuple(prop, fc.boolean()).map(([p, n]) => `${p} IS ${n ? 'NOT ' : ''}NULL`),
      fc.tuple(prop, fc.boolean(), fc.integer({ min: -5, max: 10 }), fc.integer({ min: 0, max: 9 }))
        .map(([p, n, lo, w]) => `${p} ${n ? 'NOT ' : ''}BETWEEN ${lo} AND ${lo + w}`),
      fc.tuple(prop, fc.boolean()).map(([p, n]) => `${p} ${n ? 'NOT ' : ''}IN ('eu', 'x', '5')`),
      fc.tuple(prop, fc.constantFrom('CONTAINS', 'STARTSWITH', 'ENDSWITH'), fc.boolean())
        .map(([p, t, n]) => `${p} ${n ? 'NOT ' : ''}${t} 'e'`),
    );
    const expr = fc.letrec<{ e: string }>((tie) => ({
      e: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf,
        fc.tuple(tie('e'), fc.constantFrom('AND', 'OR'), tie('e')).map(([l, op, r]) =>
          `(${l}) ${op} (${r})`),
        tie('e').map((e) => `NOT (${e})`)),
    })).e;
    fc.assert(fc.property(expr, (expression) => {
      let selector: MessageSelector;
      try {
        selector = MessageSelector.bySql(expression);
      } catch {
        return; // refused by the embedded parser: nothing to compare
      }
      agree(selector);
    }), { numRuns: 400, seed: 7 });
  });
});
