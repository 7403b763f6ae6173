/** Shared helpers for the filter tests: error capture, one-line SQL matching, a seeded PRNG. */
import { expect } from 'vitest';
import { PocketMQError } from '../../lib/errors.js';
import { compileFilter, type MessageFilter } from '../../lib/broker/filter/filter.js';
import { MessageSelector } from '../../lib/broker/filter/message-selector.js';

/** The PocketMQError `fn` throws; fails the test when it throws nothing or something else. */
export function filterError(fn: () => unknown): PocketMQError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PocketMQError);
    expect((err as PocketMQError).code).toBe('INVALID_FILTER');
    return err as PocketMQError;
  }
  throw new Error('expected an INVALID_FILTER error, but nothing was thrown');
}

export function sql(expression: string): MessageFilter {
  return compileFilter(MessageSelector.bySql(expression));
}

/** Whether the SQL92 `expression` selects a message with these properties and tags. */
export function matchSql(expression: string, props: Record<string, string>,
  tags?: string): boolean {
  return sql(expression).matches(tags, props);
}

/** mulberry32: a small seeded PRNG with the same sequence on every platform. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
