/**
 * Fuzzing message normalization (lib/broker/message.ts normalizeMessage), the first thing a
 * producer does with what an application hands it: any JavaScript value gives a normalized
 * message or a coded error (INVALID_MESSAGE, NOT_SUPPORTED for delayed delivery), never a
 * TypeError; what it gives keeps every field the message had, and with the producer's topic check
 * and the record encoder after it, is stored and read back the same or refused with a coded error.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeMessage, type NormalizedMessage } from '../../lib/broker/message.js';
import { checkUserTopic } from '../../lib/broker/names.js';
import { dataView, encodeRecord, prepareRecord } from '../../lib/store/record-codec.js';
import { decodeRecord } from '../../lib/store/record-decoder.js';
import { coded, fuzz } from './fuzz-support.js';
import { sortedPairs, topicArb } from './records.js';

const anything = fc.anything({ withMap: true, withSet: true, withBigInt: true, withDate: true,
  withNullPrototype: true, withObjectString: true, withTypedArray: true, withSparseArray: true,
  withBoxedValues: true });

/** Messages that are almost right: every field near its valid shapes, sometimes anything. */
const messageArb = fc.record({
  topic: fc.oneof(topicArb, fc.constantFrom('%RETRY%g', ''), anything),
  body: fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.uint8Array({ maxLength: 20 }),
    anything),
  tags: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('a b', 'A||B', ''), anything),
  keys: fc.oneof(fc.string({ maxLength: 8 }), fc.array(fc.string({ maxLength: 6 }),
    { maxLength: 3 }), anything),
  properties: fc.oneof(
    fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }),
      fc.constantFrom('__proto__', 'constructor', 'TAGS', 'x'.repeat(300))),
    fc.oneof(fc.string({ maxLength: 10 }), fc.double(), fc.boolean(), anything), { maxKeys: 4 }),
    anything),
  delayTimeLevel: fc.integer(),
}, { requiredKeys: [] });

/** What normalizing `input` must keep: its own enumerable properties, as strings. */
function expectKept(input: Record<string, unknown>, out: NormalizedMessage): void {
  expect(out.topic).toBe(input.topic);
  expect(out.body).toBeInstanceOf(Uint8Array);
  expect(out.body.length).toBeGreaterThan(0);
  expect(out.tags === undefined || (typeof out.tags === 'string' && !/\s|\|\|/.test(out.tags)))
    .toBe(true);
  for (const key of out.keys ?? []) expect(key).toMatch(/^\S+$/);
  const props = input.properties as Record<string, unknown> | undefined;
  const want = Object.entries(props ?? {}).map(([k, v]) => [k, String(v)] as [string, string]);
  expect(sortedPairs(out.properties ?? {})).toEqual(sortedPairs(Object.fromEntries(want)));
}

/** The producer's path after normalizing: topic check, encode, decode. */
function storeAndRead(msg: NormalizedMessage): void {
  const stored = coded(['INVALID_TOPIC', 'INVALID_MESSAGE', 'MESSAGE_TOO_LARGE'], () => {
    checkUserTopic(msg.topic);
    return prepareRecord({ topic: msg.topic, queueId: 0, body: msg.body, tags: msg.tags,
      keys: msg.keys, properties: msg.properties });
  });
  if (!stored.ok) return;
  const buf = Buffer.alloc(stored.value.size);
  encodeRecord(buf, dataView(buf), 0, stored.value, 0, 0, 1, false);
  const r = decodeRecord(buf, dataView(buf), 0, true);
  expect(Buffer.compare(r.body, msg.body)).toBe(0);
  expect([r.topic, r.tags, r.keys]).toEqual([msg.topic, msg.tags, msg.keys ?? []]);
  const { TAGS: _t, KEYS: _k, ...user } = r.properties;
  expect(sortedPairs(user)).toEqual(sortedPairs(msg.properties ?? {}));
}

describe('message normalization fuzzing', () => {
  it('any value normalizes or fails with a coded error', () => {
    fc.assert(fc.property(anything, (value) => {
      const out = coded(['INVALID_MESSAGE', 'NOT_SUPPORTED'], () => normalizeMessage(value));
      if (out.ok) expectKept(value as Record<string, unknown>, out.value);
    }), fuzz(0x5eed_0601, 300));
  });

  it('near-valid messages normalize, keep their fields, and store as they are', () => {
    fc.assert(fc.property(messageArb, (message) => {
      const out = coded(['INVALID_MESSAGE', 'NOT_SUPPORTED'], () => normalizeMessage(message));
      if (!out.ok) return;
      expectKept(message, out.value);
      storeAndRead(out.value);
    }), { ...fuzz(0x5eed_0602, 400),
      // Once dropped silently: `out.__proto__ = value` sets a prototype, not a property.
      examples: [[{ topic: 'T', body: 'x',
        properties: JSON.parse('{"__proto__":"p","a":"1"}') as Record<string, string> }]] });
  });
});
