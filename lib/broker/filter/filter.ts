/**
 * Message filters: the compiled form of a consumer's tag or SQL92 selector, as the broker
 * runs it. Two steps, RocketMQ's: `matchesTagsCode` is a cheap pre-check on a ConsumeQueue
 * entry's tag code, before any record is read; `matches` is the exact check on the record.
 *
 * Limits on expressions (MAX_FILTER_*) live in filter-limits.ts and are re-exported here.
 */
import { invalidFilter } from './filter-limits.js';
import type { MessageFilter } from './filter-types.js';
import { MessageSelector, selectorFilter } from './message-selector.js';
import { compileSqlFilter } from './sql-filter.js';
import { compileTagFilter } from './tag-filter.js';

export { MATCH_ALL } from './tag-filter.js';
export {
  MAX_FILTER_DEPTH, MAX_FILTER_EXPRESSION_BYTES, MAX_FILTER_IN_ITEMS, MAX_FILTER_TAGS,
} from './filter-limits.js';

export type { MessageFilter } from './filter-types.js';

/**
 * The filter for a selector; a string is a tag expression. A MessageSelector's filter was
 * compiled when it was made; a `{ type, expression }` object (say, a selector from another
 * copy of this package) is compiled now. Throws INVALID_FILTER.
 */
export function compileFilter(selector: string | MessageSelector): MessageFilter {
  if (selector instanceof MessageSelector) return selectorFilter(selector);
  if (typeof selector === 'string' || selector === null || selector === undefined) {
    return compileTagFilter(selector);
  }
  if (typeof selector === 'object') {
    const { type, expression } = selector as { type?: unknown; expression?: unknown };
    if (type === 'TAG') return compileTagFilter(expression);
    if (type === 'SQL92') return compileSqlFilter(expression);
  }
  throw invalidFilter('selector must be a tag expression or a MessageSelector');
}
