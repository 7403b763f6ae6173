/**
 * The wire protocol between a store's owner process and its clients (several processes on one
 * data directory): frames on a local stream socket.
 *
 * Frame layout (little-endian):
 *
 *   u32 length      bytes after this field (the frame's rest), at most limits.maxFrameBytes
 *   u8  version     PROTOCOL_VERSION; another is refused
 *   u8  kind        FrameKind
 *   u32 id          request id (responses and cancels name it), member id (events), else 0
 *
 * then, for Sends and SendResults, a binary payload (send-codec.ts); for every other kind:
 *
 *   u32 jsonBytes   the JSON part's length
 *   ... json        UTF-8 JSON: the frame's value, with binary values replaced by {"$b": n}
 *                   (and every object key that starts with `$` given one more `$`, so no
 *                   value can pass for an attachment)
 *   u32 count       binary attachments
 *   count x (u32 length, bytes)
 *
 * Decoding checks every length against what the frame holds and against the limits: a
 * malformed, oversized or unknown frame is a ProtocolError and the connection is closed; it
 * harms nothing else.
 */
import { limits } from '../limits.js';
import { ProtocolError } from './protocol-error.js';
import { decodeSendResults, decodeSends } from './send-codec.js';

/** 2: sends and their results travel in binary batches (Sends, SendResults). */
export const PROTOCOL_VERSION = 2;
export const HEADER_BYTES = 4 + 1 + 1 + 4;

export enum FrameKind {
  /** client -> owner: { version, pid } */
  Hello = 1,
  /** owner -> client: the broker's info and topics */
  Welcome = 2,
  /** client -> owner: { method, args } */
  Request = 3,
  /** owner -> client: { value } */
  Result = 4,
  /** owner -> client: { code, message, fields, retriable } */
  Failure = 5,
  /** client -> owner: abort the request `id` (its AbortSignal) */
  Cancel = 6,
  /** owner -> client: a group member's callback, or a topic change: { event, args } */
  Event = 7,
  /** owner -> client: refused (another protocol version), then closed */
  Refused = 8,
  /** client -> owner: send requests, each with its request id (binary; id 0) */
  Sends = 9,
  /** owner -> client: results and failures of sends, each with its request id (binary; id 0) */
  SendResults = 10,
}

const KINDS = new Set<number>(Object.values(FrameKind).filter((v) => typeof v === 'number'));

export { ProtocolError };

export interface Frame {
  readonly kind: FrameKind;
  readonly id: number;
  readonly value: unknown;
}

/**
 * A Sends or SendResults frame: `frame` is the whole frame, its payload written after
 * HEADER_BYTES left free (send-codec.ts); the header is written here.
 */
export function sealBinaryFrame(kind: FrameKind.Sends | FrameKind.SendResults,
  frame: Buffer): Buffer {
  if (frame.length - 4 > limits.maxFrameBytes) {
    throw new ProtocolError(`frame of ${frame.length - 4} bytes; at most ${limits.maxFrameBytes}`);
  }
  let at = frame.writeUInt32LE(frame.length - 4, 0);
  at = frame.writeUInt8(PROTOCOL_VERSION, at);
  at = frame.writeUInt8(kind, at);
  frame.writeUInt32LE(0, at);
  return frame;
}

/** Encode a frame: its value's Buffers and Uint8Arrays travel as attachments. */
export function encodeFrame(kind: FrameKind, id: number, value: unknown): Buffer {
  const blobs: Uint8Array[] = [];
  const json = Buffer.from(JSON.stringify(wire(value ?? null, blobs)), 'utf8');
  let size = HEADER_BYTES + 4 + json.length + 4;
  for (const b of blobs) size += 4 + b.length;
  if (size - 4 > limits.maxFrameBytes) {
    throw new ProtocolError(`frame of ${size - 4} bytes; at most ${limits.maxFrameBytes}`);
  }
  const out = Buffer.allocUnsafe(size);
  let at = out.writeUInt32LE(size - 4, 0);
  at = out.writeUInt8(PROTOCOL_VERSION, at);
  at = out.writeUInt8(kind, at);
  at = out.writeUInt32LE(id >>> 0, at);
  at = out.writeUInt32LE(json.length, at);
  at += json.copy(out, at);
  at = out.writeUInt32LE(blobs.length, at);
  for (const b of blobs) {
    at = out.writeUInt32LE(b.length, at);
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/**
 * `v` as JSON will carry it: binary values moved to `blobs` (as {"$b": n}), object keys that
 * start with `$` given one more. Buffers are taken before JSON.stringify would turn each into
 * an array of numbers.
 */
function wire(v: unknown, blobs: Uint8Array[]): unknown {
  if (v instanceof Uint8Array) {
    blobs.push(v);
    return { $b: blobs.length - 1 };
  }
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => wire(x, blobs));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === undefined || typeof x === 'function') continue;
    Object.defineProperty(out, k.startsWith('$') ? `$${k}` : k,
      { value: wire(x, blobs), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Deepest nesting a decoded value may have (ours are a few levels deep). */
const MAX_DEPTH = 64;

/** The other way: attachments put back, escaped keys as they were sent. */
function unwire(v: unknown, blobs: readonly Buffer[], depth: number): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (depth > MAX_DEPTH) throw new ProtocolError(`value nested deeper than ${MAX_DEPTH}`);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = unwire(v[i], blobs, depth + 1);
    return v;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && keys[0] === '$b') {
    const ref = o.$b;
    const blob = Number.isInteger(ref) ? blobs[ref as number] : undefined;
    if (blob === undefined) throw new ProtocolError(`attachment ${String(ref)} does not exist`);
    return blob;
  }
  const escaped = keys.some((k) => k.startsWith('$'));
  const out: Record<string, unknown> = escaped ? {} : o;
  for (const k of keys) {
    const x = unwire(o[k], blobs, depth + 1);
    if (!escaped) {
      o[k] = x;
      continue;
    }
    Object.defineProperty(out, k.startsWith('$$') ? k.slice(1) : k,
      { value: x, enumerable: true, writable: true, configurable: true });
  }
  return out;
}


/**
 * Splits a byte stream into frames. `push` bytes as they arrive; it returns the whole frames
 * they complete, and throws ProtocolError on the first malformed one.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peek(4);
      const length = head.readUInt32LE(0);
      if (length < HEADER_BYTES - 4 + 8 || length > limits.maxFrameBytes) {
        throw new ProtocolError(`frame length ${length} out of range`);
      }
      if (this.buffered < 4 + length) break;
      frames.push(decodeFrame(this.take(4 + length)));
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const frame = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return frame;
  }
}

/** Decode one whole frame (its length field included). */
export function decodeFrame(frame: Buffer): Frame {
  if (frame.length < HEADER_BYTES + 8) throw new ProtocolError('frame too short');
  const length = frame.readUInt32LE(0);
  if (length !== frame.length - 4) throw new ProtocolError('frame length mismatch');
  const version = frame.readUInt8(4);
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(`protocol version ${version}; this side speaks ${PROTOCOL_VERSION}`);
  }
  const kind = frame.readUInt8(5);
  if (!KINDS.has(kind)) throw new ProtocolError(`unknown frame kind ${kind}`);
  const id = frame.readUInt32LE(6);
  if (kind === FrameKind.Sends) {
    return { kind, id, value: decodeSends(frame, HEADER_BYTES, frame.length) };
  }
  if (kind === FrameKind.SendResults) {
    return { kind, id, value: decodeSendResults(frame, HEADER_BYTES, frame.length) };
  }
  let at = HEADER_BYTES;
  const jsonBytes = frame.readUInt32LE(at);
  at += 4;
  if (jsonBytes > frame.length - at - 4) throw new ProtocolError('JSON part overruns the frame');
  const json = frame.toString('utf8', at, at + jsonBytes);
  at += jsonBytes;
  const count = frame.readUInt32LE(at);
  at += 4;
  if (count > (frame.length - at) / 4) throw new ProtocolError('too many attachments');
  const blobs: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 4 > frame.length) throw new ProtocolError('attachment header overruns the frame');
    const n = frame.readUInt32LE(at);
    at += 4;
    if (n > frame.length - at) throw new ProtocolError('attachment overruns the frame');
    // A copy: the frame's buffer is reused by the reader's next frames.
    blobs.push(Buffer.from(frame.subarray(at, at + n)));
    at += n;
  }
  if (at !== frame.length) throw new ProtocolError('bytes after the last attachment');
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new ProtocolError(`JSON part does not parse: ${(err as Error).message}`);
  }
  // Only a frame with attachments or escaped keys needs a walk (most have neither).
  if (blobs.length > 0 || json.includes('"$')) value = unwire(value, blobs, 0);
  return { kind, id, value };
}
