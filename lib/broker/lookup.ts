/**
 * Looking messages up in the store: by message id (its commit-log offset and checksum) and by
 * key through the index. What `viewMessage`, `queryMessage` and the trace query read.
 */
import type { StoreEngine } from '../store/store-engine.js';
import { decodeMessageId } from './message-id.js';
import { toMessageExt, type MessageExt } from './message.js';
import { checkTopicName } from './names.js';

/** The message with this id, or null for an unknown or malformed id. */
export function messageById(engine: StoreEngine, msgId: unknown): MessageExt | null {
  const id = decodeMessageId(msgId);
  if (id === null || id.offset < engine.commitLogMinOffset ||
    id.offset >= engine.commitLogMaxOffset) {
    return null;
  }
  const record = engine.lookMessageByOffset(id.offset);
  if (record === null || record.checksum !== id.checksum) return null;
  return toMessageExt(record);
}

/** Messages of `topic` indexed under `key`, stored in [beginMs, endMs], newest first. */
export function messagesByKey(engine: StoreEngine, topic: string, key: string, maxNum: number,
  beginMs: number, endMs: number): MessageExt[] {
  checkTopicName(topic);
  return engine.queryMessage(topic, key, maxNum, beginMs, endMs).map(toMessageExt);
}
