/**
 * Fuzzing the commit-log record codec (lib/store/record-codec.ts, record-decoder.ts): any record
 * the encoder accepts decodes to what was put in; a damaged one is refused by checkFrame; and no
 * bytes at all, random, mutated or mutated and re-sealed with a correct checksum, make a decoder
 * throw anything but CORRUPT_DATA or read outside the frame checkFrame accepted.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checksum32 } from '../../lib/store/checksum.js';
import {
  BLANK_BYTES, dataView, encodeBlank, HEADER_BYTES, RECORD_MAGIC, type RecordInput,
} from '../../lib/store/record-codec.js';
import {
  checkFrame, decodeProperties, decodeRecord, FRAME_BAD, FRAME_BLANK, FRAME_EMPTY, readHead,
} from '../../lib/store/record-decoder.js';
import { errorOf } from '../support/errors.js';
import { fuzz } from './fuzz-support.js';
import {
  encodeAt, expectedProperties, placementArb, readAll, recordInputArb, sortedPairs,
} from './records.js';

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'u16'; at: number; value: number }
  | { kind: 'truncate'; keep: number };

/** Header fields worth hitting on purpose: size, magic, sysFlag, body length. */
const U32_FIELDS = [4, 8, 12, 20];
const small = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.nat({ max: 0xffff_ffff }));

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.nat({ max: 255 }) }),
  fc.record({ kind: fc.constant('u32' as const),
    at: fc.oneof(fc.constantFrom(...U32_FIELDS), fc.nat()), value: small }),
  fc.record({ kind: fc.constant('u16' as const), at: fc.nat(), value: fc.nat({ max: 0xffff }) }),
  fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }),
);

/** Apply `mutations` to the record of `size` bytes at `at`; returns the (maybe cut) buffer. */
function mutate(buf: Buffer, at: number, size: number, mutations: readonly Mutation[]): Buffer {
  let out = Buffer.from(buf);
  for (const m of mutations) {
    const span = out.length - at;
    if (span <= 0) break;
    const p = m.kind === 'truncate' ? 0 : at + (m.at % span);
    switch (m.kind) {
      case 'flip': out[p] = out[p]! ^ (1 << m.bit); break;
      case 'byte': out[p] = m.value; break;
      case 'u32': if (p + 4 <= out.length) out.writeUInt32LE(m.value, p); break;
      case 'u16': if (p + 2 <= out.length) out.writeUInt16LE(m.value, p); break;
      case 'truncate': out = Buffer.from(out.subarray(0, at + (m.keep % (size + 1)))); break;
    }
  }
  return out;
}

/** Seal the frame at `at` again, as a writer would: a correct checksum over what it now says. */
function reseal(buf: Buffer, at: number): void {
  if (at + 8 > buf.length) return;
  const size = buf.readUInt32LE(at + 4);
  if (size >= 8 && at + size <= buf.length) {
    buf.writeUInt32LE(checksum32(buf, at + 4, at + size), at);
  }
}

/**
 * A frame checkFrame accepted is read the same whatever the bytes around it hold: a decoder
 * that read past the frame would see the filler change.
 */
function expectReadInBounds(buf: Buffer, at: number, size: number, physicalOffset: number): void {
  const reads = [0x00, 0xff, 0x5a].map((filler) => {
    const copy = Buffer.alloc(buf.length, filler);
    buf.copy(copy, at, at, at + size);
    return readAll(copy, at, physicalOffset, size);
  });
  expect(reads[1]).toEqual(reads[0]);
  expect(reads[2]).toEqual(reads[0]);
}

describe('record codec fuzzing', () => {
  it('round trip: every record the encoder accepts decodes to its input', () => {
    fc.assert(fc.property(recordInputArb, placementArb, fc.nat({ max: 32 }),
      (input: RecordInput, place, at) => {
        const { buf, size } = encodeAt(input, place, at, 16);
        const dv = dataView(buf);
        expect(checkFrame(buf, dv, at, at + size, place.physicalOffset))
          .toEqual({ kind: size, reason: '' });
        const r = decodeRecord(buf, dv, at, true);
        expect({ topic: r.topic, queueId: r.queueId, body: Buffer.compare(r.body, input.body),
          sysFlag: r.sysFlag, reconsumeTimes: r.reconsumeTimes, size: r.size,
          queueOffset: r.queueOffset, physicalOffset: r.physicalOffset,
          storeTimestamp: r.storeTimestamp, bornTimestamp: r.bornTimestamp,
          preparedTxOffset: r.preparedTxOffset, tags: r.tags, keys: r.keys,
          uniqKey: r.uniqKey }).toEqual({ topic: input.topic, queueId: input.queueId, body: 0,
          sysFlag: input.sysFlag ?? 0, reconsumeTimes: input.reconsumeTimes ?? 0, size,
          queueOffset: place.queueOffset, physicalOffset: place.physicalOffset,
          storeTimestamp: place.storeTimestamp,
          bornTimestamp: input.bornTimestamp ?? place.storeTimestamp,
          preparedTxOffset: input.preparedTxOffset ?? 0,
          tags: input.tags === '' ? undefined : input.tags, keys: input.keys ?? [],
          uniqKey: input.uniqKey });
        expect(sortedPairs(r.properties)).toEqual(expectedProperties(input));
        const head = readHead(buf, dv, at);
        expect([head.topic, head.queueId, head.queueOffset])
          .toEqual([input.topic, input.queueId, place.queueOffset]);
        expectReadInBounds(buf, at, size, place.physicalOffset);
      }), fuzz(0x5eed_0001, 300));
  });

  it('a record changed without a new checksum is refused by checkFrame', () => {
    fc.assert(fc.property(recordInputArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
      (input, mutations) => {
        const place = { queueOffset: 7, physicalOffset: 1024, storeTimestamp: 5 };
        const { buf, size } = encodeAt(input, place, 0);
        const bad = mutate(buf, 0, size, mutations);
        const check = checkFrame(bad, dataView(bad), 0, bad.length, place.physicalOffset);
        if (bad.equals(buf)) expect(check.kind).toBe(size);
        else expect([FRAME_BAD, FRAME_EMPTY]).toContain(check.kind);
      }), fuzz(0x5eed_0002, 300));
  });

  it('mutated and re-sealed records: checkFrame decides, decoders never read outside', () => {
    fc.assert(fc.property(recordInputArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
      fc.boolean(), fc.nat({ max: 16 }), (input, mutations, sealAgain, at) => {
        const place = { queueOffset: 3, physicalOffset: 4096 + at, storeTimestamp: 9 };
        const { buf, size } = encodeAt(input, place, at, 24);
        const bad = mutate(buf, at, size, mutations);
        if (sealAgain) reseal(bad, at);
        for (const verify of [true, false]) {
          const check = checkFrame(bad, dataView(bad), at, bad.length, place.physicalOffset,
            verify);
          expect(check.kind === FRAME_BLANK || check.kind >= FRAME_BAD).toBe(true);
          if (check.kind > 0) expectReadInBounds(bad, at, check.kind, place.physicalOffset);
        }
      }), fuzz(0x5eed_0003, 400));
  });

  it('random bytes, with or without a plausible header, never crash a check or a read', () => {
    const garbage = fc.record({
      bytes: fc.uint8Array({ maxLength: 400 }),
      at: fc.nat({ max: 64 }),
      header: fc.boolean(),
      bodyLength: fc.nat({ max: 400 }),
    });
    fc.assert(fc.property(garbage, ({ bytes, at, header, bodyLength }) => {
      const buf = Buffer.alloc(at + bytes.length);
      buf.set(bytes, at);
      const physicalOffset = 512;
      if (header && buf.length >= at + HEADER_BYTES) {
        // A frame that passes the cheap checks, so the deep ones see the garbage.
        buf.writeUInt32LE(buf.length - at, at + 4);
        buf.writeUInt32LE(RECORD_MAGIC, at + 8);
        buf.writeUInt32LE(bodyLength, at + 20);
        buf.writeUInt32LE(physicalOffset, at + 32);
        buf.writeUInt32LE(0, at + 36);
        reseal(buf, at);
      }
      const check = checkFrame(buf, dataView(buf), at, buf.length, physicalOffset, false);
      if (check.kind > 0) expectReadInBounds(buf, at, check.kind, physicalOffset);
    }), fuzz(0x5eed_0004, 400));
  });

  it('a damaged blank marker is a blank, empty or bad frame, never an error', () => {
    fc.assert(fc.property(fc.integer({ min: BLANK_BYTES, max: 200 }),
      fc.array(mutationArb, { maxLength: 3 }), (remaining, mutations) => {
        const buf = Buffer.alloc(remaining);
        encodeBlank(buf, dataView(buf), 0, remaining);
        const bad = mutate(buf, 0, remaining, mutations);
        const check = checkFrame(bad, dataView(bad), 0, bad.length, 0);
        if (bad.equals(buf)) expect(check.kind).toBe(FRAME_BLANK);
        else expect([FRAME_BAD, FRAME_EMPTY, FRAME_BLANK]).toContain(check.kind);
      }), fuzz(0x5eed_0005, 300));
  });
});

describe('record codec regressions found by fuzzing', () => {
  const place = { queueOffset: 0, physicalOffset: 0, storeTimestamp: 1 };
  /** A record of topic `TopicA` with one property, changed by `change` and sealed again. */
  function forged(change: (buf: Buffer, topicAt: number) => void): Buffer {
    const { buf, size } = encodeAt({ topic: 'TopicA', queueId: 0, body: Buffer.from('b'),
      properties: { k: 'value' } }, place, 0, 16);
    change(buf, HEADER_BYTES + 1);
    reseal(buf, 0);
    return buf.subarray(0, size + 16);
  }

  it('a property entry running past its block is a bad frame, and CORRUPT_DATA to decode', () => {
    // The block says 9 bytes; its one entry claims a 200-byte value (read from what follows).
    const buf = forged((b, topicAt) => b.writeUInt16LE(200, topicAt + 1 + 6 + 2 + 1 + 1));
    expect(checkFrame(buf, dataView(buf), 0, buf.length, 0)).toEqual({ kind: FRAME_BAD,
      reason: 'lengths' });
    const propsAt = HEADER_BYTES + 1 + 1 + 6 + 2;
    expect(errorOf(() => decodeProperties(buf, propsAt, propsAt + 9)).code)
      .toBe('CORRUPT_DATA');
  });

  it('a record with a u64 field past 2^53 is a bad frame', () => {
    for (const field of [24, 40, 48, 56]) {
      const buf = forged((b) => b.writeUInt32LE(2 ** 21, field + 4));
      expect(checkFrame(buf, dataView(buf), 0, buf.length, 0)).toEqual({ kind: FRAME_BAD,
        reason: 'u64' });
    }
  });

  it('a record whose topic is not a topic name is a bad frame', () => {
    for (const name of ['../../', 'T\u0000pic', 'a/b/cd']) {
      const buf = forged((b, topicAt) => b.write(name.padEnd(6, 'x'), topicAt + 1, 'latin1'));
      expect(checkFrame(buf, dataView(buf), 0, buf.length, 0)).toEqual({ kind: FRAME_BAD,
        reason: 'topic' });
    }
  });
});
