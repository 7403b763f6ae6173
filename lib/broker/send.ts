/**
 * From a producer's message to a stored record and back to its receipt: the broker decides the
 * record (compression and its flag; the tag code and properties are the codec's), and turns the
 * store's result into the SendResult a producer hands out.
 */
import { SYSFLAG_COMPRESSED, type RecordInput } from '../store/record-codec.js';
import type { PutResult, PutStatus } from '../store/store-engine.js';
import { createMessageId } from './message-id.js';
import { deflateBody } from './body-zlib.js';
import type { NormalizedMessage, SendStatus } from './message.js';
import type { SendResult } from './port.js';

/** A body as stored: deflated when it is over `compressOver` bytes and that makes it smaller. */
export function storedBody(body: Uint8Array, compressOver: number):
  { body: Uint8Array; sysFlag: number } {
  if (body.length > compressOver) {
    const packed = deflateBody(body);
    if (packed !== null) return { body: packed, sysFlag: SYSFLAG_COMPRESSED };
  }
  return { body, sysFlag: 0 };
}

/** The record for `message` in queue `queueId`; bodies over `compressOver` bytes deflated. */
export function toRecord(message: NormalizedMessage, queueId: number,
  compressOver: number): RecordInput {
  let body = message.body;
  let sysFlag = 0;
  // Most bodies are small: no compression, and no intermediate object per send.
  if (body.length > compressOver) ({ body, sysFlag } = storedBody(body, compressOver));
  return { topic: message.topic, queueId, body, tags: message.tags, keys: message.keys,
    properties: message.properties, sysFlag };
}

/**
 * The send status of a stored record (RocketMQ's SendStatus): SEND_OK, or stored with its
 * durability unconfirmed: the fdatasync (FLUSH_DISK_TIMEOUT) or, SYNC_MASTER, a follower's copy
 * (FLUSH_SLAVE_TIMEOUT; SLAVE_NOT_AVAILABLE with no follower in sync) did not come in time.
 */
const SEND_STATUS: Readonly<Record<PutStatus, SendStatus>> = {
  PUT_OK: 'SEND_OK',
  FLUSH_DISK_TIMEOUT: 'FLUSH_DISK_TIMEOUT',
  FLUSH_SLAVE_TIMEOUT: 'FLUSH_SLAVE_TIMEOUT',
  SLAVE_NOT_AVAILABLE: 'SLAVE_NOT_AVAILABLE',
};

/** The receipt of a stored record, from the record's input (its topic and queue). */
export function receiptOf(r: PutResult, input: RecordInput): SendResult {
  return receipt(input.topic, input.queueId, r);
}

/** The receipt of a stored record. */
export function receipt(topic: string, queueId: number, r: PutResult): SendResult {
  return {
    status: SEND_STATUS[r.status],
    msgId: createMessageId(r.physicalOffset, r.checksum),
    topic,
    queueId,
    queueOffset: r.queueOffset,
    commitLogOffset: r.physicalOffset,
    storeTimestamp: r.storeTimestamp,
  };
}

