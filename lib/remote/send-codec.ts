/**
 * Binary payloads of the two frames that carry sends (protocol.ts): `Sends`, many send
 * requests of a client in one frame, and `SendResults`, the owner's answers to many of them in
 * one frame. No JSON on this path: a send costs a few field writes and a body copy each way.
 *
 * Sends payload (little-endian):
 *
 *   u32 count
 *   count x (u32 id, u32 queueId, f64 compressOver, f64 delayTimeLevel, f64 deliverAt,
 *            str topic, str? tags, strs? keys, (str, str)s? properties,
 *            str producerGroup, str producerInstance, bytes body)
 *
 * SendResults payload:
 *
 *   u32 count
 *   count x (u32 id, u8 1, u8 status, u32 queueId, f64 queueOffset, f64 commitLogOffset,
 *            f64 storeTimestamp, str msgId, str topic)
 *          | (u32 id, u8 0, str failure)       the failure as JSON (connection.ts WireError)
 *
 * `str` is u32 byte length + UTF-8, `bytes` u32 length + bytes; a `?` field's length
 * 0xffffffff means absent; `strs` and `(str, str)s` are a u32 count then the items. An absent
 * delay or delivery time is NaN. Decoding checks every length against what is left, and
 * refuses unknown statuses, impossible counts and trailing bytes (ProtocolError).
 * A request or a result that does not fit this shape (a field of another type) travels as a
 * JSON frame instead: `binarySend` and `binaryResult` say which.
 */
import type { SendRequest, SendResult } from '../broker/port.js';
import type { WireError } from './wire-error.js';
import { ProtocolError } from './protocol-error.js';

const ABSENT = 0xffff_ffff;
const STATUSES = ['SEND_OK', 'FLUSH_DISK_TIMEOUT', 'FLUSH_SLAVE_TIMEOUT',
  'SLAVE_NOT_AVAILABLE'] as const;
/** Fixed bytes of one request (id, queueId, three f64, seven lengths) and one result. */
const SEND_FIXED = 4 + 4 + 3 * 8 + 7 * 4;
const RESULT_FIXED = 4 + 1 + 1 + 4 + 3 * 8 + 2 * 4;

export interface SendEntry {
  readonly id: number;
  readonly request: SendRequest;
}

export type SendOutcome =
  | { readonly id: number; readonly result: SendResult }
  | { readonly id: number; readonly failure: WireError };

const isStr = (v: unknown): v is string => typeof v === 'string';
const isU32 = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 &&
  (v as number) <= ABSENT;

/** The bytes `request` takes in a Sends payload, or -1 when it must travel as JSON. */
export function binarySend(request: SendRequest): number {
  const { message: m, producer } = request;
  if (typeof m !== 'object' || m === null || !(m.body instanceof Uint8Array) ||
    !isStr(m.topic) || !(m.tags === undefined || isStr(m.tags)) || !isU32(request.queueId) ||
    typeof request.compressOver !== 'number' || typeof producer !== 'object' ||
    producer === null || !isStr(producer.group) || !isStr(producer.instanceName) ||
    !(m.delayTimeLevel === undefined || typeof m.delayTimeLevel === 'number') ||
    !(m.deliverAt === undefined || typeof m.deliverAt === 'number')) return -1;
  let n = SEND_FIXED + Buffer.byteLength(m.topic) + m.body.length +
    Buffer.byteLength(producer.group) + Buffer.byteLength(producer.instanceName);
  if (m.tags !== undefined) n += Buffer.byteLength(m.tags);
  if (m.keys !== undefined) {
    if (!Array.isArray(m.keys)) return -1;
    for (const k of m.keys) {
      if (!isStr(k)) return -1;
      n += 4 + Buffer.byteLength(k);
    }
  }
  if (m.properties !== undefined) {
    if (typeof m.properties !== 'object' || m.properties === null) return -1;
    for (const [k, v] of Object.entries(m.properties)) {
      if (!isStr(v)) return -1;
      n += 8 + Buffer.byteLength(k) + Buffer.byteLength(v);
    }
  }
  return n;
}

/** The bytes `result` takes in a SendResults payload, or -1 when it must travel as JSON. */
export function binaryResult(result: unknown): number {
  const r = result as Partial<SendResult> | null;
  if (typeof r !== 'object' || r === null || !STATUSES.includes(r.status as never) ||
    !isStr(r.msgId) || !isStr(r.topic) || !isU32(r.queueId) ||
    typeof r.queueOffset !== 'number' || typeof r.commitLogOffset !== 'number' ||
    typeof r.storeTimestamp !== 'number') return -1;
  return RESULT_FIXED + Buffer.byteLength(r.msgId) + Buffer.byteLength(r.topic);
}

/** Writes into a buffer of the right size (the sizes above), from `at`. */
class Writer {
  constructor(readonly out: Buffer, public at: number) {}
  u8(v: number): void {
    this.at = this.out.writeUInt8(v, this.at);
  }
  u32(v: number): void {
    this.at = this.out.writeUInt32LE(v, this.at);
  }
  f64(v: number | undefined): void {
    this.at = this.out.writeDoubleLE(v ?? NaN, this.at);
  }
  str(s: string | undefined): void {
    if (s === undefined) {
      this.u32(ABSENT);
      return;
    }
    const n = this.out.write(s, this.at + 4, 'utf8');
    this.u32(n);
    this.at += n;
  }
  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.out.set(b, this.at);
    this.at += b.length;
  }
}

/**
 * A Sends payload of `entries`, whose sizes `binarySend` gave (their sum is `bytes`), after
 * `reserve` bytes left free for the frame's header.
 */
export function encodeSends(entries: readonly SendEntry[], bytes: number,
  reserve: number): Buffer {
  const w = new Writer(Buffer.allocUnsafe(reserve + 4 + bytes), reserve);
  w.u32(entries.length);
  for (const { id, request: r } of entries) {
    const m = r.message;
    w.u32(id);
    w.u32(r.queueId);
    w.f64(r.compressOver);
    w.f64(m.delayTimeLevel);
    w.f64(m.deliverAt);
    w.str(m.topic);
    w.str(m.tags);
    if (m.keys === undefined) w.u32(ABSENT);
    else {
      w.u32(m.keys.length);
      for (const k of m.keys) w.str(k);
    }
    if (m.properties === undefined) w.u32(ABSENT);
    else {
      const props = Object.entries(m.properties);
      w.u32(props.length);
      for (const [k, v] of props) {
        w.str(k);
        w.str(v);
      }
    }
    w.str(r.producer.group);
    w.str(r.producer.instanceName);
    w.bytes(m.body);
  }
  return w.out;
}

/** A SendResults payload of `outcomes` (results whose `binaryResult` was not -1), after
 * `reserve` bytes left free. */
export function encodeSendResults(outcomes: readonly SendOutcome[], reserve: number): Buffer {
  const failures = outcomes.map((o) => ('failure' in o ? JSON.stringify(o.failure) : ''));
  let bytes = 4;
  outcomes.forEach((o, i) => {
    bytes += 'failure' in o ? 4 + 1 + 4 + Buffer.byteLength(failures[i]!)
      : binaryResult(o.result);
  });
  const w = new Writer(Buffer.allocUnsafe(reserve + bytes), reserve);
  w.u32(outcomes.length);
  outcomes.forEach((o, i) => {
    w.u32(o.id);
    if ('failure' in o) {
      w.u8(0);
      w.str(failures[i]);
      return;
    }
    const r = o.result;
    w.u8(1);
    w.u8(STATUSES.indexOf(r.status));
    w.u32(r.queueId);
    w.f64(r.queueOffset);
    w.f64(r.commitLogOffset);
    w.f64(r.storeTimestamp);
    w.str(r.msgId);
    w.str(r.topic);
  });
  return w.out;
}

/** Reads a payload, every length checked against what is left. */
class Reader {
  private at: number;
  constructor(private readonly b: Buffer, from: number, private readonly end: number) {
    this.at = from;
  }
  private need(n: number, what: string): void {
    if (n > this.end - this.at) throw new ProtocolError(`${what} overruns the frame`);
  }
  u8(): number {
    this.need(1, 'a field');
    return this.b.readUInt8(this.at++);
  }
  u32(): number {
    this.need(4, 'a field');
    const v = this.b.readUInt32LE(this.at);
    this.at += 4;
    return v;
  }
  f64(): number {
    this.need(8, 'a field');
    const v = this.b.readDoubleLE(this.at);
    this.at += 8;
    return v;
  }
  /** A count of items of at least `min` bytes each, checked against what is left. */
  count(min: number): number {
    const n = this.u32();
    if (n !== ABSENT && n * min > this.end - this.at) throw new ProtocolError('count too large');
    return n;
  }
  str(): string {
    const n = this.u32();
    this.need(n, 'a string');
    const s = this.b.toString('utf8', this.at, this.at + n);
    this.at += n;
    return s;
  }
  optStr(): string | undefined {
    this.need(4, 'a field');
    if (this.b.readUInt32LE(this.at) !== ABSENT) return this.str();
    this.at += 4;
    return undefined;
  }
  bytes(): Buffer {
    const n = this.u32();
    this.need(n, 'a body');
    // A copy: the frame's buffer is reused by the reader's next frames.
    const out = Buffer.from(this.b.subarray(this.at, this.at + n));
    this.at += n;
    return out;
  }
  done(): void {
    if (this.at !== this.end) throw new ProtocolError('bytes after the last entry');
  }
}

function optional(v: number): number | undefined {
  return Number.isNaN(v) ? undefined : v;
}

function properties(r: Reader): Record<string, string> | undefined {
  const n = r.count(8);
  if (n === ABSENT) return undefined;
  const out: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    // Own properties, `__proto__` included (as JSON.parse makes them).
    Object.defineProperty(out, r.str(), { value: r.str(), enumerable: true, writable: true,
      configurable: true });
  }
  return out;
}

/** The entries of a Sends payload (`frame[from, end)`); messages are checked by the owner. */
export function decodeSends(frame: Buffer, from: number, end: number): SendEntry[] {
  const r = new Reader(frame, from, end);
  const count = r.count(SEND_FIXED);
  if (count === ABSENT) throw new ProtocolError('count too large');
  const entries: SendEntry[] = [];
  for (let i = 0; i < count; i++) {
    const id = r.u32();
    const queueId = r.u32();
    const compressOver = r.f64();
    const delayTimeLevel = optional(r.f64());
    const deliverAt = optional(r.f64());
    const topic = r.str();
    const tags = r.optStr();
    const nKeys = r.count(4);
    const keys = nKeys === ABSENT ? undefined : Array.from({ length: nKeys }, () => r.str());
    const props = properties(r);
    const producer = { group: r.str(), instanceName: r.str() };
    const body = r.bytes();
    entries.push({ id, request: { queueId, compressOver, producer, message: { topic, body,
      tags, keys, properties: props, delayTimeLevel, deliverAt } } });
  }
  r.done();
  return entries;
}

/** The outcomes of a SendResults payload (`frame[from, end)`). */
export function decodeSendResults(frame: Buffer, from: number, end: number): SendOutcome[] {
  const r = new Reader(frame, from, end);
  const count = r.count(4 + 1 + 4);
  if (count === ABSENT) throw new ProtocolError('count too large');
  const outcomes: SendOutcome[] = [];
  for (let i = 0; i < count; i++) {
    const id = r.u32();
    const tag = r.u8();
    if (tag === 0) {
      outcomes.push({ id, failure: parseFailure(r.str()) });
      continue;
    }
    const status = STATUSES[r.u8()];
    if (tag !== 1 || status === undefined) throw new ProtocolError('unknown send outcome');
    const queueId = r.u32();
    const queueOffset = r.f64();
    const commitLogOffset = r.f64();
    const storeTimestamp = r.f64();
    outcomes.push({ id, result: { status, msgId: r.str(), topic: r.str(), queueId,
      queueOffset, commitLogOffset, storeTimestamp } });
  }
  r.done();
  return outcomes;
}

function parseFailure(json: string): WireError {
  try {
    return JSON.parse(json) as WireError;
  } catch (err) {
    throw new ProtocolError(`a failure does not parse: ${(err as Error).message}`);
  }
}
