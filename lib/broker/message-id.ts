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

/** Character codes of the hex digits: ids are made for every message sent and read. */
const DIGITS = Array.from('0123456789ABCDEF', (c) => c.charCodeAt(0));

function digit(v: number, shift: number): number {
  return DIGITS[(v >>> shift) & 0xf]!;
}

/**
 * The id of the record stored at `commitLogOffset` with this checksum, made as one flat string
 * (joining pieces would allocate a string per piece).
 */
export function createMessageId(commitLogOffset: number, checksum: number): string {
  const h = Math.floor(commitLogOffset / 2 ** 32);
  const l = commitLogOffset >>> 0;
  const c = checksum >>> 0;
  return String.fromCharCode(
    digit(h, 28), digit(h, 24), digit(h, 20), digit(h, 16),
    digit(h, 12), digit(h, 8), digit(h, 4), digit(h, 0),
    digit(l, 28), digit(l, 24), digit(l, 20), digit(l, 16),
    digit(l, 12), digit(l, 8), digit(l, 4), digit(l, 0),
    digit(c, 28), digit(c, 24), digit(c, 20), digit(c, 16),
    digit(c, 12), digit(c, 8), digit(c, 4), digit(c, 0));
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
