/**
 * Fuzzing the message filters (lib/broker/filter/): generated SQL92 expressions compile and
 * match exactly what a reference evaluator says; random, mutated and deeply nested expressions,
 * and any value at all as a selector, compile or fail with INVALID_FILTER, never another error
 * or a stack overflow; a compiled filter never throws whatever the message holds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compileFilter, MAX_FILTER_DEPTH, MAX_FILTER_EXPRESSION_BYTES, MAX_FILTER_IN_ITEMS,
  type MessageFilter,
} from '../../lib/broker/filter/filter.js';
import { MessageSelector } from '../../lib/broker/filter/message-selector.js';
import { coded, fuzz } from './fuzz-support.js';
import { condArb, evaluate, print, propsArb, tagsArb } from './sql-grammar.js';

/** Compile `expression` as SQL92 both ways a consumer can; INVALID_FILTER or a filter. */
function compileSql(expression: string): MessageFilter | null {
  const outcome = coded(['INVALID_FILTER'], () => MessageSelector.bySql(expression));
  const again = coded(['INVALID_FILTER'],
    () => compileFilter({ type: 'SQL92', expression } as unknown as MessageSelector));
  expect(again.ok).toBe(outcome.ok);
  return outcome.ok ? compileFilter(outcome.value) : null;
}

/** A compiled filter answers with a boolean for any message. */
function expectTotal(filter: MessageFilter, messages: [string | undefined,
  Record<string, string>][]): void {
  for (const [tags, props] of messages) {
    expect(typeof filter.matches(tags, props)).toBe('boolean');
    expect(typeof filter.matchesTagsCode(props.a?.length ?? 0)).toBe('boolean');
  }
}

const messagesArb = fc.array(fc.tuple(tagsArb, propsArb), { minLength: 1, maxLength: 6 });
const SQL_WORDS = ['AND', 'OR', 'NOT', 'BETWEEN', 'IN', 'IS', 'NULL', 'TRUE', 'FALSE',
  'CONTAINS', 'STARTSWITH', 'ENDSWITH', '(', ')', ',', '=', '<>', '<', '<=', '>', '>=', '+', '-',
  'a', 'b', 'TAGS', "'x'", "''", "'it''s'", '5', '-1.5', '.5', '1e3', '42L', '007', '1e', '!=',
  '"s"', "'open", '9007199254740993', '1e400'];

/** Random text: any characters, or a soup of the language's own tokens. */
const junkArb = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.array(fc.constantFrom(...SQL_WORDS), { maxLength: 12 }).map((w) => w.join(' ')),
  fc.array(fc.constantFrom(...SQL_WORDS), { maxLength: 12 }).map((w) => w.join('')),
);

type Edit = { at: number; cut: number; insert: string };
const editArb: fc.Arbitrary<Edit> = fc.record({ at: fc.nat(), cut: fc.nat({ max: 4 }),
  insert: fc.oneof(fc.constantFrom('', ...SQL_WORDS), fc.string({ maxLength: 2 })) });

function applyEdits(text: string, edits: readonly Edit[]): string {
  let out = text;
  for (const { at, cut, insert } of edits) {
    const p = at % (out.length + 1);
    out = out.slice(0, p) + insert + out.slice(p + cut);
  }
  return out;
}

describe('SQL92 filter fuzzing', () => {
  it('generated expressions compile and match what the reference evaluator says', () => {
    fc.assert(fc.property(condArb, messagesArb, (cond, messages) => {
      const text = print(cond);
      const filter = compileSql(text);
      expect(filter, text).not.toBeNull();
      for (const [tags, props] of messages) {
        expect(filter!.matches(tags, props), `${text} on ${JSON.stringify([tags, props])}`)
          .toBe(evaluate(cond, tags, props) === true);
      }
    }), fuzz(0x5eed_0401, 400));
  });

  it('random and mutated expressions compile or fail with INVALID_FILTER', () => {
    const textArb = fc.oneof(junkArb, fc.tuple(condArb, fc.array(editArb, { minLength: 1,
      maxLength: 3 })).map(([cond, edits]) => applyEdits(print(cond), edits)));
    fc.assert(fc.property(textArb, messagesArb, (text, messages) => {
      const filter = compileSql(text);
      if (filter !== null) expectTotal(filter, messages);
    }), fuzz(0x5eed_0402, 400));
  });

  it('nesting past the limit is INVALID_FILTER naming a limit, never a stack overflow', () => {
    const shapes = ['(', 'NOT ', 'NOT (', 'not(', '((NOT '] as const;
    fc.assert(fc.property(fc.constantFrom(...shapes), fc.integer({ min: 1, max: 12_000 }),
      fc.boolean(), (shape, n, closed) => {
        const opens = (shape.match(/\(/g) ?? []).length;
        const levels = (shape.match(/\(|NOT/gi) ?? []).length * n;
        const text = shape.repeat(n) + 'a = 1' + (closed ? ')'.repeat(opens * n) : '');
        const outcome = coded(['INVALID_FILTER'], () => MessageSelector.bySql(text));
        const bytes = Buffer.byteLength(text);
        if (bytes > MAX_FILTER_EXPRESSION_BYTES) {
          expect(outcome.ok ? null : outcome.error.limit).toBe(MAX_FILTER_EXPRESSION_BYTES);
        } else if (levels > MAX_FILTER_DEPTH) {
          expect(outcome.ok ? null : outcome.error.limit).toBe(MAX_FILTER_DEPTH);
        } else {
          expect(outcome.ok).toBe(closed || opens === 0);
        }
      }), { ...fuzz(0x5eed_0403, 150),
      examples: [['(', 10_000, true], ['NOT ', 10_000, true], ['(', 8000, true],
        ['NOT ', 4000, true], ['(', 64, true], ['(', 65, true], ['NOT (', 32, true]] });
  });

  it('long flat chains and IN lists stay within their limits', () => {
    fc.assert(fc.property(fc.constantFrom(' AND ', ' OR '), fc.integer({ min: 1, max: 2000 }),
      fc.integer({ min: 1, max: MAX_FILTER_IN_ITEMS + 40 }), (join, terms, items) => {
        const chain = Array.from({ length: terms }, (_, i) => `a${i % 9} = ${i}`).join(join);
        const outcome = coded(['INVALID_FILTER'], () => MessageSelector.bySql(chain));
        expect(outcome.ok).toBe(Buffer.byteLength(chain) <= MAX_FILTER_EXPRESSION_BYTES);
        const list = `a IN (${Array.from({ length: items }, () => "'x'").join(',')})`;
        const inList = coded(['INVALID_FILTER'], () => MessageSelector.bySql(list));
        expect(inList.ok).toBe(items <= MAX_FILTER_IN_ITEMS);
      }), fuzz(0x5eed_0404, 60));
  });

  it('tag expressions compile to exactly the tags they list, or fail with INVALID_FILTER', () => {
    const tagArb = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_*-]{1,6}$/), fc.string({ maxLength: 4 }));
    const exprArb = fc.oneof(fc.string({ maxLength: 30 }),
      fc.array(tagArb, { minLength: 1, maxLength: 5 }).map((tags) => tags.join(' || ')));
    fc.assert(fc.property(exprArb, fc.array(tagsArb, { maxLength: 4 }), (text, probes) => {
      const outcome = coded(['INVALID_FILTER'], () => compileFilter(MessageSelector.byTag(text)));
      if (!outcome.ok) return;
      const listed = text.trim() === '' || text.trim() === '*' ? null
        : new Set(text.split('||').map((t) => t.trim()));
      for (const tag of probes) {
        expect(outcome.value.matches(tag, {}))
          .toBe(listed === null || (tag !== undefined && listed.has(tag)));
      }
    }), fuzz(0x5eed_0405, 300));
  });

  it('any value as a selector is a filter or INVALID_FILTER', () => {
    fc.assert(fc.property(fc.anything({ withMap: true, withSet: true, withBigInt: true,
      withNullPrototype: true, withObjectString: true, withTypedArray: true }),
    fc.constantFrom('TAG', 'SQL92', undefined), (value, type) => {
      const selector = (type === undefined ? value
        : { type, expression: value }) as unknown as MessageSelector;
      const outcome = coded(['INVALID_FILTER'], () => compileFilter(selector));
      if (outcome.ok) expectTotal(outcome.value, [[undefined, {}], ['x', { a: '1' }]]);
    }), fuzz(0x5eed_0406, 300));
  });
});
