import { describe, expect, it } from 'vitest';
import { javaHashCode } from '../../lib/store/checksum.js';
import { tagsCodeOf } from '../../lib/store/record-codec.js';
import {
  compileFilter, MATCH_ALL, MAX_FILTER_TAGS,
} from '../../lib/broker/filter/filter.js';
import { MessageSelector } from '../../lib/broker/filter/message-selector.js';
import { filterError } from './helpers.js';

const byTag = (e: unknown) => MessageSelector.byTag(e as string);

describe('tag filter', () => {
  it('matches listed tags by code and by string', () => {
    const f = compileFilter(byTag('TagA || TagB'));
    expect(f.type).toBe('TAG');
    expect(f.expression).toBe('TagA || TagB');
    expect(f.matchesTagsCode(javaHashCode('TagA'))).toBe(true);
    expect(f.matchesTagsCode(javaHashCode('TagB'))).toBe(true);
    expect(f.matchesTagsCode(javaHashCode('TagC'))).toBe(false);
    expect(f.matches('TagA', {})).toBe(true);
    expect(f.matches('TagB', {})).toBe(true);
    expect(f.matches('TagC', {})).toBe(false);
    expect(f.matches('taga', {})).toBe(false);
    expect(f.matches('TagA || TagB', {})).toBe(false);
  });

  it('uses the store\'s tag codes, signed, and accepts them read back unsigned', () => {
    const tags = ['TagA', 'order-created', 'ταγ😀', 'zzzzzzzz', 'Negative?'];
    const negative = tags.find((t) => tagsCodeOf(t) < 0);
    expect(negative).toBeDefined();
    const f = compileFilter(tags.join(' || '));
    for (const t of tags) {
      expect(f.matchesTagsCode(tagsCodeOf(t)), t).toBe(true);
      expect(f.matchesTagsCode(tagsCodeOf(t) >>> 0), t).toBe(true);
      expect(f.matches(t, {}), t).toBe(true);
    }
  });

  it('rules out untagged messages for a specific tag', () => {
    const f = compileFilter('TagA');
    expect(f.matchesTagsCode(tagsCodeOf(undefined))).toBe(false);
    expect(f.matchesTagsCode(0)).toBe(false);
    expect(f.matches(undefined, {})).toBe(false);
    expect(f.matches('', {})).toBe(false);
  });

  it('never delivers a tag whose hash collides with a listed one', () => {
    expect(javaHashCode('Aa')).toBe(javaHashCode('BB'));
    const f = compileFilter('Aa');
    expect(f.matchesTagsCode(tagsCodeOf('BB'))).toBe(true); // the pre-check cannot tell
    expect(f.matches('BB', {})).toBe(false); // the exact check can
    expect(f.matches('Aa', {})).toBe(true);
    const both = compileFilter('AaAa || C');
    expect(javaHashCode('BBBB')).toBe(javaHashCode('AaAa'));
    expect(both.matches('BBBB', {})).toBe(false);
    expect(both.matches('AaBB', {})).toBe(false);
    expect(both.matches('C', {})).toBe(true);
  });

  it("matches everything for '*', blank, null and undefined", () => {
    for (const e of ['*', '', '  ', ' * ', null, undefined]) {
      const f = compileFilter(byTag(e));
      expect(f, String(e)).toBe(MATCH_ALL);
      expect(f.matches(undefined, {})).toBe(true);
      expect(f.matches('anything', {})).toBe(true);
      expect(f.matchesTagsCode(0)).toBe(true);
      expect(f.matchesTagsCode(javaHashCode('anything'))).toBe(true);
    }
    expect(byTag(null).expression).toBe('*');
    expect(byTag('').expression).toBe('');
    expect(compileFilter('*')).toBe(MATCH_ALL);
    expect(MATCH_ALL.type).toBe('TAG');
    expect(MATCH_ALL.expression).toBe('*');
    expect(Object.isFrozen(MATCH_ALL)).toBe(true);
  });

  it('trims whitespace around tags and folds duplicates', () => {
    const f = compileFilter(' TagA||TagB \t||  TagA ');
    expect(f.matches('TagA', {})).toBe(true);
    expect(f.matches('TagB', {})).toBe(true);
    expect(f.matches(' TagA', {})).toBe(false);
  });

  const malformed: [string, RegExp][] = [
    ['A ||', /expected a tag after '\|\|' at position 3/],
    ['||', /expected a tag before '\|\|' at position 1/],
    ['|| A', /expected a tag before '\|\|' at position 1/],
    ['A |||| B', /expected a tag before '\|\|' at position 5/],
    ['A ||  || B', /expected a tag before '\|\|' at position 7/],
    ['Tag A', /tag "Tag A" at position 1 holds whitespace at position 4/],
    ['X || Tag\tA', /tag "Tag\\tA" at position 6 holds whitespace/],
    ['A | B', /holds a single '\|'/],
    ['A|B', /holds a single '\|' at position 2/],
    ['A ||| B', /holds a single '\|'/],
    ['A || *', /'\*' at position 6 selects every tag/],
  ];
  it.each(malformed)('%j throws INVALID_FILTER', (expression, message) => {
    expect(filterError(() => byTag(expression)).message).toMatch(message);
    expect(filterError(() => compileFilter(expression)).message).toMatch(message);
  });

  it('refuses a non-string expression and too many tags', () => {
    for (const e of [42, {}, ['A'], true]) {
      expect(filterError(() => byTag(e)).message).toMatch(/must be a string/);
    }
    const tags = (n: number) => Array.from({ length: n }, (_, i) => `T${i}`).join('||');
    expect(compileFilter(tags(MAX_FILTER_TAGS)).matches(`T${MAX_FILTER_TAGS - 1}`, {}))
      .toBe(true);
    const err = filterError(() => byTag(tags(MAX_FILTER_TAGS + 1)));
    expect(err.limit).toBe(MAX_FILTER_TAGS);
    expect(filterError(() => byTag('A'.repeat(16 * 1024 + 1))).limit).toBe(16 * 1024);
  });
});
