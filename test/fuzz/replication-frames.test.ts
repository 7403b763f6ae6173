/**
 * Fuzzing the replication protocol's decoders (lib/replication/protocol.ts): valid frames cut
 * into any chunks decode to what was sent; random, mutated or truncated bytes make the frame
 * decoder and every payload decoder either return or throw CORRUPT_DATA (which closes the
 * connection), never anything else, and the decoder never holds a frame over its limit.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeAck, decodeConfig, decodeData, decodeHello, decodeProbe, decodeProbeResult,
  decodeRefused, decodeStatus, decodeStatusRequest, decodeWelcome, encodeAck, encodeConfig,
  encodeData, encodeHello, encodeProbe, encodeStatus, encodeStatusRequest, FRAME_HEADER_BYTES,
  FrameDecoder, type Frame,
} from '../../lib/replication/protocol.js';
import { coded, fuzz } from './fuzz-support.js';

const offsetArb = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const refArb = fc.record({ offset: offsetArb, checksum: fc.nat({ max: 0xffff_ffff }),
  size: fc.nat({ max: 0xffff_ffff }) });

/** One valid frame of any type, as its bytes. */
const frameArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.record({ segmentSize: fc.nat({ max: 0xffff_ffff }), minOffset: offsetArb,
    last: fc.option(refArb, { nil: null }), token: fc.string({ maxLength: 40 }) })
    .map((h) => encodeHello({ ...h, maxOffset: h.minOffset })),
  fc.tuple(offsetArb, offsetArb, fc.uint8Array({ maxLength: 300 }))
    .map(([o, m, b]) => Buffer.concat(encodeData(o, m, Buffer.from(b)))),
  offsetArb.map(encodeAck),
  fc.array(fc.record({ name: fc.string({ maxLength: 20 }), bytes: fc.uint8Array({ maxLength: 64 })
    .map((b) => Buffer.from(b)) }), { maxLength: 3 }).map(encodeConfig),
  fc.uniqueArray(refArb, { minLength: 1, maxLength: 8, selector: (r) => r.offset })
    .map((refs) => encodeProbe([...refs].sort((a, b) => a.offset - b.offset))),
  fc.string({ maxLength: 40 }).map(encodeStatusRequest),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.nat()).map(encodeStatus),
);

const DECODERS: ((payload: Buffer) => unknown)[] = [decodeHello, decodeWelcome, decodeRefused,
  decodeData, decodeAck, decodeConfig, decodeProbe, decodeProbeResult, decodeStatusRequest,
  decodeStatus];

/** Everything the decoder hands out from `chunks`, up to its first error. */
function drain(chunks: readonly Buffer[], maxLength: number): Frame[] {
  const decoder = new FrameDecoder(maxLength);
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    for (let f = decoder.next(); f !== null; f = decoder.next()) {
      expect(f.payload.length).toBeLessThanOrEqual(maxLength);
      frames.push(f);
    }
  }
  return frames;
}

/** `bytes` cut at the given points. */
function cut(bytes: Buffer, points: readonly number[]): Buffer[] {
  const sorted = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of [...sorted, bytes.length]) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  return out;
}

describe('replication frames', () => {
  it('decode as sent, whatever chunks they arrive in', () => {
    fc.assert(fc.property(fc.array(frameArb, { minLength: 1, maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 12 }), (frames, points) => {
        const stream = Buffer.concat(frames);
        const got = drain(cut(stream, points), 1 << 20);
        expect(got.map((f) => f.payload)).toEqual(frames.map((f) =>
          f.subarray(FRAME_HEADER_BYTES)));
        expect(got.map((f) => f.type)).toEqual(frames.map((f) => f[5]));
      }), fuzz(101, 300));
  });

  it('random and mutated streams end in CORRUPT_DATA or wait for more, nothing else', () => {
    fc.assert(fc.property(fc.array(frameArb, { maxLength: 4 }),
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 8 }),
      fc.uint8Array({ maxLength: 64 }), fc.array(fc.nat(), { maxLength: 6 }),
      fc.constantFrom(16, 100, 4096), (frames, edits, tail, points, maxLength) => {
        const stream = Buffer.concat([...frames, Buffer.from(tail)]);
        for (const [at, value] of edits) {
          if (stream.length > 0) stream[at % stream.length] = value;
        }
        const outcome = coded(['CORRUPT_DATA'], () => drain(cut(stream, points), maxLength));
        if (outcome.ok) {
          for (const f of outcome.value) {
            for (const d of DECODERS) coded(['CORRUPT_DATA'], () => d(f.payload));
          }
        }
      }), fuzz(102, 600));
  });

  it('payload decoders take any bytes: a value or CORRUPT_DATA', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      for (const d of DECODERS) coded(['CORRUPT_DATA'], () => d(Buffer.from(bytes)));
    }), fuzz(103, 600));
  });
});
