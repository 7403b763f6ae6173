import { beforeAll, describe, expect, it, vi } from 'vitest';
import { PocketMQError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { javaHashCode } from '../lib/store/checksum.js';
import {
  BLANK_BYTES, dataView, encodeBlank, encodeRecord, HEADER_BYTES, prepareRecord, tagsCodeOf,
  writeU64, type Placement, type RecordInput,
} from '../lib/store/record-codec.js';
import {
  checkFrame, decodeRecord, FRAME_BAD, FRAME_BLANK, FRAME_EMPTY,
} from '../lib/store/record-decoder.js';
import { checksum32, checksum32Wasm, checksumReady, xxh32 } from '../lib/store/checksum.js';

const PLACE: Placement = { queueOffset: 2 ** 33 + 5, physicalOffset: 2 ** 34 + 128,
  storeTimestamp: 1_700_000_000_123 };

/** Encode `input` at byte `at` of a fresh buffer; returns the buffer and the record's size. */
function encode(input: RecordInput, at = 16, place = PLACE): { buf: Buffer; size: number } {
  const rec = prepareRecord(input);
  const buf = Buffer.alloc(at + rec.size + 32);
  const sum = encodeRecord(buf, dataView(buf), at, rec, place.queueOffset,
    place.physicalOffset, place.storeTimestamp, place.more === true);
  expect(buf.readUInt32LE(at)).toBe(sum);
  return { buf, size: rec.size };
}

function codeOf(fn: () => unknown): { code: string; property: string | undefined } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PocketMQError);
    const e = err as PocketMQError;
    return { code: e.code, property: e.property };
  }
  throw new Error('expected a PocketMQError');
}

describe('record codec round trip', () => {
  const cases: [string, RecordInput][] = [
    ['bare', { topic: 'T', queueId: 0, body: Buffer.from('x') }],
    ['every field', {
      topic: 'Orders_%|-9', queueId: 1023, body: Buffer.from('hello \u00e9\u{1F600}'),
      tags: 'TagA', keys: ['k1', 'k\u00fc2'], uniqKey: 'U-1', sysFlag: 2,
      bornTimestamp: 1_600_000_000_000, reconsumeTimes: 65535, preparedTxOffset: 2 ** 40 + 3,
      properties: { a: '', '\u65e5\u672c': '\u8a9e\u{1F600}', ['__proto__']: 'not a prototype' },
    }],
    ['tags only', { topic: 'T', queueId: 3, body: new Uint8Array([0, 1, 255]), tags: 'x' }],
    ['keys only', { topic: 'T', queueId: 3, body: Buffer.alloc(300, 7), keys: ['a', 'b', 'c'] }],
    ['uniqKey only', { topic: 'T', queueId: 3, body: Buffer.from('b'), uniqKey: 'u' }],
  ];

  it.each(cases)('%s: encode, check and decode agree', (_name, input) => {
    const { buf, size } = encode(input);
    const dv = dataView(buf);
    expect(checkFrame(buf, dv, 16, buf.length, PLACE.physicalOffset)).toEqual({ kind: size,
      reason: '' });
    const rec = decodeRecord(buf, dv, 16, true);
    expect(rec.size).toBe(size);
    expect(rec.topic).toBe(input.topic);
    expect(rec.queueId).toBe(input.queueId);
    expect(Buffer.compare(rec.body, Buffer.from(input.body))).toBe(0);
    expect(rec.tags).toBe(input.tags);
    expect(rec.keys).toEqual(input.keys ?? []);
    expect(rec.uniqKey).toBe(input.uniqKey);
    expect(rec.sysFlag).toBe(input.sysFlag ?? 0);
    expect(rec.reconsumeTimes).toBe(input.reconsumeTimes ?? 0);
    expect(rec.preparedTxOffset).toBe(input.preparedTxOffset ?? 0);
    expect(rec.queueOffset).toBe(PLACE.queueOffset);
    expect(rec.physicalOffset).toBe(PLACE.physicalOffset);
    expect(rec.storeTimestamp).toBe(PLACE.storeTimestamp);
    expect(rec.bornTimestamp).toBe(input.bornTimestamp ?? PLACE.storeTimestamp);
    for (const [k, v] of Object.entries(input.properties ?? {})) expect(rec.properties[k]).toBe(v);
  });

  it('keeps a property named __proto__ as an own property, not a prototype', () => {
    const { buf } = encode({ topic: 'T', queueId: 0, body: Buffer.from('x'),
      properties: JSON.parse('{"__proto__":"p","x":"y"}') as Record<string, string> });
    const rec = decodeRecord(buf, dataView(buf), 16, true);
    expect(Object.getPrototypeOf(rec.properties)).toBe(Object.prototype);
    expect(Object.keys(rec.properties)).toEqual(['__proto__', 'x']);
    expect(Object.getOwnPropertyDescriptor(rec.properties, '__proto__')?.value).toBe('p');
  });

  it('decodes the body as a view or as a copy', () => {
    const { buf } = encode({ topic: 'T', queueId: 0, body: Buffer.from('body') });
    const view = decodeRecord(buf, dataView(buf), 16, false).body;
    const copy = decodeRecord(buf, dataView(buf), 16, true).body;
    expect(view.buffer).toBe(buf.buffer);
    expect(view.byteOffset).toBe(buf.byteOffset + 16 + HEADER_BYTES);
    expect(copy.buffer).not.toBe(buf.buffer);
  });

  it('sizes a record as header + body + topic + properties', () => {
    const rec = prepareRecord({ topic: 'abc', queueId: 0, body: Buffer.alloc(10) });
    expect(rec.size).toBe(HEADER_BYTES + 10 + 1 + 3 + 2);
    expect(rec.propertiesBytes).toBeNull();
  });
});

describe('record validation', () => {
  const ok: RecordInput = { topic: 'T', queueId: 0, body: Buffer.from('x') };
  const bad = (patch: object): RecordInput => ({ ...ok, ...patch }) as RecordInput;

  it.each([
    ['empty', ''], ['a space', 'a b'], ['a slash', 'a/b'], ['a dot', 'a.b'],
    ['unicode', 'th\u00e9'],
    ['128 characters', 'x'.repeat(128)], ['not a string', 42],
  ])('rejects a topic with %s as INVALID_TOPIC', (_name, topic) => {
    expect(codeOf(() => prepareRecord(bad({ topic }))).code).toBe('INVALID_TOPIC');
  });

  it('accepts a topic of exactly 127 characters', () => {
    expect(prepareRecord(bad({ topic: 'x'.repeat(127) })).topicBytes.length).toBe(127);
  });

  it.each([
    ['an empty body', { body: Buffer.alloc(0) }, 'body'],
    ['a string body', { body: 'text' }, 'body'],
    ['a missing body', { body: undefined }, 'body'],
    ['a negative queueId', { queueId: -1 }, 'queueId'],
    ['a fractional queueId', { queueId: 1.5 }, 'queueId'],
    ['a queueId at the limit', { queueId: limits.maxQueuesPerTopic }, 'queueId'],
    ['an empty key', { keys: [''] }, 'keys'],
    ['a key with a space', { keys: ['a b'] }, 'keys'],
    ['a non-string key', { keys: [7] }, 'keys'],
    ['a non-string property', { properties: { a: 1 } }, 'properties'],
    ['a non-string tag', { tags: 5 }, 'tags'],
    ['a non-string uniqKey', { uniqKey: 5 }, 'uniqKey'],
    ['keys that are not an array', { keys: 'abc' }, 'keys'],
    ['null properties', { properties: null }, 'properties'],
    ['reconsumeTimes past u16', { reconsumeTimes: 65536 }, 'reconsumeTimes'],
  ])('rejects %s as INVALID_MESSAGE', (_name, patch, property) => {
    expect(codeOf(() => prepareRecord(bad(patch)))).toEqual({ code: 'INVALID_MESSAGE', property });
  });

  it('rejects a body over the limit as MESSAGE_TOO_LARGE, and accepts one at it', () => {
    expect(prepareRecord(bad({ body: Buffer.alloc(100) }), 100).size).toBeGreaterThan(100);
    expect(codeOf(() => prepareRecord(bad({ body: Buffer.alloc(101) }), 100)))
      .toEqual({ code: 'MESSAGE_TOO_LARGE', property: 'body' });
    const over = Buffer.alloc(limits.maxBodyBytes + 1);
    expect(codeOf(() => prepareRecord(bad({ body: over }))).code).toBe('MESSAGE_TOO_LARGE');
  });

  it('rejects huge properties as MESSAGE_TOO_LARGE', () => {
    const many = Object.fromEntries(
      Array.from({ length: 40 }, (_, i) => [`p${i}`, 'v'.repeat(2000)]));
    expect(codeOf(() => prepareRecord(bad({ properties: many }))).code).toBe('MESSAGE_TOO_LARGE');
    const one = { p: 'v'.repeat(70_000) };
    expect(codeOf(() => prepareRecord(bad({ properties: one }))).code).toBe('MESSAGE_TOO_LARGE');
    expect(codeOf(() => prepareRecord(bad({ tags: 't'.repeat(70_000) }))).code)
      .toBe('MESSAGE_TOO_LARGE');
  });
});

describe('checkFrame', () => {
  const input: RecordInput = { topic: 'T', queueId: 1, body: Buffer.from('payload'), tags: 'a',
    keys: ['k'], properties: { p: 'q' } };

  it('finds a flipped byte anywhere in the record', () => {
    const { buf, size } = encode(input);
    for (let i = 0; i < size; i++) {
      const copy = Buffer.from(buf);
      copy[16 + i]! ^= 0x10;
      const check = checkFrame(copy, dataView(copy), 16, copy.length, PLACE.physicalOffset);
      expect(check.kind, `byte ${i}`).toBe(FRAME_BAD);
    }
  });

  it('rejects a record at the wrong physical offset', () => {
    const { buf } = encode(input);
    const check = checkFrame(buf, dataView(buf), 16, buf.length, PLACE.physicalOffset + 1);
    expect(check).toEqual({ kind: FRAME_BAD, reason: 'offset' });
  });

  it('rejects a record that runs past the end of the segment', () => {
    const { buf, size } = encode(input);
    const check = checkFrame(buf, dataView(buf), 16, 16 + size - 1, PLACE.physicalOffset);
    expect(check.kind).toBe(FRAME_BAD);
  });

  it('rejects inner lengths that disagree with the total, even with a valid checksum', () => {
    const { buf, size } = encode(input);
    const dv = dataView(buf);
    dv.setUint32(16 + 20, dv.getUint32(16 + 20, true) + 1, true); // bodyLen one too long
    dv.setUint32(16, checksum32(buf, 16 + 4, 16 + size), true);
    expect(checkFrame(buf, dv, 16, buf.length, PLACE.physicalOffset))
      .toEqual({ kind: FRAME_BAD, reason: 'lengths' });
  });

  it('rejects a size field that is not the record size, even with a valid checksum', () => {
    const { buf, size } = encode(input);
    const dv = dataView(buf);
    dv.setUint32(16 + 4, size + 4, true);
    dv.setUint32(16, checksum32(buf, 16 + 4, 16 + size + 4), true);
    expect(checkFrame(buf, dv, 16, buf.length, PLACE.physicalOffset).kind).toBe(FRAME_BAD);
  });

  it('says EMPTY for zeros and at the segment end', () => {
    const buf = Buffer.alloc(64);
    expect(checkFrame(buf, dataView(buf), 0, 64, 0).kind).toBe(FRAME_EMPTY);
    expect(checkFrame(buf, dataView(buf), 60, 64, 60).kind).toBe(FRAME_EMPTY);
  });

  it('round trips a blank marker, and rejects a damaged or misplaced one', () => {
    const buf = Buffer.alloc(100);
    const dv = dataView(buf);
    encodeBlank(buf, dv, 40, 60);
    expect(checkFrame(buf, dv, 40, 100, 40).kind).toBe(FRAME_BLANK);
    expect(checkFrame(buf, dv, 40, 99, 40).kind).toBe(FRAME_BAD);
    for (let i = 0; i < BLANK_BYTES; i++) {
      const copy = Buffer.from(buf);
      copy[40 + i]! ^= 1;
      expect(checkFrame(copy, dataView(copy), 40, 100, 40).kind, `byte ${i}`).toBe(FRAME_BAD);
    }
    const exact = Buffer.alloc(BLANK_BYTES);
    encodeBlank(exact, dataView(exact), 0, BLANK_BYTES);
    expect(checkFrame(exact, dataView(exact), 0, BLANK_BYTES, 0).kind).toBe(FRAME_BLANK);
  });
});

describe('tagsCodeOf', () => {
  /** Java's String.hashCode, written out: s[0]*31^(n-1) + ... + s[n-1], as an int. */
  const formula = (s: string): number => {
    let h = 0n;
    for (let i = 0; i < s.length; i++) h = h * 31n + BigInt(s.charCodeAt(i));
    return Number(BigInt.asIntN(32, h));
  };

  it('equals Java String.hashCode', () => {
    expect(tagsCodeOf('hello')).toBe(99162322);
    expect(tagsCodeOf('TagA')).toBe(2598919);
    expect(tagsCodeOf('polygenelubricants')).toBe(-2147483648);
    for (const s of ['TagA', 'TagB', '*', 'a||b', 'x'.repeat(50), '\u65e5\u672c\u{1F600}']) {
      expect(tagsCodeOf(s), s).toBe(formula(s));
      expect(javaHashCode(s)).toBe(formula(s));
    }
  });

  it('is 0 without a tag', () => {
    expect(tagsCodeOf(undefined)).toBe(0);
    expect(tagsCodeOf('')).toBe(0);
  });
});

describe('u64 fields', () => {
  it('round trip values up to 2^53 - 1', () => {
    const buf = Buffer.alloc(8);
    for (const v of [0, 1, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      writeU64(dataView(buf), 0, v);
      expect(buf.readBigUInt64LE(0)).toBe(BigInt(v));
    }
  });
});

describe('checksum32', () => {
  beforeAll(() => checksumReady());

  it('the JS xxh32 equals xxhash-wasm on every length from 0 to 300 and on long ranges', () => {
    const buf = Buffer.alloc(70_000);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 2654435761) >>> 24;
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    for (let len = 0; len <= 300; len++) {
      for (const start of [0, 1, 3, 7]) {
        expect(xxh32(dv, buf, start, start + len)).toBe(checksum32Wasm(buf, start, start + len));
      }
    }
    expect(checksum32(buf, 5, 65_005)).toBe(checksum32Wasm(buf, 5, 65_005));
    expect(checksum32(buf, 5, 4005)).toBe(checksum32Wasm(buf, 5, 4005));
  });

  it('loads xxhash-wasm on the first long range, which meanwhile gets the JS value', async () => {
    vi.resetModules();
    const fresh = await import('../lib/store/checksum.js');
    const buf = Buffer.alloc(70_000);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 40503) >>> 8;
    // Nothing loaded it: a fresh copy of the module hashes in JS only.
    expect(() => fresh.checksum32Wasm(buf, 0, 16)).toThrow(/not ready/);
    fresh.checksum32(buf, 0, 100);
    expect(() => fresh.checksum32Wasm(buf, 0, 16)).toThrow(/not ready/);
    const early = fresh.checksum32(buf, 5, 65_005);
    expect(early).toBe(xxh32(new DataView(buf.buffer, buf.byteOffset), buf, 5, 65_005));
    // The long range started the load, without anyone calling checksumReady.
    await vi.waitFor(() => fresh.checksum32Wasm(buf, 5, 65_005), { timeout: 5000 });
    expect(fresh.checksum32Wasm(buf, 5, 65_005)).toBe(early);
    expect(fresh.checksum32(buf, 5, 65_005)).toBe(early);
  });

  it('matches the reference value of xxh32 for "abc" (seed 0)', () => {
    const abc = Buffer.from('abc');
    expect(checksum32(abc, 0, 3)).toBe(0x32d153ff);
  });
});
