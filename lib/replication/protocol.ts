/**
 * The replication wire protocol, version 2: one TCP connection per follower, frames both ways.
 *
 * Frame (little-endian):
 *
 *    0        4    5    6         8        12
 *    +--------+----+----+---------+--------+------------------+
 *    | magic  |ver |type| 0 (u16) | length | payload[length]  |
 *    +--------+----+----+---------+--------+------------------+
 *
 * magic 'PMQR'; ver = PROTOCOL_VERSION; the reserved u16 is 0; length <= the receiver's limit
 * (limits.maxReplicationFrameBytes, limits.maxReplicationHelloBytes before a HELLO is accepted).
 * Anything else ends the connection. Integers are u64 as two u32 (lo, hi), below 2^53.
 *
 *   HELLO          F->M  u32 segmentSize, u64 minOffset, u64 maxOffset, u8 hasLast,
 *                        u64 lastOffset, u32 lastChecksum, u32 lastSize, u16 tokenLength, token,
 *                        epochs (the follower's master epochs, epochs.ts)
 *   WELCOME        M->F  u8 outcome (0 stream from `start`, 1 diverged: probe, 2 diverged: cut
 *                        the log at `start`, found by the epochs), u64 masterMin, u64 masterMax,
 *                        u64 start, epochs (the master's; outcome 0 only, else none)
 *   REFUSED        M->F  u16 reasonLength, reason (UTF-8); the master closes after it
 *   DATA           M->F  u64 offset, u64 masterMax, frames (whole commit-log frames; none: a
 *                        heartbeat)
 *   ACK            F->M  u64 offset (the follower's log holds everything below it)
 *   CONFIG_REQUEST F->M  (empty)
 *   CONFIG         M->F  u8 count, then per file: u8 nameLength, name, u32 length, bytes
 *   PROBE          F->M  u16 count, then per record: u64 offset, u32 checksum, u32 size
 *   PROBE_RESULT   M->F  u16 matched (how many of the probe's records, from the first, match)
 *   STATUS_REQUEST C->M  u16 tokenLength, token: a status client (`pocketmq replication status
 *                        --master`) instead of HELLO
 *   STATUS         M->C  u32 length, the master's status as JSON (UTF-8); the master closes
 *
 * epochs: u16 count (<= limits.maxReplicationEpochs), then per epoch u32 epoch, u64 start, both
 * ascending. Version 1 (no epochs) is refused by the header check.
 */
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import type { Epoch } from './epochs.js';

export const FRAME_MAGIC = 0x52514d50; // the bytes 'PMQR'
export const PROTOCOL_VERSION = 2;
export const FRAME_HEADER_BYTES = 12;

export const FrameType = Object.freeze({
  HELLO: 1, WELCOME: 2, REFUSED: 3, DATA: 4, ACK: 5, CONFIG_REQUEST: 6, CONFIG: 7, PROBE: 8,
  PROBE_RESULT: 9, STATUS_REQUEST: 10, STATUS: 11,
});
const LAST_TYPE = 11;

export interface Frame {
  readonly type: number;
  readonly payload: Buffer;
}

export interface FrameRef {
  readonly offset: number;
  readonly checksum: number;
  readonly size: number;
}

export interface Hello {
  readonly segmentSize: number;
  readonly minOffset: number;
  readonly maxOffset: number;
  readonly last: FrameRef | null;
  readonly token: string;
  /** The follower's master epochs (none: older data). */
  readonly epochs?: readonly Epoch[];
}

/** What a WELCOME tells a follower to do. */
export const Outcome = Object.freeze({ STREAM: 0, PROBE: 1, CUT: 2 });

export interface Welcome {
  readonly outcome: number;
  readonly masterMin: number;
  readonly masterMax: number;
  /** STREAM: the first offset shipped; CUT: where the follower cuts its log. */
  readonly start: number;
  /** The master's epochs (STREAM). */
  readonly epochs?: readonly Epoch[];
}

export interface Data {
  readonly offset: number;
  readonly masterMax: number;
  readonly frames: Buffer;
}

export interface ConfigFile {
  readonly name: string;
  readonly bytes: Buffer;
}

/** Bytes of one config file in a CONFIG frame at most (a JsonConfigFile's own limit). */
export const MAX_CONFIG_BYTES = 64 * 2 ** 20;
const MAX_REASON_BYTES = 1024;

/** A peer sent something this protocol does not allow: the connection ends. */
export function protocolError(message: string): PocketMQError {
  return new PocketMQError('CORRUPT_DATA', `replication protocol: ${message}`);
}

const TWO32 = 2 ** 32;

/** Builds a payload: fields appended in order. */
class Out {
  private readonly parts: Buffer[] = [];
  u8(v: number): this { return this.raw(Buffer.of(v)); }
  u16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16LE(v, 0);
    return this.raw(b);
  }
  u32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(v >>> 0, 0);
    return this.raw(b);
  }
  u64(v: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeUInt32LE(v % TWO32, 0);
    b.writeUInt32LE(Math.floor(v / TWO32), 4);
    return this.raw(b);
  }
  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  epochs(list: readonly Epoch[]): this {
    this.u16(list.length);
    for (const e of list) this.u32(e.epoch).u64(e.start);
    return this;
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Reads a payload, every read bounds-checked. */
class In {
  private at = 0;
  constructor(private readonly buf: Buffer, private readonly what: string) {}
  private need(n: number): number {
    if (this.at + n > this.buf.length) throw protocolError(`${this.what} is cut short`);
    const at = this.at;
    this.at += n;
    return at;
  }
  u8(): number { return this.buf[this.need(1)]!; }
  u16(): number { return this.buf.readUInt16LE(this.need(2)); }
  u32(): number { return this.buf.readUInt32LE(this.need(4)); }
  u64(): number {
    const at = this.need(8);
    const hi = this.buf.readUInt32LE(at + 4);
    if (hi >= 2 ** 21) throw protocolError(`${this.what} holds an offset beyond 2^53`);
    return hi * TWO32 + this.buf.readUInt32LE(at);
  }
  raw(n: number): Buffer { return this.buf.subarray(this.need(n), this.at); }
  rest(): Buffer { return this.buf.subarray(this.need(this.buf.length - this.at)); }
  epochs(): Epoch[] {
    const count = this.u16();
    if (count > limits.maxReplicationEpochs) throw protocolError(`${this.what}: ${count} epochs`);
    const list: Epoch[] = [];
    for (let i = 0; i < count; i++) {
      const e = { epoch: this.u32(), start: this.u64() };
      const prev = list.at(-1);
      if (prev !== undefined && (e.epoch <= prev.epoch || e.start <= prev.start)) {
        throw protocolError(`${this.what}: epochs do not ascend`);
      }
      list.push(e);
    }
    return list;
  }
  end(): void {
    if (this.at !== this.buf.length) throw protocolError(`${this.what} has trailing bytes`);
  }
}

/** A whole frame: header and payload. */
export function encodeFrame(type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  writeHeader(frame, type, payload.length);
  payload.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

function writeHeader(buf: Buffer, type: number, length: number): void {
  buf.writeUInt32LE(FRAME_MAGIC, 0);
  buf[4] = PROTOCOL_VERSION;
  buf[5] = type;
  buf.writeUInt16LE(0, 6);
  buf.writeUInt32LE(length, 8);
}

export function encodeHello(h: Hello): Buffer {
  const token = Buffer.from(h.token, 'utf8');
  return encodeFrame(FrameType.HELLO, new Out().u32(h.segmentSize).u64(h.minOffset)
    .u64(h.maxOffset).u8(h.last === null ? 0 : 1).u64(h.last?.offset ?? 0)
    .u32(h.last?.checksum ?? 0).u32(h.last?.size ?? 0).u16(token.length).raw(token)
    .epochs(h.epochs ?? []).bytes());
}

export function decodeHello(payload: Buffer): Hello {
  const r = new In(payload, 'HELLO');
  const segmentSize = r.u32();
  const minOffset = r.u64();
  const maxOffset = r.u64();
  const hasLast = r.u8();
  const last = { offset: r.u64(), checksum: r.u32(), size: r.u32() };
  const tokenLength = r.u16();
  if (hasLast > 1 || tokenLength > limits.maxReplicationTokenBytes || minOffset > maxOffset) {
    throw protocolError('HELLO has invalid fields');
  }
  const token = r.raw(tokenLength).toString('utf8');
  const epochs = r.epochs();
  r.end();
  return { segmentSize, minOffset, maxOffset, last: hasLast === 1 ? last : null, token, epochs };
}

export function encodeWelcome(w: Welcome): Buffer {
  return encodeFrame(FrameType.WELCOME, new Out().u8(w.outcome).u64(w.masterMin)
    .u64(w.masterMax).u64(w.start).epochs(w.epochs ?? []).bytes());
}

export function decodeWelcome(payload: Buffer): Welcome {
  const r = new In(payload, 'WELCOME');
  const outcome = r.u8();
  const w = { outcome, masterMin: r.u64(), masterMax: r.u64(), start: r.u64(),
    epochs: r.epochs() };
  r.end();
  if (outcome > Outcome.CUT || w.masterMin > w.masterMax) {
    throw protocolError('WELCOME has invalid fields');
  }
  return w;
}

export function encodeRefused(reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, MAX_REASON_BYTES);
  return encodeFrame(FrameType.REFUSED, new Out().u16(text.length).raw(text).bytes());
}

export function decodeRefused(payload: Buffer): string {
  const r = new In(payload, 'REFUSED');
  const length = r.u16();
  if (length > MAX_REASON_BYTES) throw protocolError('REFUSED reason is too long');
  const reason = r.raw(length).toString('utf8');
  r.end();
  return reason;
}

/** A DATA frame as header and body parts: the frames are not copied again. */
export function encodeData(offset: number, masterMax: number, frames: Buffer): Buffer[] {
  const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 16);
  writeHeader(head, FrameType.DATA, 16 + frames.length);
  head.writeUInt32LE(offset % TWO32, 12);
  head.writeUInt32LE(Math.floor(offset / TWO32), 16);
  head.writeUInt32LE(masterMax % TWO32, 20);
  head.writeUInt32LE(Math.floor(masterMax / TWO32), 24);
  return frames.length === 0 ? [head] : [head, frames];
}

export function decodeData(payload: Buffer): Data {
  const r = new In(payload, 'DATA');
  return { offset: r.u64(), masterMax: r.u64(), frames: r.rest() };
}

export function encodeAck(offset: number): Buffer {
  return encodeFrame(FrameType.ACK, new Out().u64(offset).bytes());
}

export function decodeAck(payload: Buffer): number {
  const r = new In(payload, 'ACK');
  const offset = r.u64();
  r.end();
  return offset;
}

export function encodeConfig(files: readonly ConfigFile[]): Buffer {
  const out = new Out().u8(files.length);
  for (const f of files) {
    const name = Buffer.from(f.name, 'utf8');
    out.u8(name.length).raw(name).u32(f.bytes.length).raw(f.bytes);
  }
  return encodeFrame(FrameType.CONFIG, out.bytes());
}

export function decodeConfig(payload: Buffer): ConfigFile[] {
  const r = new In(payload, 'CONFIG');
  const count = r.u8();
  const files: ConfigFile[] = [];
  for (let i = 0; i < count; i++) {
    const name = r.raw(r.u8()).toString('utf8');
    const length = r.u32();
    if (length > MAX_CONFIG_BYTES) throw protocolError(`CONFIG file ${name} is too large`);
    files.push({ name, bytes: r.raw(length) });
  }
  r.end();
  return files;
}

export function encodeProbe(records: readonly FrameRef[]): Buffer {
  const out = new Out().u16(records.length);
  for (const c of records) out.u64(c.offset).u32(c.checksum).u32(c.size);
  return encodeFrame(FrameType.PROBE, out.bytes());
}

export function decodeProbe(payload: Buffer): FrameRef[] {
  const r = new In(payload, 'PROBE');
  const count = r.u16();
  if (count === 0 || count > limits.replicationProbeCandidates) {
    throw protocolError(`PROBE of ${count} records`);
  }
  const records: FrameRef[] = [];
  for (let i = 0; i < count; i++) {
    const c = { offset: r.u64(), checksum: r.u32(), size: r.u32() };
    if (i > 0 && c.offset <= records[i - 1]!.offset) {
      throw protocolError('PROBE offsets do not ascend');
    }
    records.push(c);
  }
  r.end();
  return records;
}

export function encodeProbeResult(matched: number): Buffer {
  return encodeFrame(FrameType.PROBE_RESULT, new Out().u16(matched).bytes());
}

export function decodeProbeResult(payload: Buffer): number {
  const r = new In(payload, 'PROBE_RESULT');
  const matched = r.u16();
  r.end();
  return matched;
}

export function encodeStatusRequest(token: string): Buffer {
  const text = Buffer.from(token, 'utf8');
  return encodeFrame(FrameType.STATUS_REQUEST, new Out().u16(text.length).raw(text).bytes());
}

export function decodeStatusRequest(payload: Buffer): string {
  const r = new In(payload, 'STATUS_REQUEST');
  const length = r.u16();
  if (length > limits.maxReplicationTokenBytes) throw protocolError('the token is too long');
  const token = r.raw(length).toString('utf8');
  r.end();
  return token;
}

export function encodeStatus(status: unknown): Buffer {
  const text = Buffer.from(JSON.stringify(status), 'utf8');
  return encodeFrame(FrameType.STATUS, new Out().u32(text.length).raw(text).bytes());
}

/** The status object (a JSON object; anything else is a protocol error). */
export function decodeStatus(payload: Buffer): Record<string, unknown> {
  const r = new In(payload, 'STATUS');
  const text = r.raw(r.u32()).toString('utf8');
  r.end();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw protocolError('STATUS is not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw protocolError('STATUS is not a JSON object');
  }
  return value as Record<string, unknown>;
}

/**
 * Cuts a byte stream into frames. `push` what the socket delivers; `next` returns each whole
 * frame (its payload a view when it arrived in one chunk, else one copy), or null until more
 * bytes come; it throws on a header this protocol does not allow (magic, version, type,
 * reserved bits, or a length over `maxLength`), before any byte of such a payload is held.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private header: { type: number; length: number } | null = null;

  constructor(public maxLength: number = limits.maxReplicationFrameBytes) {}

  /** Bytes received and not yet handed out as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  next(): Frame | null {
    if (this.header === null) {
      if (this.buffered < FRAME_HEADER_BYTES) return null;
      const head = this.take(FRAME_HEADER_BYTES);
      this.header = checkHeader(head, this.maxLength);
    }
    const { type, length } = this.header;
    if (this.buffered < length) return null;
    this.header = null;
    return { type, payload: this.take(length) };
  }

  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0];
    if (n === 0) return Buffer.alloc(0);
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const chunk = this.chunks[0]!;
      const part = Math.min(chunk.length, n - at);
      chunk.copy(out, at, 0, part);
      at += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    return out;
  }
}

function checkHeader(head: Buffer, maxLength: number): { type: number; length: number } {
  if (head.readUInt32LE(0) !== FRAME_MAGIC) throw protocolError('bad frame magic');
  if (head[4] !== PROTOCOL_VERSION) {
    throw protocolError(`version ${head[4]}; this build speaks ${PROTOCOL_VERSION}`);
  }
  const type = head[5]!;
  if (type < 1 || type > LAST_TYPE) throw protocolError(`unknown frame type ${type}`);
  if (head.readUInt16LE(6) !== 0) throw protocolError('reserved bits set');
  const length = head.readUInt32LE(8);
  if (length > maxLength) {
    throw protocolError(`a frame of ${length} bytes; at most ${maxLength}`);
  }
  return { type, length };
}
