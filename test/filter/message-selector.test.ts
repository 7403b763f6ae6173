import { describe, expect, it } from 'vitest';
import { compileFilter, MATCH_ALL } from '../../lib/broker/filter/filter.js';
import { MessageSelector } from '../../lib/broker/filter/message-selector.js';
import { filterError } from './helpers.js';

describe('MessageSelector', () => {
  it('keeps type and expression, and parses eagerly', () => {
    const s = MessageSelector.bySql("region = 'eu'");
    expect(s.type).toBe('SQL92');
    expect(s.expression).toBe("region = 'eu'");
    const t = MessageSelector.byTag('A || B');
    expect(t.type).toBe('TAG');
    expect(t.expression).toBe('A || B');
    expect(filterError(() => MessageSelector.bySql('region =')).message).toMatch(/position 9/);
    expect(filterError(() => MessageSelector.byTag('A ||')).code).toBe('INVALID_FILTER');
  });

  it('is immutable', () => {
    const s = MessageSelector.bySql('a = 1');
    expect(() => { (s as { expression: string }).expression = 'a = 2'; }).toThrow(TypeError);
    expect(s.expression).toBe('a = 1');
  });

  it('hands out the filter compiled when it was made', () => {
    const s = MessageSelector.bySql('a = 1');
    const f = compileFilter(s);
    expect(compileFilter(s)).toBe(f);
    expect(f.type).toBe('SQL92');
    expect(f.expression).toBe('a = 1');
    expect(f.matches(undefined, { a: '1' })).toBe(true);
    expect(f.matches(undefined, { a: '2' })).toBe(false);
  });
});

describe('compileFilter', () => {
  it('reads a string as a tag expression', () => {
    const f = compileFilter('a>1'); // the tag 'a>1', not SQL
    expect(f.type).toBe('TAG');
    expect(f.matches('a>1', {})).toBe(true);
    expect(f.matches(undefined, { a: '2' })).toBe(false);
    expect(filterError(() => compileFilter('a = 1')).message).toMatch(/whitespace/);
  });

  it('compiles a { type, expression } object, from another copy of the package', () => {
    const sqlFilter = compileFilter({ type: 'SQL92', expression: 'a > 1' } as MessageSelector);
    expect(sqlFilter.type).toBe('SQL92');
    expect(sqlFilter.matches(undefined, { a: '2' })).toBe(true);
    const tag = compileFilter({ type: 'TAG', expression: '*' } as MessageSelector);
    expect(tag).toBe(MATCH_ALL);
    expect(filterError(() => compileFilter({ type: 'SQL92', expression: 'a >' } as
      MessageSelector)).message).toMatch(/position 4/);
  });

  it('refuses anything else', () => {
    for (const bad of [42, true, { type: 'XPATH', expression: 'x' }, { expression: 'a' }]) {
      const err = filterError(() => compileFilter(bad as unknown as string));
      expect(err.message).toMatch(/tag expression or a MessageSelector/);
    }
  });
});

describe('MessageSelector.matches and MessageSelector.from', () => {
  it('matches a message as the broker does', () => {
    const tag = MessageSelector.byTag('TagA || TagB');
    expect(tag.matches('TagB', {})).toBe(true);
    expect(tag.matches('TagC', {})).toBe(false);
    expect(tag.matches(undefined, {})).toBe(false);
    expect(MessageSelector.byTag('*').matches(undefined, {})).toBe(true);
    const sql = MessageSelector.bySql("region = 'eu' AND amount > 100");
    expect(sql.matches(undefined, { region: 'eu', amount: '150' })).toBe(true);
    expect(sql.matches(undefined, { region: 'eu', amount: '50' })).toBe(false);
    expect(sql.matches(undefined, { region: 'eu' })).toBe(false);
  });

  it('takes a selector, a tag string or another copy\'s { type, expression }', () => {
    const sql = MessageSelector.bySql('a > 1');
    expect(MessageSelector.from(sql)).toBe(sql);
    expect(MessageSelector.from('A || B')).toMatchObject({ type: 'TAG', expression: 'A || B' });
    expect(MessageSelector.from(undefined)).toMatchObject({ type: 'TAG', expression: '*' });
    const copy = MessageSelector.from({ type: 'SQL92', expression: 'a > 1' });
    expect(copy).toBeInstanceOf(MessageSelector);
    expect(copy.matches(undefined, { a: '2' })).toBe(true);
    for (const bad of [{ type: 'X', expression: 'a' }, 5, { type: 'SQL92', expression: 'a >' }]) {
      expect(filterError(() => MessageSelector.from(bad)).code).toBe('INVALID_FILTER');
    }
  });
});
