/**
 * The FetchRequest a consumer makes for each fetch, as an instance of a class rather than an
 * object literal: V8 may decide to allocate a literal's objects in the old generation, which
 * made catch-up reads three times slower in about half the processes (see StoredMessage in
 * broker/message.ts).
 */
import type { FetchRequest, MessageSelector } from '../broker/port.js';

class Request implements FetchRequest {
  constructor(
    readonly topic: string,
    readonly queueId: number,
    readonly offset: number,
    readonly maxMessages: number,
    readonly selector: MessageSelector,
    readonly maxBytes: number | undefined,
  ) {}
}

/** A FetchRequest (see the module's comment). */
export function fetchRequest(topic: string, queueId: number, offset: number,
  maxMessages: number, selector: MessageSelector, maxBytes?: number): FetchRequest {
  return new Request(topic, queueId, offset, maxMessages, selector, maxBytes);
}
