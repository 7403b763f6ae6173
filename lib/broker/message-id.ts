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

/** Two hex digits per byte value: ids are made for every message sent and read. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).toUpperCase().padStart(2, '0'));

function hex32(v: number): string {
  return HEX[v >>> 24]! + HEX[(v >>> 16) & 0xff]! + HEX[(v >>> 8) & 0xff]! + HEX[v & 0xff]!;
}

/** The id of the record stored at `commitLogOffset` with this checksum. */
export function createMessageId(commitLogOffset: number, checksum: number): string {
  return hex32(Math.floor(commitLogOffset / 2 ** 32)) + hex32(commitLogOffset >>> 0) +
    hex32(checksum >>> 0);
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
