/**
 * Reading records back: frame checks for recovery and readers, and decoding into objects.
 * The layout is in record-codec.ts. A check never throws on bad bytes: it says what it saw.
 */
import {
  BLANK_BYTES, BLANK_MAGIC, HEADER_BYTES, MIN_RECORD_BYTES, MAX_RECORD_BYTES, PROPERTY_KEYS,
  PROPERTY_TAGS, PROPERTY_UNIQ_KEY, RECORD_MAGIC, readU64,
} from './record-codec.js';
import { CorruptDataError } from '../errors.js';
import { limits } from '../limits.js';
import { checksum32 } from './checksum.js';

/** The result of looking at `at`: a record's size (> 0), or one of these. */
export const FRAME_EMPTY = 0; // zeros: the end of the data
export const FRAME_BLANK = -1; // end-of-segment marker: continue in the next segment
export const FRAME_BAD = -2; // torn or garbled

export interface FrameCheck {
  /** Record size, or FRAME_EMPTY / FRAME_BLANK / FRAME_BAD. */
  kind: number;
  /** Why a frame is bad, for the report. */
  reason: string;
}

/** Where `frameKind` puts why a frame is empty or bad: an object its caller owns and reuses. */
export interface FrameReason {
  reason: string;
}

/**
 * Check the frame at `at`: `end` is the end of the segment's bytes in `buf` (its logical end: a
 * short segment file's bytes past `buf` are zeros); `physicalOffset` is the global offset `at`
 * stands for (records carry it, so a stale record is caught).
 * Returns the record's size (> 0) or FRAME_EMPTY / FRAME_BLANK / FRAME_BAD; for the last two, the
 * reason goes into `why` when given: no object per record on the paths that walk millions
 * (recovery, reads).
 */
export function frameKind(buf: Buffer, dv: DataView, at: number, end: number,
  physicalOffset: number, verifyChecksum = true, why?: FrameReason): number {
  const limit = Math.min(end, buf.length);
  if (at + 8 > limit) {
    if (at + 8 > end) return empty(why, 'end of segment');
    // A short file: its missing part reads as zeros, what is there must be zeros too.
    for (let i = at; i < limit; i++) if (buf[i] !== 0) return bad(why, 'frame cut at the file end');
    return empty(why, 'zeros');
  }
  const size = dv.getUint32(at + 4, true);
  const sum = dv.getUint32(at, true);
  if (size === 0 && sum === 0) return empty(why, 'zeros');
  if (at + 12 > limit) return bad(why, 'frame cut at segment end');
  const magic = dv.getUint32(at + 8, true);
  if (magic === BLANK_MAGIC) {
    if (size !== end - at || size < BLANK_BYTES) return bad(why, 'blank size');
    if (checksum32(buf, at + 4, at + BLANK_BYTES, dv) !== sum) return bad(why, 'blank checksum');
    return FRAME_BLANK;
  }
  if (magic !== RECORD_MAGIC) return bad(why, 'magic');
  if (size < MIN_RECORD_BYTES || size > MAX_RECORD_BYTES || at + size > limit) {
    return bad(why, `size ${size}`);
  }
  if (readU64(dv, at + 32) !== physicalOffset) return bad(why, 'offset');
  // The other u64 fields (queue offset, born and store time, prepared offset) hold safe integers.
  if ((dv.getUint32(at + 28, true) | dv.getUint32(at + 44, true) | dv.getUint32(at + 52, true) |
    dv.getUint32(at + 60, true)) >>> 21 !== 0) {
    return bad(why, 'u64');
  }
  if (verifyChecksum && checksum32(buf, at + 4, at + size, dv) !== sum) return bad(why, 'checksum');
  if (!lengthsAgree(buf, dv, at, size)) return bad(why, 'lengths');
  if (!topicValid(buf, at + HEADER_BYTES + dv.getUint32(at + 20, true))) return bad(why, 'topic');
  return size;
}

function empty(why: FrameReason | undefined, reason: string): number {
  if (why !== undefined) why.reason = reason;
  return FRAME_EMPTY;
}

function bad(why: FrameReason | undefined, reason: string): number {
  if (why !== undefined) why.reason = reason;
  return FRAME_BAD;
}

/** `frameKind` with its reason, as one object (tests and rare paths). */
export function checkFrame(buf: Buffer, dv: DataView, at: number, end: number,
  physicalOffset: number, verifyChecksum = true): FrameCheck {
  const why: FrameReason = { reason: '' };
  const kind = frameKind(buf, dv, at, end, physicalOffset, verifyChecksum, why);
  return { kind, reason: kind <= FRAME_EMPTY ? why.reason : '' };
}

/** Bytes a topic name may hold: A-Z a-z 0-9 _ % | - (record-codec.ts TOPIC_PATTERN). */
const TOPIC_BYTES = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_%|-') {
  TOPIC_BYTES[c.charCodeAt(0)] = 1;
}

/**
 * The topic at `topicAt` (inside a frame whose lengths agree) is a valid topic name. It becomes
 * a directory name when the record is dispatched: a record re-sealed with `../x` for a topic
 * must not make recovery write outside the store.
 */
function topicValid(buf: Buffer, topicAt: number): boolean {
  const length = buf[topicAt]!;
  if (length === 0 || length > limits.maxTopicBytes) return false;
  for (let i = topicAt + 1; i <= topicAt + length; i++) {
    if (TOPIC_BYTES[buf[i]!] !== 1) return false;
  }
  return true;
}

function lengthsAgree(buf: Buffer, dv: DataView, at: number, size: number): boolean {
  const bodyLen = dv.getUint32(at + 20, true);
  const topicAt = at + HEADER_BYTES + bodyLen;
  if (topicAt + 3 > at + size) return false;
  const topicLen = buf[topicAt] ?? 0;
  const propsAt = topicAt + 1 + topicLen;
  const end = at + size;
  if (propsAt + 2 > end || propsAt + 2 + dv.getUint16(propsAt, true) !== end) return false;
  // Every property entry ends inside the block: decoders then never read past the record.
  for (let p = propsAt + 2; p < end;) {
    const valueLengthAt = p + 1 + buf[p]!;
    if (valueLengthAt + 2 > end) return false;
    p = valueLengthAt + 2 + dv.getUint16(valueLengthAt, true);
    if (p > end) return false;
  }
  return true;
}

/** A record as stored. `body` is a view of the segment when read zero-copy, else a copy. */
export interface StoredRecord {
  readonly checksum: number;
  readonly size: number;
  readonly sysFlag: number;
  readonly topic: string;
  readonly queueId: number;
  readonly queueOffset: number;
  readonly physicalOffset: number;
  readonly bornTimestamp: number;
  readonly storeTimestamp: number;
  readonly reconsumeTimes: number;
  readonly preparedTxOffset: number;
  readonly body: Buffer;
  readonly tags: string | undefined;
  readonly keys: string[];
  readonly uniqKey: string | undefined;
  /** Every property, well-known ones included. */
  readonly properties: Record<string, string>;
}

/**
 * The properties block in [from, to) as an object. checkFrame has checked the entries of a
 * record's block; any other block whose entries overrun `to` is CORRUPT_DATA.
 */
export function decodeProperties(buf: Buffer, from: number, to: number): Record<string, string> {
  const out: Record<string, string> = {};
  let p = from;
  while (p < to) {
    const kLen = buf[p] ?? 0;
    if (p + 3 + kLen > to || p + 3 + kLen + buf.readUInt16LE(p + 1 + kLen) > to) {
      throw new CorruptDataError(`properties entry at byte ${p} runs past the block end ${to}`);
    }
    const key = buf.toString('utf8', p + 1, p + 1 + kLen);
    p += 1 + kLen;
    const vLen = buf.readUInt16LE(p);
    const value = buf.toString('utf8', p + 2, p + 2 + vLen);
    if (key === '__proto__') {
      // A property named __proto__ stays a plain own property.
      Object.defineProperty(out, key, { value, enumerable: true, writable: true,
        configurable: true });
    } else {
      out[key] = value;
    }
    p += 2 + vLen;
  }
  return out;
}

/**
 * A decoded record. Header fields and the body are read at once; topic and properties (strings,
 * the costly part) are decoded on first use, from the bytes the record was read from.
 */
class DecodedRecord implements StoredRecord {
  readonly checksum: number;
  readonly size: number;
  readonly sysFlag: number;
  readonly queueId: number;
  readonly reconsumeTimes: number;
  readonly queueOffset: number;
  readonly physicalOffset: number;
  readonly bornTimestamp: number;
  readonly storeTimestamp: number;
  readonly preparedTxOffset: number;
  readonly body: Buffer;
  // Private fields (#) stay out of equality checks and enumeration: a record compares and
  // prints by its own fields, not by the segment it was read from.
  readonly #buf: Buffer;
  readonly #topicAt: number;
  #topic: string | undefined;
  #properties: Record<string, string> | undefined;

  constructor(buf: Buffer, dv: DataView, at: number, copyBody: boolean) {
    this.#buf = buf;
    this.checksum = dv.getUint32(at, true);
    this.size = dv.getUint32(at + 4, true);
    this.sysFlag = dv.getUint32(at + 12, true) & 0x3fffffff; // without SYSFLAG_BATCH_MORE (bit 30)
    this.queueId = dv.getUint16(at + 16, true);
    this.reconsumeTimes = dv.getUint16(at + 18, true);
    this.queueOffset = readU64(dv, at + 24);
    this.physicalOffset = readU64(dv, at + 32);
    this.bornTimestamp = readU64(dv, at + 40);
    this.storeTimestamp = readU64(dv, at + 48);
    this.preparedTxOffset = readU64(dv, at + 56);
    const bodyAt = at + HEADER_BYTES;
    const bodyEnd = bodyAt + dv.getUint32(at + 20, true);
    const view = buf.subarray(bodyAt, bodyEnd);
    this.body = copyBody ? Buffer.from(view) : view;
    this.#topicAt = bodyEnd;
  }

  get topic(): string {
    if (this.#topic === undefined) {
      const at = this.#topicAt;
      this.#topic = this.#buf.toString('latin1', at + 1, at + 1 + (this.#buf[at] ?? 0));
    }
    return this.#topic;
  }

  get properties(): Record<string, string> {
    if (this.#properties === undefined) {
      const propsAt = this.#topicAt + 1 + (this.#buf[this.#topicAt] ?? 0);
      const propsLen = this.#buf.readUInt16LE(propsAt);
      this.#properties = propsLen === 0 ? {}
        : decodeProperties(this.#buf, propsAt + 2, propsAt + 2 + propsLen);
    }
    return this.#properties;
  }

  get tags(): string | undefined {
    return this.properties[PROPERTY_TAGS];
  }

  get keys(): string[] {
    const keys = this.properties[PROPERTY_KEYS];
    return keys === undefined || keys === '' ? [] : keys.split(' ');
  }

  get uniqKey(): string | undefined {
    return this.properties[PROPERTY_UNIQ_KEY];
  }
}

/** Decode a record that `checkFrame` accepted. */
export function decodeRecord(buf: Buffer, dv: DataView, at: number,
  copyBody: boolean): StoredRecord {
  return new DecodedRecord(buf, dv, at, copyBody);
}

/** Fields recovery needs to re-dispatch a record, without decoding the body. */
export interface RecordHead {
  readonly queueId: number;
  readonly queueOffset: number;
  readonly storeTimestamp: number;
  readonly topic: string;
  readonly propertiesAt: number;
  readonly propertiesLength: number;
}

/** Topic strings by their bytes: a scan of many records makes each topic's string once. */
const topicNames = new Map<number, { bytes: Buffer; name: string }>();
const TOPIC_NAMES_MAX = 4096;
let lastTopic: { bytes: Buffer; name: string } | null = null;

function sameBytes(buf: Buffer, from: number, bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (buf[from + i] !== bytes[i]) return false;
  return true;
}

function topicName(buf: Buffer, from: number, length: number): string {
  const last = lastTopic;
  if (last !== null && last.bytes.length === length && sameBytes(buf, from, last.bytes)) {
    return last.name;
  }
  let h = length;
  for (let i = from; i < from + length; i++) h = (Math.imul(h, 31) + buf[i]!) | 0;
  let hit = topicNames.get(h);
  if (hit === undefined || hit.bytes.length !== length || !sameBytes(buf, from, hit.bytes)) {
    hit = { bytes: Buffer.from(buf.subarray(from, from + length)),
      name: buf.toString('latin1', from, from + length) };
    if (topicNames.size >= TOPIC_NAMES_MAX) topicNames.clear();
    topicNames.set(h, hit);
  }
  lastTopic = hit;
  return hit.name;
}

export function readHead(buf: Buffer, dv: DataView, at: number): RecordHead {
  const bodyLen = dv.getUint32(at + 20, true);
  const topicAt = at + HEADER_BYTES + bodyLen;
  const topicLen = buf[topicAt] ?? 0;
  const propsAt = topicAt + 1 + topicLen;
  return {
    queueId: dv.getUint16(at + 16, true),
    queueOffset: readU64(dv, at + 24),
    storeTimestamp: readU64(dv, at + 48),
    topic: topicName(buf, topicAt + 1, topicLen),
    propertiesAt: propsAt + 2,
    propertiesLength: dv.getUint16(propsAt, true),
  };
}
