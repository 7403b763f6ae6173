/**
 * The owner socket's wire protocol (lib/remote/protocol.ts): values with binary bodies travel
 * whole, a stream split anywhere gives the same frames, and random, truncated or hostile bytes
 * are a ProtocolError, never a crash, a hang or a frame made up.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { limits } from '../../lib/limits.js';
import {
  decodeFrame, encodeFrame, FrameKind, FrameReader, PROTOCOL_VERSION, ProtocolError,
} from '../../lib/remote/protocol.js';
import { readSplit } from './split-stream.js';

const value = fc.letrec((tie) => ({
  leaf: fc.oneof(fc.string(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(), fc.constant(null), fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a))),
  node: fc.oneof({ depthSize: 'small' }, tie('leaf'), fc.array(tie('node'), { maxLength: 5 }),
    fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('$b', '$$b', '$')),
      tie('node'), { maxKeys: 5 })),
})).node;

function normal(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) =>
    (Object.is(x, -0) ? 0 : x)));
}

describe('frames', () => {
  it('round-trip any value, Buffers as Buffers', () => {
    fc.assert(fc.property(value, fc.integer({ min: 0, max: 0xffff_ffff }), (v, id) => {
      const frame = decodeFrame(encodeFrame(FrameKind.Request, id, v));
      expect(frame.kind).toBe(FrameKind.Request);
      expect(frame.id).toBe(id);
      expect(normal(frame.value)).toEqual(normal(v));
    }), { numRuns: 300 });
    const body = Buffer.from('hello');
    const got = decodeFrame(encodeFrame(FrameKind.Result, 1, { value: { body } })).value as
      { value: { body: Buffer } };
    expect(Buffer.isBuffer(got.value.body)).toBe(true);
    expect(got.value.body.toString()).toBe('hello');
  });

  it('come out of a stream split anywhere, in order', () => {
    fc.assert(fc.property(fc.array(value, { minLength: 1, maxLength: 6 }),
      fc.array(fc.nat(200), { maxLength: 20 }), (values, cuts) => {
        const bytes = Buffer.concat(values.map((v, i) => encodeFrame(FrameKind.Event, i, v)));
        const out = readSplit(bytes, cuts).map((f) => f.value);
        expect(out.map(normal)).toEqual(values.map(normal));
      }), { numRuns: 200 });
  });

  it('refuse random bytes, truncations and flipped bytes with a ProtocolError', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (bytes) => {
      try {
        new FrameReader().push(Buffer.from(bytes));
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError);
      }
    }), { numRuns: 500 });
    fc.assert(fc.property(value, fc.nat(), fc.nat(255), (v, where, byte) => {
      const frame = Buffer.from(encodeFrame(FrameKind.Request, 7, v));
      const cut = frame.subarray(0, where % frame.length);
      expect(() => decodeFrame(cut)).toThrow(ProtocolError);
      frame[4 + (where % (frame.length - 4))] = byte;
      try {
        decodeFrame(frame);
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError);
      }
    }), { numRuns: 500 });
  });

  it('refuse another version, an unknown kind, a dangling attachment and an oversized length',
    () => {
      const frame = encodeFrame(FrameKind.Hello, 0, { version: PROTOCOL_VERSION });
      const other = Buffer.from(frame);
      other[4] = PROTOCOL_VERSION + 1;
      expect(() => decodeFrame(other)).toThrow(/protocol version/);
      const kind = Buffer.from(frame);
      kind[5] = 99;
      expect(() => decodeFrame(kind)).toThrow(/unknown frame kind/);
      // A value cannot pass for an attachment; forged bytes that point past them are refused.
      expect(decodeFrame(encodeFrame(FrameKind.Request, 1, { $b: 3 })).value).toEqual({ $b: 3 });
      const forged = encodeFrame(FrameKind.Request, 1, { x: 'AAAAAAAAAA' });
      const text = forged.toString('latin1').replace('{"x":"AAAAAAAAAA"}', '{"$b":3}          ');
      expect(() => decodeFrame(Buffer.from(text, 'latin1'))).toThrow(ProtocolError);
      const huge = Buffer.alloc(8);
      huge.writeUInt32LE(limits.maxFrameBytes + 1, 0);
      expect(() => new FrameReader().push(huge)).toThrow(/out of range/);
      expect(() => encodeFrame(FrameKind.Request, 1,
        Buffer.alloc(limits.maxFrameBytes))).toThrow(ProtocolError);
    });
});
