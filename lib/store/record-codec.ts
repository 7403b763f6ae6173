/**
 * The commit-log record: framing, encoding and decoding. Format version 1 (docs/format.md).
 *
 * Record (little-endian; u64 = two u32, lo then hi, values < 2^53):
 *
 *    0        4        8        12       16   18   20       24               32
 *    +--------+--------+--------+--------+----+----+--------+----------------+
 *    |checksum|totalSz | magic  |sysFlag |qId |reC |bodyLen |  queueOffset   |
 *    +--------+--------+--------+--------+----+----+--------+----------------+
 *    32               40               48               56               64
 *    +----------------+----------------+----------------+----------------+
 *    | physicalOffset | bornTimestamp  | storeTimestamp |preparedTxOffset|
 *    +----------------+----------------+----------------+----------------+
 *    64: body[bodyLen] | u8 topicLen, topic | u16 propsLen, props
 *    props = repeated { u8 keyLen, key, u16 valueLen, value } (UTF-8)
 *
 * checksum = xxh32 of bytes [4, totalSize): it covers the length, magic, every header field,
 * body, topic and properties. A blank end-of-segment marker is 12 bytes:
 *    [checksum of 4..12][remaining bytes in segment][BLANK_MAGIC]
 * A record is only placed where its end leaves room for the marker (len + 12 <= remaining).
 *
 * Invariants: totalSize = 64 + bodyLen + 1 + topicLen + 2 + propsLen; physicalOffset is the
 * record's own global offset; a record never spans two segments.
 */
import { assert, PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import { checksum32, javaHashCode } from './checksum.js';

export const FORMAT_VERSION = 1;
export const RECORD_MAGIC = 0x31514d50; // 'PMQ1'
export const BLANK_MAGIC = 0x4b4e4c42; // 'BLNK'
export const HEADER_BYTES = 64;
export const BLANK_BYTES = 12;
/** Smallest possible record: header, one body byte, 1-byte topic, empty properties. */
export const MIN_RECORD_BYTES = HEADER_BYTES + 1 + 1 + 1 + 2;
export const MAX_RECORD_BYTES =
  HEADER_BYTES + limits.maxBodyBytes + 1 + limits.maxTopicBytes + 2 + limits.maxPropertiesBytes;

/** Property names pocketmq stores with well-known meaning (RocketMQ's MessageConst). */
export const PROPERTY_TAGS = 'TAGS';
/**
 * A record's ConsumeQueue tag code when it must not be its tag's hash: a decimal integer (for
 * example the time a scheduled record is due, as RocketMQ keeps it in the tag field of its
 * schedule queues, so a scheduler finds due entries without reading records).
 */
export const PROPERTY_TAGS_CODE = 'TAGS_CODE';
export const PROPERTY_KEYS = 'KEYS';
export const PROPERTY_UNIQ_KEY = 'UNIQ_KEY';

/**
 * sysFlag bit the store sets on every record of a multi-record append but the last: recovery
 * keeps such records only once the record closing their run is intact, so a batch cut by a
 * crash is dropped whole. Never set by callers; readers do not see it.
 */
export const SYSFLAG_BATCH_MORE = 0x4000_0000;

/** sysFlag bits 0-1: transaction type, as RocketMQ's MessageSysFlag bits 2-3. */
export const TX_NONE = 0;
export const TX_PREPARED = 1;
export const TX_COMMIT = 2;
export const TX_ROLLBACK = 3;
/** sysFlag bit 2: the body is zlib-compressed (the client sets it and inflates on read). */
export const SYSFLAG_COMPRESSED = 0x4;

// 2 ** 32 is written as a literal in the hot helpers below: a bundler turns a module-level
// `const` into `var`, and V8 then loads that (boxed) number on every call instead of folding it.

export function writeU64(dv: DataView, at: number, value: number): void {
  dv.setUint32(at, value >>> 0, true);
  dv.setUint32(at + 4, Math.floor(value / 4294967296), true);
}

export function readU64(dv: DataView, at: number): number {
  const hi = dv.getUint32(at + 4, true);
  return hi * 4294967296 + dv.getUint32(at, true);
}

export function dataView(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** What the caller asks to store; validated and encoded once by `prepareRecord`. */
export interface RecordInput {
  readonly topic: string;
  readonly queueId: number;
  readonly body: Uint8Array;
  readonly tags?: string | undefined;
  /** Index keys; stored as the KEYS property (space-separated, as RocketMQ). */
  readonly keys?: readonly string[] | undefined;
  /** A unique key to index (for example the original id of a redelivered message). */
  readonly uniqKey?: string | undefined;
  readonly properties?: Readonly<Record<string, string>> | undefined;
  readonly sysFlag?: number | undefined;
  readonly bornTimestamp?: number | undefined;
  readonly reconsumeTimes?: number | undefined;
  readonly preparedTxOffset?: number | undefined;
}

/** A validated record ready to be written: sizes known, strings encoded. */
export interface PreparedRecord {
  readonly input: RecordInput;
  readonly size: number;
  readonly topicBytes: Buffer;
  readonly propertiesBytes: Buffer | null;
  readonly tagsCode: number;
  /**
   * The record encoded already, placed anywhere (`encodeRecord` with any offsets): appending
   * copies it and sets its placement and checksum (a producer thread encoded it in parallel).
   */
  readonly encoded?: Uint8Array | undefined;
}

const topicCache = new Map<string, Buffer>();
const TOPIC_CACHE_MAX = 4096;
const TOPIC_PATTERN = /^[A-Za-z0-9_%|-]{1,127}$/;

/** The last topic encoded: most records go to the topic of the one before. */
let lastTopic: string | null = null;
let lastTopicBytes: Buffer = Buffer.alloc(0);

function topicBytes(topic: string): Buffer {
  if (topic === lastTopic) return lastTopicBytes;
  let bytes = topicCache.get(topic);
  if (bytes !== undefined) {
    lastTopic = topic;
    lastTopicBytes = bytes;
    return bytes;
  }
  if (typeof topic !== 'string') {
    throw new PocketMQError('INVALID_TOPIC', `${topic === undefined ? 'topic is missing'
      : `topic must be a string, got ${describe(topic)}`}: a topic name is 1 to 127 of the ` +
      'characters A-Z a-z 0-9 _ % | -');
  }
  if (!TOPIC_PATTERN.test(topic)) {
    throw new PocketMQError('INVALID_TOPIC', `topic ${describe(topic)} is not a topic name: ` +
      '1 to 127 of the characters A-Z a-z 0-9 _ % | -', { topic });
  }
  bytes = Buffer.from(topic, 'latin1');
  if (topicCache.size >= TOPIC_CACHE_MAX) topicCache.clear();
  topicCache.set(topic, bytes);
  return bytes;
}

function invalid(message: string, property: string): PocketMQError {
  return new PocketMQError('INVALID_MESSAGE', message, { property });
}

/** A value for a message: a string quoted and cut at 40 characters, else its type. */
function describe(value: unknown): string {
  if (typeof value !== 'string') return value === null ? 'null' : typeof value;
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
}

/**
 * MESSAGE_TOO_LARGE for a body over `maxMessageSize` (the store option), naming the option and
 * its bound.
 */
export function bodyTooLarge(bytes: number, maxMessageSize: number, topic?: string):
  PocketMQError {
  return new PocketMQError('MESSAGE_TOO_LARGE', `body is ${bytes} bytes; maxMessageSize is ` +
    `${maxMessageSize} (option maxMessageSize, at most 4 MiB)`,
  { limit: maxMessageSize, actual: bytes, property: 'body', ...(topic === undefined ? {}
    : { topic }) });
}

/** How users name the properties pocketmq fills from message fields. */
const FIELD_OF_PROPERTY: Readonly<Record<string, string>> = {
  [PROPERTY_TAGS]: 'tags', [PROPERTY_KEYS]: 'keys joined by spaces',
  [PROPERTY_UNIQ_KEY]: 'uniqKey',
};

/** Optional fields arrive from JavaScript callers too: a wrong type is bad input, not a crash. */
function checkType(value: unknown, type: 'string' | 'object', property: string): void {
  if (value !== undefined && (typeof value !== type || value === null)) {
    throw invalid(`${property} must be a${type === 'object' ? 'n' : ''} ${type}`, property);
  }
}

/** All properties as a list of [key, value], well-known ones first. */
function propertyPairs(input: RecordInput): [string, string][] | null {
  const pairs: [string, string][] = [];
  checkType(input.tags, 'string', 'tags');
  checkType(input.uniqKey, 'string', 'uniqKey');
  checkType(input.properties, 'object', 'properties');
  if (input.keys !== undefined && !Array.isArray(input.keys)) {
    throw invalid('keys must be an array of strings', 'keys');
  }
  if (input.tags !== undefined && input.tags !== '') pairs.push([PROPERTY_TAGS, input.tags]);
  if (input.keys !== undefined && input.keys.length > 0) {
    for (const key of input.keys) {
      if (typeof key !== 'string' || key === '' || key.includes(' ')) {
        throw invalid('each key must be a non-empty string without spaces', 'keys');
      }
    }
    pairs.push([PROPERTY_KEYS, input.keys.join(' ')]);
  }
  if (input.uniqKey !== undefined) pairs.push([PROPERTY_UNIQ_KEY, input.uniqKey]);
  if (input.properties !== undefined) {
    for (const key of Object.keys(input.properties)) {
      const value = input.properties[key];
      if (typeof value !== 'string') {
        throw invalid(`property ${key} must be a string`, 'properties');
      }
      pairs.push([key, value]);
    }
  }
  return pairs.length === 0 ? null : pairs;
}

/**
 * The properties block: per pair a name length (u8), the name, a value length (u16 LE) and the
 * value, UTF-8. Sized first, then written into one buffer: no buffer per string.
 */
function encodeProperties(pairs: [string, string][]): Buffer {
  let size = 0;
  for (const [key, value] of pairs) {
    const k = Buffer.byteLength(key, 'utf8');
    const v = Buffer.byteLength(value, 'utf8');
    if (k === 0 || k > 0xff) {
      throw invalid(`property name ${describe(key)} is ${k} bytes: a property name is 1 to ` +
        '255 bytes (UTF-8)', key);
    }
    if (v > limits.maxPropertiesBytes) {
      const what = FIELD_OF_PROPERTY[key] ?? `property ${describe(key)}`;
      throw new PocketMQError('MESSAGE_TOO_LARGE', `${what}: ${v} bytes (UTF-8); ` +
        'properties, tags and keys together are at most ' +
        `${limits.maxPropertiesBytes} bytes (64 KiB - 1)`,
      { limit: limits.maxPropertiesBytes, actual: v, property: key });
    }
    size += 3 + k + v;
  }
  if (size > limits.maxPropertiesBytes) {
    throw new PocketMQError('MESSAGE_TOO_LARGE', `properties, tags and keys take ${size} ` +
      `bytes encoded (3 bytes + name + value each); at most ${limits.maxPropertiesBytes} ` +
      '(64 KiB - 1)', { limit: limits.maxPropertiesBytes, actual: size, property: 'properties' });
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const [key, value] of pairs) {
    const k = out.write(key, at + 1, 'utf8');
    out[at] = k;
    at += 1 + k;
    const v = value.length === 0 ? 0 : out.write(value, at + 2, 'utf8');
    out.writeUInt16LE(v, at);
    at += 2 + v;
  }
  assert(at === size, 'properties size mismatch');
  return out;
}

/** Validate and encode once, before any byte is written, so bad input never half-writes. */
export function prepareRecord(input: RecordInput,
  maxBodyBytes = limits.maxBodyBytes): PreparedRecord {
  const body = input.body;
  if (!(body instanceof Uint8Array) || body.length === 0) {
    throw invalid('body must be a non-empty Buffer or Uint8Array', 'body');
  }
  if (body.length > maxBodyBytes) {
    throw bodyTooLarge(body.length, maxBodyBytes,
      typeof input.topic === 'string' ? input.topic : undefined);
  }
  const topic = topicBytes(input.topic);
  const q = input.queueId;
  if (!Number.isInteger(q) || q < 0 || q >= limits.maxQueuesPerTopic) {
    throw invalid(q === undefined ? 'queueId is missing'
      : `queueId ${String(q)} is not an integer in [0, ${limits.maxQueuesPerTopic - 1}] (a ` +
        `topic has at most ${limits.maxQueuesPerTopic} queues)`, 'queueId');
  }
  const sysFlag = input.sysFlag ?? 0;
  if (!Number.isInteger(sysFlag) || sysFlag < 0 || sysFlag >= SYSFLAG_BATCH_MORE) {
    throw invalid(`sysFlag ${sysFlag} is out of range`, 'sysFlag');
  }
  const reconsume = input.reconsumeTimes ?? 0;
  if (!Number.isInteger(reconsume) || reconsume < 0 || reconsume > limits.maxReconsumeTimes) {
    throw invalid(`reconsumeTimes ${reconsume} is out of range`, 'reconsumeTimes');
  }
  const tagsOnly = input.keys === undefined && input.uniqKey === undefined &&
    input.properties === undefined;
  const propertiesBytes = tagsOnly ? tagsBlock(input.tags) : encodePairs(propertyPairs(input));
  const size = HEADER_BYTES + body.length + 1 + topic.length + 2 + (propertiesBytes?.length ?? 0);
  return { input, size, topicBytes: topic, propertiesBytes,
    tagsCode: recordTagsCode(input.tags, input.properties) };
}

function encodePairs(pairs: [string, string][] | null): Buffer | null {
  return pairs === null ? null : encodeProperties(pairs);
}

/** Encoded property blocks of messages that carry only a tag: few tags, many messages. */
const tagsBlocks = new Map<string, Buffer>();
const TAGS_CACHE_MAX = 1024;

function tagsBlock(tags: string | undefined): Buffer | null {
  if (tags === undefined || tags === '') return null;
  let block = tagsBlocks.get(tags);
  if (block !== undefined) return block;
  checkType(tags, 'string', 'tags');
  block = encodeProperties([[PROPERTY_TAGS, tags]]);
  if (tagsBlocks.size >= TAGS_CACHE_MAX) tagsBlocks.clear();
  tagsBlocks.set(tags, block);
  return block;
}

/** The ConsumeQueue tag code of a tag: Java's String.hashCode, 0 for none (RocketMQ's rule). */
export function tagsCodeOf(tags: string | undefined): number {
  return tags === undefined || tags === '' ? 0 : javaHashCode(tags);
}

/** A record's ConsumeQueue tag code: TAGS_CODE when it holds an integer, else its tag's hash. */
export function recordTagsCode(tags: string | undefined,
  properties: Readonly<Record<string, string>> | null | undefined): number {
  const code = properties?.[PROPERTY_TAGS_CODE];
  if (code !== undefined && /^-?\d{1,16}$/.test(code)) return Number(code);
  return tagsCodeOf(tags);
}

/** Where a record lands and when (tests encode records from one). */
export interface Placement {
  readonly queueOffset: number;
  readonly physicalOffset: number;
  readonly storeTimestamp: number;
  /** More records of the same append follow (SYSFLAG_BATCH_MORE). */
  readonly more?: boolean;
}

/**
 * Encode a prepared record at `at` in `buf` (viewed through `dv`) and seal it with its checksum:
 * placed at `queueOffset` of its queue and `physicalOffset` of the log, stored at
 * `storeTimestamp`; `more` = more records of the same append follow (SYSFLAG_BATCH_MORE).
 * Returns the checksum, which identifies the record's exact bytes.
 */
export function encodeRecord(buf: Buffer, dv: DataView, at: number, rec: PreparedRecord,
  queueOffset: number, physicalOffset: number, storeTimestamp: number, more: boolean): number {
  if (rec.encoded !== undefined) {
    return placeEncoded(buf, dv, at, rec, queueOffset, physicalOffset, storeTimestamp, more);
  }
  const input = rec.input;
  const body = input.body;
  dv.setUint32(at + 4, rec.size, true);
  dv.setUint32(at + 8, RECORD_MAGIC, true);
  dv.setUint32(at + 12, (input.sysFlag ?? 0) + (more ? SYSFLAG_BATCH_MORE : 0), true);
  dv.setUint16(at + 16, input.queueId, true);
  dv.setUint16(at + 18, input.reconsumeTimes ?? 0, true);
  dv.setUint32(at + 20, body.length, true);
  writeU64(dv, at + 24, queueOffset);
  writeU64(dv, at + 32, physicalOffset);
  writeU64(dv, at + 40, input.bornTimestamp ?? storeTimestamp);
  writeU64(dv, at + 48, storeTimestamp);
  writeU64(dv, at + 56, input.preparedTxOffset ?? 0);
  let p = at + HEADER_BYTES;
  buf.set(body, p);
  p += body.length;
  buf[p++] = rec.topicBytes.length;
  p = copyShort(rec.topicBytes, buf, p);
  const props = rec.propertiesBytes;
  dv.setUint16(p, props === null ? 0 : props.length, true);
  p += 2;
  if (props !== null) p = copyShort(props, buf, p);
  assert(p - at === rec.size, 'record size mismatch');
  const sum = checksum32(buf, at + 4, at + rec.size, dv);
  dv.setUint32(at, sum, true);
  return sum;
}

/** `encodeRecord` of a record encoded already: its bytes copied, placed and sealed. */
function placeEncoded(buf: Buffer, dv: DataView, at: number, rec: PreparedRecord,
  queueOffset: number, physicalOffset: number, storeTimestamp: number, more: boolean): number {
  const bytes = rec.encoded!;
  assert(bytes.length === rec.size, 'encoded record size mismatch');
  buf.set(bytes, at);
  assert(dv.getUint32(at + 4, true) === rec.size && dv.getUint32(at + 8, true) === RECORD_MAGIC,
    'encoded record frame mismatch');
  const sysFlag = dv.getUint32(at + 12, true) & ~SYSFLAG_BATCH_MORE;
  dv.setUint32(at + 12, sysFlag + (more ? SYSFLAG_BATCH_MORE : 0), true);
  writeU64(dv, at + 24, queueOffset);
  writeU64(dv, at + 32, physicalOffset);
  writeU64(dv, at + 48, storeTimestamp);
  const sum = checksum32(buf, at + 4, at + rec.size, dv);
  dv.setUint32(at, sum, true);
  return sum;
}

/**
 * Copy `src` into `dst` at `at`; returns the position after it. A topic or a tag block is a few
 * bytes: a loop copies those in half the time a `set` call takes.
 */
function copyShort(src: Uint8Array, dst: Uint8Array, at: number): number {
  const n = src.length;
  if (n > 32) {
    dst.set(src, at);
    return at + n;
  }
  for (let i = 0; i < n; i++) dst[at + i] = src[i]!;
  return at + n;
}

export function encodeBlank(buf: Buffer, dv: DataView, at: number, remaining: number): void {
  assert(remaining >= BLANK_BYTES, 'blank marker needs 12 bytes');
  dv.setUint32(at + 4, remaining, true);
  dv.setUint32(at + 8, BLANK_MAGIC, true);
  dv.setUint32(at, checksum32(buf, at + 4, at + BLANK_BYTES, dv), true);
}
