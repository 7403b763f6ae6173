/**
 * Messages as applications see them: `Message` going in (validated and normalized once, so bad
 * input is refused before anything is written) and `MessageExt` coming out (a stored record with
 * its id, offsets and times; the body inflated when the producer compressed it).
 */
import { PocketMQError } from '../errors.js';
import { inflateBody as inflate, InflatedTooLargeError } from './body-zlib.js';
import type { RecordCursor } from '../store/record-cursor.js';
import type { StoredRecord } from '../store/record-decoder.js';
import {
  PROPERTY_KEYS, PROPERTY_TAGS, SYSFLAG_COMPRESSED,
} from '../store/record-codec.js';
import { createMessageId } from './message-id.js';

export type MessageBody = string | Buffer | Uint8Array;
export type PropertyValue = string | number | boolean;

/** What a producer sends. */
export interface Message {
  readonly topic: string;
  readonly body: MessageBody;
  /** One tag, used by tag filters (`TagA || TagB`). */
  readonly tags?: string | undefined;
  /** Keys to find the message by with `queryMessage`: one key, or several. */
  readonly keys?: string | readonly string[] | undefined;
  /** User properties, matched by SQL92 filters; numbers and booleans are stored as strings. */
  readonly properties?: Readonly<Record<string, PropertyValue>> | undefined;
  /**
   * Deliver after the delay of this level of `messageDelayLevel` (1 to its count; a larger
   * level is the last one; 0 or none: at once).
   */
  readonly delayTimeLevel?: number | undefined;
  /**
   * Deliver at this time, ms since the epoch (at most the store option `timerMaxDelayMs`
   * ahead; a time not in the future: at once).
   */
  readonly deliverAt?: number | undefined;
}

/** How a stored message's send ended (a result exists only for a stored message). */
export type SendStatus =
  | 'SEND_OK' | 'FLUSH_DISK_TIMEOUT' | 'FLUSH_SLAVE_TIMEOUT' | 'SLAVE_NOT_AVAILABLE';

/** A stored message, as consumers and queries hand it out. Offsets are numbers. */
export interface MessageExt {
  readonly topic: string;
  readonly tags: string | undefined;
  readonly keys: string[];
  readonly body: Buffer;
  readonly properties: Record<string, string>;
  readonly msgId: string;
  readonly queueId: number;
  readonly queueOffset: number;
  readonly commitLogOffset: number;
  readonly storeSize: number;
  readonly bornTimestamp: number;
  readonly storeTimestamp: number;
  readonly reconsumeTimes: number;
}

/**
 * Property names pocketmq (and RocketMQ's MessageConst) gives meaning to: users cannot set them,
 * and `MessageExt.properties` leaves them out.
 */
export const PROPERTY_ORIGIN_MESSAGE_ID = 'ORIGIN_MESSAGE_ID';
export const PROPERTY_RETRY_TOPIC = 'RETRY_TOPIC';
export const RESERVED_PROPERTIES: ReadonlySet<string> = new Set([
  'TAGS', 'KEYS', 'UNIQ_KEY', 'DELAY', 'WAIT', 'REAL_TOPIC', 'REAL_QID', 'TRAN_MSG', 'PGROUP',
  PROPERTY_RETRY_TOPIC, PROPERTY_ORIGIN_MESSAGE_ID, 'MAX_RECONSUME_TIMES', 'RECONSUME_TIME',
  'TIMER_DELIVER_MS', 'TIMER_DELAY_SEC', 'TIMER_DELAY_MS', '__transactionId__',
  'CHECK_IMMUNITY_TIME_IN_SECONDS', 'MIN_OFFSET', 'MAX_OFFSET', 'CONSUME_START_TIME',
  'TRANSACTION_CHECK_TIMES', 'SHARDING_KEY', 'INNER_NUM', 'INNER_BASE', 'TAGS_CODE',
]);

/** A message checked and normalized: body as bytes, keys as a list, properties as strings. */
export interface NormalizedMessage {
  readonly topic: string;
  readonly body: Uint8Array;
  readonly tags: string | undefined;
  readonly keys: readonly string[] | undefined;
  readonly properties: Readonly<Record<string, string>> | undefined;
  /** A delay level (> 0), when the message is delayed by level. */
  readonly delayTimeLevel?: number | undefined;
  /** A delivery time, when the message is scheduled for one. */
  readonly deliverAt?: number | undefined;
}

function invalid(message: string, property: string): PocketMQError {
  return new PocketMQError('INVALID_MESSAGE', message, { property });
}

function normalizeBody(body: unknown): Uint8Array {
  if (typeof body === 'string') {
    if (body.length === 0) throw invalid('body must not be empty', 'body');
    return Buffer.from(body, 'utf8');
  }
  if (body instanceof Uint8Array) {
    if (body.length === 0) throw invalid('body must not be empty', 'body');
    return body;
  }
  throw invalid('body must be a non-empty string, Buffer or Uint8Array', 'body');
}

function normalizeKeys(keys: unknown): readonly string[] | undefined {
  if (keys === undefined) return undefined;
  const list = typeof keys === 'string' ? [keys] : keys;
  if (!Array.isArray(list)) throw invalid('keys must be a string or an array of strings', 'keys');
  for (const key of list as unknown[]) {
    if (typeof key !== 'string' || key === '' || /\s/.test(key)) {
      throw invalid('each key must be a non-empty string without whitespace (keys are stored ' +
        `space-separated, as in RocketMQ), got ${typeof key === 'string'
          ? JSON.stringify(key.slice(0, 40)) : typeof key}`, 'keys');
    }
  }
  return list as string[];
}

function normalizeProperties(props: unknown): Record<string, string> | undefined {
  if (props === undefined) return undefined;
  // A Map, Date or class instance would lose its entries silently: only plain objects.
  const proto: unknown = props === null || typeof props !== 'object' ? undefined
    : Object.getPrototypeOf(props);
  if (proto !== Object.prototype && proto !== null) {
    throw invalid('properties must be a plain object', 'properties');
  }
  const entries: [string, string][] = [];
  for (const [key, value] of Object.entries(props as object)) {
    if (RESERVED_PROPERTIES.has(key)) {
      throw invalid(`property name ${key} is reserved: pocketmq sets it (RocketMQ's ` +
        'MessageConst names; tags and keys are message fields)', key);
    }
    if (typeof value === 'string' || typeof value === 'boolean' ||
      (typeof value === 'number' && Number.isFinite(value))) {
      entries.push([key, String(value)]);
    } else {
      throw invalid(`property ${key} must be a string, finite number or boolean`, key);
    }
  }
  // Object.fromEntries defines own properties: `__proto__` stays a property, where assigning
  // it would set the prototype and drop it.
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

/** Check a message from application code; throws INVALID_MESSAGE naming the bad field. */
export function normalizeMessage(msg: unknown): NormalizedMessage {
  if (msg === null || typeof msg !== 'object') {
    throw invalid('a message must be an object with topic and body', 'message');
  }
  const m = msg as Message;
  const { delayTimeLevel, deliverAt } = m;
  if (delayTimeLevel !== undefined &&
    (!Number.isInteger(delayTimeLevel) || delayTimeLevel < 0 || delayTimeLevel > 0xffff)) {
    throw invalid('delayTimeLevel must be an integer >= 0 (0: no delay)', 'delayTimeLevel');
  }
  if (deliverAt !== undefined && (typeof deliverAt !== 'number' || !Number.isFinite(deliverAt) ||
    deliverAt < 0)) {
    throw invalid('deliverAt must be a time in ms since the epoch', 'deliverAt');
  }
  if ((delayTimeLevel ?? 0) > 0 && deliverAt !== undefined) {
    throw invalid('a message takes delayTimeLevel or deliverAt, not both', 'deliverAt');
  }
  if (m.tags !== undefined && (typeof m.tags !== 'string' || /\s|\|\|/.test(m.tags))) {
    throw invalid('tags must be one tag: a string without whitespace or "||"', 'tags');
  }
  return {
    topic: m.topic,
    body: normalizeBody(m.body),
    tags: m.tags === '' ? undefined : m.tags,
    keys: normalizeKeys(m.keys),
    properties: normalizeProperties(m.properties),
    delayTimeLevel: delayTimeLevel === 0 ? undefined : delayTimeLevel,
    deliverAt,
  };
}

/** User properties of a stored record: its properties without the reserved ones. */
export function userProperties(all: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(all)) {
    if (RESERVED_PROPERTIES.has(key)) continue;
    if (key === '__proto__') {
      Object.defineProperty(out, key, { value: all[key], enumerable: true, writable: true,
        configurable: true });
    } else {
      out[key] = all[key]!;
    }
  }
  return out;
}

const NO_KEYS: readonly string[] = [];

/**
 * A MessageExt as the read path makes it, one for every message read: an instance of a class,
 * not an object literal. V8 records where each object and array literal allocates, and when one
 * young-generation collection finds most of a literal's recent objects alive (a batch being
 * read), it allocates all its later objects straight into the old generation. A catch-up read
 * then fills the old generation with messages that die at once, each keeping its body and keys
 * alive through the next young collections: reads ran at a third of their speed or less in about
 * half the processes. Objects made with `new` carry no such record; nor does `slice()` of an
 * empty array, where `[]` would. The same holds for the fetch's own objects (fetch.ts,
 * store-reader.ts, consume-queue.ts, log-reader.ts, the consumers' fetch requests) and for a
 * push consumer's waiting listener calls.
 */
class StoredMessage implements MessageExt {
  constructor(
    readonly topic: string,
    readonly tags: string | undefined,
    readonly keys: string[],
    readonly body: Buffer,
    readonly properties: Record<string, string>,
    readonly msgId: string,
    readonly queueId: number,
    readonly queueOffset: number,
    readonly commitLogOffset: number,
    readonly storeSize: number,
    readonly bornTimestamp: number,
    readonly storeTimestamp: number,
    readonly reconsumeTimes: number,
  ) {}
}

/** The application's view of a stored record. */
export function toMessageExt(record: StoredRecord): MessageExt {
  const all = record.properties;
  const compressed = (record.sysFlag & SYSFLAG_COMPRESSED) !== 0;
  return new StoredMessage(record.topic, record.tags, record.keys,
    compressed ? inflateBody(record) : record.body, userProperties(all),
    all[PROPERTY_ORIGIN_MESSAGE_ID] ?? createMessageId(record.physicalOffset, record.checksum),
    record.queueId, record.queueOffset, record.physicalOffset, record.size,
    record.bornTimestamp, record.storeTimestamp, record.reconsumeTimes);
}

/** The properties of a record that has none (read only here, never handed out). */
const NO_PROPERTIES: Readonly<Record<string, string>> = Object.freeze({});

/**
 * The application's view of the record under a read cursor (the fetch path: no intermediate
 * record object). `topic` is the topic the caller read, so its string is not decoded again.
 * The body is copied: the message outlives the segment's mapping.
 */
export function cursorToMessageExt(c: RecordCursor, topic: string, retry = false): MessageExt {
  // A plain message has no properties: no decoded table to copy the user's part from.
  const all = c.hasProperties ? c.properties : NO_PROPERTIES;
  const physicalOffset = c.physicalOffset;
  const checksum = c.checksum;
  const keys = all[PROPERTY_KEYS];
  return new StoredMessage(
    // A retry topic's messages show the topic they were first sent to.
    retry ? all[PROPERTY_RETRY_TOPIC] ?? topic : topic,
    all[PROPERTY_TAGS],
    keys === undefined || keys === '' ? NO_KEYS.slice() : keys.split(' '),
    (c.sysFlag & SYSFLAG_COMPRESSED) !== 0
      ? inflateBody({ body: c.body, physicalOffset, topic }) : c.copyBody(),
    all === NO_PROPERTIES ? {} : userProperties(all),
    all[PROPERTY_ORIGIN_MESSAGE_ID] ?? createMessageId(physicalOffset, checksum),
    c.queueId, c.queueOffset, physicalOffset, c.size, c.bornTimestamp, c.storeTimestamp,
    c.reconsumeTimes);
}

function inflateBody(record: { body: Buffer; physicalOffset: number; topic: string }): Buffer {
  try {
    return inflate(record.body);
  } catch (err) {
    throw new PocketMQError('CORRUPT_DATA',
      `message at commit-log offset ${record.physicalOffset} is flagged compressed but ` +
      (err instanceof InflatedTooLargeError ? 'inflates to more than the largest body'
        : 'does not inflate'), { cause: err, offset: record.physicalOffset, topic: record.topic });
  }
}
