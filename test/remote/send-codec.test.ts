/**
 * The binary frames of sends (lib/remote/send-codec.ts): many send requests in one Sends frame
 * and many outcomes in one SendResults frame travel whole, through a stream split anywhere; a
 * request or result of another shape is left to the JSON frames; random, truncated or flipped
 * bytes are a ProtocolError, never a crash or a frame made up.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SendRequest } from '../../lib/broker/port.js';
import {
  decodeFrame, FrameKind, HEADER_BYTES, ProtocolError, sealBinaryFrame,
} from '../../lib/remote/protocol.js';
import {
  binaryResult, binarySend, encodeSendResults, encodeSends, type SendEntry, type SendOutcome,
} from '../../lib/remote/send-codec.js';
import { readSplit } from './split-stream.js';

const text = fc.string({ maxLength: 12, unit: 'binary' });
const request: fc.Arbitrary<SendRequest> = fc.record({
  queueId: fc.nat(), compressOver: fc.oneof(fc.nat(), fc.constant(Infinity)),
  producer: fc.record({ group: text, instanceName: text }),
  message: fc.record({
    topic: text, body: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
    tags: fc.option(text, { nil: undefined }),
    keys: fc.option(fc.array(text, { maxLength: 3 }), { nil: undefined }),
    properties: fc.option(fc.dictionary(fc.oneof(text, fc.constant('__proto__')), text,
      { maxKeys: 3 }), { nil: undefined }),
    delayTimeLevel: fc.option(fc.integer({ min: 1, max: 18 }), { nil: undefined }),
    deliverAt: fc.option(fc.nat(), { nil: undefined }),
  }),
});
const entries = fc.array(fc.record({ id: fc.nat(0xffff_fffe), request }),
  { minLength: 1, maxLength: 5 });
const outcome: fc.Arbitrary<SendOutcome> = fc.oneof(
  fc.record({ id: fc.nat(0xffff_fffe), result: fc.record({
    status: fc.constantFrom('SEND_OK', 'FLUSH_DISK_TIMEOUT', 'FLUSH_SLAVE_TIMEOUT',
      'SLAVE_NOT_AVAILABLE'),
    msgId: text, topic: text, queueId: fc.nat(), queueOffset: fc.nat(),
    commitLogOffset: fc.nat(), storeTimestamp: fc.nat() }) }),
  fc.record({ id: fc.nat(0xffff_fffe), failure: fc.record({
    code: fc.constantFrom('MESSAGE_TOO_LARGE', 'OWNER_UNAVAILABLE'), message: text,
    fields: fc.record({ retriable: fc.boolean() }) }) }) as fc.Arbitrary<SendOutcome>,
);
const outcomes = fc.array(outcome, { minLength: 1, maxLength: 5 });

function sendsFrame(list: readonly SendEntry[]): Buffer {
  const bytes = list.reduce((n, e) => n + binarySend(e.request), 0);
  return sealBinaryFrame(FrameKind.Sends, encodeSends(list, bytes, HEADER_BYTES));
}

function resultsFrame(list: readonly SendOutcome[]): Buffer {
  return sealBinaryFrame(FrameKind.SendResults, encodeSendResults(list, HEADER_BYTES));
}

/** What a request is once it has crossed: absent fields absent, properties own keys. */
function plain(e: SendEntry): unknown {
  const m = e.request.message;
  return { id: e.id, queueId: e.request.queueId, compressOver: e.request.compressOver,
    producer: { ...e.request.producer }, topic: m.topic, body: [...m.body], tags: m.tags,
    keys: m.keys, delayTimeLevel: m.delayTimeLevel, deliverAt: m.deliverAt,
    properties: m.properties === undefined ? undefined : Object.entries(m.properties) };
}

describe('send frames', () => {
  it('carry requests and outcomes whole, Buffers as Buffers', () => {
    fc.assert(fc.property(entries, outcomes, (sends, answers) => {
      const got = decodeFrame(sendsFrame(sends));
      expect(got.kind).toBe(FrameKind.Sends);
      const decoded = got.value as SendEntry[];
      expect(decoded.map(plain)).toEqual(sends.map(plain));
      for (const e of decoded) expect(Buffer.isBuffer(e.request.message.body)).toBe(true);
      const back = decodeFrame(resultsFrame(answers));
      expect(back.kind).toBe(FrameKind.SendResults);
      expect(back.value).toEqual(answers);
    }), { numRuns: 300 });
  });

  it('come out of a stream split anywhere, in order', () => {
    fc.assert(fc.property(entries, outcomes, fc.array(fc.nat(200), { maxLength: 20 }),
      (sends, answers, cuts) => {
        const bytes = Buffer.concat([sendsFrame(sends), resultsFrame(answers)]);
        const out = readSplit(bytes, cuts).map((f) => f.value);
        expect((out[0] as SendEntry[]).map(plain)).toEqual(sends.map(plain));
        expect(out[1]).toEqual(answers);
      }), { numRuns: 200 });
  });

  it('leave another shape to JSON frames', () => {
    const ok: SendRequest = { queueId: 0, compressOver: 4096,
      producer: { group: 'g', instanceName: 'i' },
      message: { topic: 't', body: Buffer.from('x'), tags: undefined, keys: undefined,
        properties: undefined } };
    expect(binarySend(ok)).toBeGreaterThan(0);
    expect(binarySend({ ...ok, message: { ...ok.message, topic: 3 as never } })).toBe(-1);
    expect(binarySend({ ...ok, message: { ...ok.message, keys: [1] as never } })).toBe(-1);
    expect(binarySend({ ...ok, message: { ...ok.message,
      properties: { a: 1 } as never } })).toBe(-1);
    expect(binarySend({ ...ok, queueId: -1 })).toBe(-1);
    expect(binaryResult({ status: 'SENT', msgId: 'm', topic: 't', queueId: 0, queueOffset: 0,
      commitLogOffset: 0, storeTimestamp: 0 })).toBe(-1);
    expect(binaryResult(null)).toBe(-1);
  });

  it('refuse random, truncated and flipped bytes with a ProtocolError', () => {
    const head = (kind: number, payload: Uint8Array): Buffer => {
      const frame = Buffer.alloc(HEADER_BYTES + payload.length);
      frame.set(payload, HEADER_BYTES);
      return sealBinaryFrame(kind as FrameKind.Sends, frame);
    };
    fc.assert(fc.property(fc.constantFrom(FrameKind.Sends, FrameKind.SendResults),
      fc.uint8Array({ maxLength: 300 }), (kind, payload) => {
        try {
          decodeFrame(head(kind, payload));
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
        }
      }), { numRuns: 500 });
    fc.assert(fc.property(entries, outcomes, fc.nat(), fc.nat(255), (sends, answers, where,
      byte) => {
      for (const frame of [sendsFrame(sends), resultsFrame(answers)]) {
        expect(() => decodeFrame(frame.subarray(0, where % frame.length))).toThrow(ProtocolError);
        // A payload cut short inside a frame whose length says so.
        const cut = Buffer.from(frame.subarray(0,
          HEADER_BYTES + (where % (frame.length - HEADER_BYTES))));
        cut.writeUInt32LE(cut.length - 4, 0);
        expect(() => decodeFrame(cut)).toThrow(ProtocolError);
        const longer = Buffer.concat([frame, Buffer.from([byte])]);
        longer.writeUInt32LE(longer.length - 4, 0);
        expect(() => decodeFrame(longer)).toThrow(ProtocolError);
        frame[HEADER_BYTES + (where % (frame.length - HEADER_BYTES))] = byte;
        try {
          decodeFrame(frame);
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
        }
      }
    }), { numRuns: 500 });
  });
});
