/**
 * Limits on filter expressions and the checks every expression passes before it is parsed.
 * A filter comes from a consumer, so nothing about it is trusted: its size, its nesting and its
 * lists are bounded, and each violation is an INVALID_FILTER error that names the limit.
 */
import { PocketMQError } from '../../errors.js';

/** Longest tag or SQL92 expression, in UTF-8 bytes. */
export const MAX_FILTER_EXPRESSION_BYTES = 16 * 1024;
/** Deepest nesting of parentheses and NOTs in a SQL92 expression; keeps recursion shallow. */
export const MAX_FILTER_DEPTH = 64;
/** Most strings in one `IN (...)` list. */
export const MAX_FILTER_IN_ITEMS = 1024;
/** Most tags in one `TagA || TagB || ...` expression. */
export const MAX_FILTER_TAGS = 1024;

/** A malformed or oversized filter expression. */
export function invalidFilter(message: string, limit?: number, actual?: number): PocketMQError {
  const fields = limit === undefined ? {} : { limit, actual, property: 'expression' };
  return new PocketMQError('INVALID_FILTER', message, fields);
}

/** The expression as a string within the size limit; `what` names the filter kind. */
export function checkExpression(expression: unknown, what: string): string {
  if (typeof expression !== 'string') {
    throw invalidFilter(`${what} expression must be a string, got ${typeof expression}`);
  }
  // Each UTF-16 code unit takes 1 to 3 UTF-8 bytes: count bytes only when it could matter.
  if (expression.length * 3 > MAX_FILTER_EXPRESSION_BYTES) {
    const bytes = Buffer.byteLength(expression, 'utf8');
    if (bytes > MAX_FILTER_EXPRESSION_BYTES) {
      throw invalidFilter(`${what} expression is ${bytes} bytes, more than ` +
        `${MAX_FILTER_EXPRESSION_BYTES}`, MAX_FILTER_EXPRESSION_BYTES, bytes);
    }
  }
  return expression;
}
