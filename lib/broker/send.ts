/**
 * From a producer's message to a stored record and back to its receipt: the broker decides the
 * record (compression and its flag; the tag code and properties are the codec's), and turns the
 * store's result into the SendResult a producer hands out.
 */
import { deflateSync } from 'node:zlib';
import { SYSFLAG_COMPRESSED, type RecordInput } from '../store/record-codec.js';
import type { PutResult } from '../store/store-engine.js';
import { createMessageId } from './message-id.js';
import type { NormalizedMessage } from './message.js';
import type { SendResult } from './port.js';

/** zlib level, as RocketMQ's producer. */
const COMPRESS_LEVEL = 5;

/** The record for `message` in queue `queueId`; bodies over `compressOver` bytes deflated. */
export function toRecord(message: NormalizedMessage, queueId: number,
  compressOver: number): RecordInput {
  let body = message.body;
  let sysFlag = 0;
  if (body.length > compressOver) {
    const packed = deflateSync(body, { level: COMPRESS_LEVEL });
    if (packed.length < body.length) {
      body = packed;
      sysFlag = SYSFLAG_COMPRESSED;
    }
  }
  return { topic: message.topic, queueId, body, tags: message.tags, keys: message.keys,
    properties: message.properties, sysFlag };
}

/** The receipt of a stored record. */
export function receipt(topic: string, queueId: number, r: PutResult): SendResult {
  return {
    status: r.status === 'PUT_OK' ? 'SEND_OK' : 'FLUSH_DISK_TIMEOUT',
    msgId: createMessageId(r.physicalOffset, r.checksum),
    topic,
    queueId,
    queueOffset: r.queueOffset,
    commitLogOffset: r.physicalOffset,
    storeTimestamp: r.storeTimestamp,
  };
}

