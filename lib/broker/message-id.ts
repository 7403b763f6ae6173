/**
 * Message ids. A message's id locates it: 24 hex digits, the commit-log offset (16) and the
 * record's checksum (8), like RocketMQ's offsetMsgId (host, port, offset) without the host, since
 * one process owns the log. `viewMessage` reads the record at the offset and accepts it only when
 * its checksum matches, so an id whose record a crash truncated (its offset then reused by a
 * later record) never finds the wrong message.
 *
 * A redelivered copy (retry, dead letter) is a new record with the original's id in the
 * ORIGIN_MESSAGE_ID property; readers report that id, so a message keeps its id for life.
 */

export const MSG_ID_HEX_DIGITS = 24;
const MSG_ID_PATTERN = /^[0-9A-F]{24}$/;

/** The id of the record stored at `commitLogOffset` with this checksum. */
export function createMessageId(commitLogOffset: number, checksum: number): string {
  return commitLogOffset.toString(16).toUpperCase().padStart(16, '0') +
    (checksum >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

/** The offset and checksum an id names, or null when it is not one of ours. */
export function decodeMessageId(msgId: unknown): { offset: number; checksum: number } | null {
  if (typeof msgId !== 'string') return null;
  const id = msgId.toUpperCase();
  if (!MSG_ID_PATTERN.test(id)) return null;
  const offset = Number.parseInt(id.slice(0, 16), 16);
  if (!Number.isSafeInteger(offset)) return null;
  return { offset, checksum: Number.parseInt(id.slice(16), 16) };
}
