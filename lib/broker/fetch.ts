/**
 * Filtered fetches (the broker port's `fetch`): one queue's records from an offset, decoded
 * into messages that pass the selector's filter, tag codes checked before a record is read.
 */
import { limits } from '../limits.js';
import type { RecordCursor } from '../store/record-cursor.js';
import type { StoreEngine } from '../store/store-engine.js';
import type { GetMessageStatus, ReadFilter } from '../store/store-reader.js';
import { compileFilter, type MessageFilter } from './filter/filter.js';
import { MessageSelector, selectorFilter } from './filter/message-selector.js';
import { cursorToMessageExt, type MessageExt } from './message.js';
import { RETRY_TOPIC_PREFIX } from './names.js';
import type { FetchRequest, FetchResult, FetchStatus } from './port.js';

const STATUS: Readonly<Record<GetMessageStatus, FetchStatus>> = {
  FOUND: 'FOUND',
  NO_MATCHED_MESSAGE: 'NO_MATCHED_MSG',
  MESSAGE_WAS_REMOVING: 'NO_MATCHED_MSG',
  NO_MATCHED_LOGIC_QUEUE: 'NO_NEW_MSG',
  NO_MESSAGE_IN_QUEUE: 'NO_NEW_MSG',
  OFFSET_OVERFLOW_ONE: 'NO_NEW_MSG',
  OFFSET_TOO_SMALL: 'OFFSET_TOO_SMALL',
  OFFSET_OVERFLOW_BADLY: 'OFFSET_TOO_BIG',
};

// Made for every fetch: instances of classes and a slice, not literals, which V8 may decide to
// allocate in the old generation (see StoredMessage in message.ts).
const NO_MESSAGES: readonly MessageExt[] = [];

class Limits implements ReadFilter {
  constructor(readonly tagsCode: ((code: number) => boolean) | undefined,
    readonly maxBytes: number | undefined) {}
}

class Fetched implements FetchResult {
  constructor(readonly status: FetchStatus, readonly messages: MessageExt[],
    readonly nextBeginOffset: number, readonly minOffset: number, readonly maxOffset: number) {}
}

export class Fetcher {
  /** Compiled filters of selectors that arrive as plain objects (a remote client's). */
  private readonly filters = new Map<string, MessageFilter>();

  constructor(private readonly engine: StoreEngine) {}

  /** Messages of one queue from `offset` that pass the selector. Never waits. */
  fetch(request: FetchRequest): FetchResult {
    const { topic, queueId, offset } = request;
    const filter = this.filterOf(request.selector);
    const all = filter.type === 'TAG' && filter.expression === '*';
    const retry = topic.startsWith(RETRY_TOPIC_PREFIX);
    const messages = NO_MESSAGES.slice();
    const visitor = all
      ? (c: RecordCursor): void => {
        messages.push(cursorToMessageExt(c, topic, retry));
      }
      : (c: RecordCursor): void => {
        const message = cursorToMessageExt(c, topic, retry);
        if (filter.matches(message.tags, message.properties)) messages.push(message);
      };
    const got = this.engine.visitMessages(topic, queueId, offset, request.maxMessages, visitor,
      new Limits(all ? undefined : (code) => filter.matchesTagsCode(code), request.maxBytes));
    let status = STATUS[got.status];
    if (status === 'FOUND' && messages.length === 0) status = 'NO_MATCHED_MSG';
    return new Fetched(status, messages, got.nextBeginOffset, got.minOffset, got.maxOffset);
  }

  /** A selector's compiled filter: kept with a MessageSelector, cached for plain objects. */
  private filterOf(selector: FetchRequest['selector']): MessageFilter {
    if (selector instanceof MessageSelector) return selectorFilter(selector);
    const { type, expression } = (selector ?? {}) as { type?: unknown; expression?: unknown };
    const key = `${String(type)}\u0000${String(expression)}`;
    let filter = this.filters.get(key);
    if (filter === undefined) {
      filter = compileFilter(selector);
      if (this.filters.size >= limits.filterCacheEntries) this.filters.clear();
      this.filters.set(key, filter);
    }
    return filter;
  }
}
