/**
 * Compressed bodies: a producer deflates bodies over `compressMsgBodyOverHowmuch` (zlib level 5,
 * as RocketMQ's producer), and reads inflate them, with one zlib stream per direction and
 * thread, reset between bodies.
 *
 * `zlib.inflateSync` and `deflateSync` make a zlib stream for each call and free it after: for
 * a 16 KiB body that deflated well, making the stream costs more than the inflating (12.3 µs a
 * body here, 4.8 µs with one stream kept); deflating it, 32 µs against 26. Node 20 has no
 * public synchronous call on a stream that stays open, so this calls what the `…Sync`
 * functions themselves call: the stream's native handle (`_handle.reset()`,
 * `_handle.writeSync(…)`, and `_writeState`, where the handle leaves the bytes of output and
 * input it did not use). Those are Node's internals: before its first body each direction runs
 * a known one through them and compares with the `…Sync` function's result, and if they are
 * missing or answer wrong it uses the `…Sync` function for every body from then on. A body
 * zlib refuses goes to `inflateSync` as well, which throws zlib's own error, and the next body
 * gets a new stream.
 */
import type * as Zlib from 'node:zlib';
import { lazyBuiltin } from '../builtins.js';
import { limits } from '../limits.js';

/** node:zlib, loaded when a body is first compressed or inflated (over 4 KiB by default). */
export const zlib = lazyBuiltin<typeof Zlib>('node:zlib');

/** The native half of a zlib stream, as Node's own synchronous calls use it. */
interface NativeZlib {
  reset(): void;
  writeSync(flush: number, input: Uint8Array, inOffset: number, inLength: number,
    output: Uint8Array, outOffset: number, outLength: number): void;
}

interface KeptStream {
  readonly stream: Zlib.Inflate | Zlib.Deflate;
  readonly handle: NativeZlib;
  /** After a write: [output bytes left unused, input bytes left unread]. */
  readonly state: Uint32Array;
}

/** zlib level of stored bodies, as RocketMQ's producer. */
export const COMPRESS_LEVEL = 5;

/** Output goes into this scratch buffer (both directions), then is copied out at its size. */
const SCRATCH_BYTES = 64 * 1024;
let scratch: Buffer | null = null;

/** undefined: not made yet; null: the internals are unusable (the `…Sync` functions do it). */
let inflating: KeptStream | null | undefined;
let deflating: KeptStream | null | undefined;

/** Thrown for a body that would inflate past the largest body a producer may send. */
export class InflatedTooLargeError extends Error {}

/**
 * `packed` inflated (a zlib stream, as `zlib.inflateSync` takes it), in a buffer of its own.
 * Throws zlib's error for bytes that do not inflate, and `InflatedTooLargeError` when they would
 * inflate to more than `limits.maxBodyBytes` (no producer stored such a body).
 */
export function inflateBody(packed: Uint8Array): Buffer {
  if (inflating === undefined) {
    inflating = refusesGarbage() ? checked(newInflate, inflateSyncBounded) : null;
  }
  if (inflating === null) return inflateSyncBounded(packed);
  const { stream, handle, state } = inflating;
  const out = scratch ??= Buffer.allocUnsafeSlow(SCRATCH_BYTES);
  const z = zlib();
  let chunks: Buffer[] | null = null;
  let total = 0;
  let inOffset = 0;
  let inLength = packed.length;
  handle.reset();
  for (;;) {
    handle.writeSync(z.constants.Z_FINISH, packed, inOffset, inLength, out, 0, out.length);
    if (stream.destroyed) {
      // zlib refused the bytes and the stream destroyed itself: the next body gets a new one
      // (internals already checked), this one zlib's own error from inflateSync.
      inflating = attach(newInflate);
      return inflateSyncBounded(packed);
    }
    const produced = out.length - state[0]!;
    total += produced;
    if (total > limits.maxBodyBytes) throw new InflatedTooLargeError();
    if (state[0]! > 0) {
      // Output space left over with Z_FINISH: the stream ended (short input is an error above).
      if (chunks === null) return copyOf(out, produced);
      chunks.push(copyOf(out, produced));
      return Buffer.concat(chunks, total);
    }
    (chunks ??= []).push(copyOf(out, produced));
    inOffset += inLength - state[1]!;
    inLength = state[1]!;
  }
}

function copyOf(source: Buffer, length: number): Buffer {
  const copy = Buffer.allocUnsafe(length);
  source.copy(copy, 0, 0, length);
  return copy;
}

function inflateSyncBounded(packed: Uint8Array): Buffer {
  try {
    return zlib().inflateSync(packed, { maxOutputLength: limits.maxBodyBytes });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new InflatedTooLargeError();
    }
    throw err;
  }
}

/**
 * `body` deflated (zlib level `COMPRESS_LEVEL`) when that makes it smaller, else null: the
 * output may take at most `body.length` bytes, so an incompressible body stops there.
 */
export function deflateBody(body: Uint8Array): Buffer | null {
  if (deflating === undefined) deflating = checked(newDeflate, deflateSyncLevel);
  if (deflating === null || body.length > SCRATCH_BYTES) return smallerOrNull(body);
  const { stream, handle, state } = deflating;
  const out = scratch ??= Buffer.allocUnsafeSlow(SCRATCH_BYTES);
  const room = body.length;
  handle.reset();
  handle.writeSync(zlib().constants.Z_FINISH, body, 0, body.length, out, 0, room);
  if (stream.destroyed) {
    deflating = attach(newDeflate);
    return smallerOrNull(body);
  }
  // Room left over with Z_FINISH: the stream ended in fewer bytes than the body's. None left:
  // as many bytes or more (or it did not end: zlib reports a short stream as an error).
  return state[0]! > 0 ? copyOf(out, room - state[0]!) : null;
}

function smallerOrNull(body: Uint8Array): Buffer | null {
  const packed = deflateSyncLevel(body);
  return packed.length < body.length ? packed : null;
}

function deflateSyncLevel(body: Uint8Array): Buffer {
  return zlib().deflateSync(body, { level: COMPRESS_LEVEL });
}

function newInflate(): Zlib.Inflate {
  return new (zlib().Inflate)();
}

function newDeflate(): Zlib.Deflate {
  return new (zlib().Deflate)({ level: COMPRESS_LEVEL });
}

/**
 * A stream from `make` with its native handle and write state, or null when Node's internals are
 * not what this module knows. The stream reports zlib's errors as an 'error' event, on the next
 * tick, after it has destroyed itself (which the callers see at once): the event is ignored.
 */
function attach(make: () => Zlib.Inflate | Zlib.Deflate): KeptStream | null {
  try {
    const stream = make();
    stream.on('error', () => {});
    const internals = stream as unknown as { _handle?: Partial<NativeZlib>; _writeState?: unknown };
    const handle = internals._handle;
    const state = internals._writeState;
    if (handle === undefined || typeof handle.reset !== 'function' ||
      typeof handle.writeSync !== 'function' || !(state instanceof Uint32Array) ||
      state.length < 2) {
      return null;
    }
    return { stream, handle: handle as NativeZlib, state };
  } catch {
    return null;
  }
}

/**
 * An inflating stream fed bytes that are not zlib has destroyed itself when its handle's write
 * returns (how `inflateBody` tells zlib refused a body): checked once, on a stream made for it.
 */
function refusesGarbage(): boolean {
  try {
    const probe = attach(newInflate);
    if (probe === null) return false;
    const garbage = Buffer.from('not a zlib stream');
    probe.handle.writeSync(zlib().constants.Z_FINISH, garbage, 0, garbage.length,
      Buffer.alloc(64), 0, 64);
    return probe.stream.destroyed;
  } catch {
    return false;
  }
}

/**
 * A stream from `make`, kept if its handle gives what `viaSync` gives for a known input
 * (deflated once for an inflating stream), twice in a row; else null.
 */
function checked(make: () => Zlib.Inflate | Zlib.Deflate,
  viaSync: (input: Uint8Array) => Buffer): KeptStream | null {
  try {
    const z = zlib();
    const kept = attach(make);
    if (kept === null) return null;
    const { stream } = kept;
    const text = Buffer.from('pocketmq '.repeat(64));
    const input = stream instanceof z.Inflate ? deflateSyncLevel(text) : text;
    const expected = viaSync(input);
    const out = Buffer.alloc(expected.length + 16);
    for (let round = 0; round < 2; round++) {
      kept.handle.reset();
      kept.handle.writeSync(z.constants.Z_FINISH, input, 0, input.length, out, 0, out.length);
      if (stream.destroyed || kept.state[0] !== 16 || kept.state[1] !== 0 ||
        !out.subarray(0, expected.length).equals(expected)) {
        return null;
      }
    }
    return kept;
  } catch {
    return null;
  }
}
