/**
 * MessageSelector: how a consumer names the messages it wants, RocketMQ's
 * `MessageSelector.byTag` / `MessageSelector.bySql`. Both parse eagerly, so a malformed
 * expression fails where the consumer writes it (INVALID_FILTER), not at the broker later.
 * The compiled filter is kept beside the selector and handed out by compileFilter (filter.ts).
 */
import { invalidFilter } from './filter-limits.js';
import type { MessageFilter, SelectorType } from './filter-types.js';
import { compileSqlFilter } from './sql-filter.js';
import { compileTagFilter } from './tag-filter.js';

export type { SelectorType } from './filter-types.js';

const compiled = new WeakMap<MessageSelector, MessageFilter>();

export class MessageSelector {
  readonly type: SelectorType;
  readonly expression: string;

  private constructor(type: SelectorType, expression: string, filter: MessageFilter) {
    this.type = type;
    this.expression = expression;
    compiled.set(this, filter);
    Object.freeze(this);
  }

  /** A SQL92 expression over message properties, e.g. `a > 5 AND region IN ('eu', 'us')`. */
  static bySql(expression: string): MessageSelector {
    return new MessageSelector('SQL92', expression, compileSqlFilter(expression));
  }

  /**
   * A consumer's selector as given to `subscribe`: a MessageSelector as it is; a string is a tag
   * expression; a `{ type, expression }` object (a selector from another copy of pocketmq) is
   * parsed again. INVALID_FILTER for anything else or a malformed expression.
   */
  static from(selector: unknown): MessageSelector {
    if (selector instanceof MessageSelector) return selector;
    if (typeof selector === 'string' || selector === null || selector === undefined) {
      return MessageSelector.byTag(selector);
    }
    const { type, expression } = selector as { type?: unknown; expression?: unknown };
    if (type === 'SQL92') return MessageSelector.bySql(expression as string);
    if (type === 'TAG') return MessageSelector.byTag(expression as string);
    throw invalidFilter('selector must be a tag expression or a MessageSelector');
  }

  /**
   * Whether a message with these tags and user properties passes this selector, as the broker
   * decides it (for consumers that filter on their side, such as pocketmq/jetstream's).
   */
  matches(tags: string | undefined, properties: Readonly<Record<string, string>>): boolean {
    return selectorFilter(this).matches(tags, properties);
  }

  /**
   * A tag expression, e.g. `TagA || TagB`; `*`, '' and null or undefined select everything
   * (the selector's expression is then `*`).
   */
  static byTag(expression?: string | null): MessageSelector {
    const filter = compileTagFilter(expression);
    return new MessageSelector('TAG', expression ?? '*', filter);
  }
}

/** The filter compiled when `selector` was made. */
export function selectorFilter(selector: MessageSelector): MessageFilter {
  const filter = compiled.get(selector);
  if (filter === undefined) throw new TypeError('not a MessageSelector made by byTag or bySql');
  return filter;
}
