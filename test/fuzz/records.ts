/**
 * Arbitraries for commit-log records (lib/store/record-codec.ts) and a full read of a checked
 * frame through every decoder the store has: decodeRecord, readHead + dispatchOf (recovery),
 * and RecordCursor (the zero-copy read path).
 */
import fc from 'fast-check';
import { dispatchOf } from '../../lib/store/recovery.js';
import { RecordCursor } from '../../lib/store/record-cursor.js';
import {
  dataView, encodeRecord, PROPERTY_KEYS, PROPERTY_TAGS, PROPERTY_UNIQ_KEY, prepareRecord,
  SYSFLAG_BATCH_MORE, type Placement, type RecordInput,
} from '../../lib/store/record-codec.js';
import { decodeRecord, readHead } from '../../lib/store/record-decoder.js';
import { coded } from './fuzz-support.js';

const WELL_KNOWN = new Set([PROPERTY_TAGS, PROPERTY_KEYS, PROPERTY_UNIQ_KEY]);

/** Strings of any Unicode code points (well-formed UTF-16: they round trip through UTF-8). */
export const text = (maxLength: number, minLength = 0): fc.Arbitrary<string> =>
  fc.string({ unit: 'binary', minLength, maxLength });

export const topicArb = fc.stringMatching(/^[A-Za-z0-9_%|-]{1,127}$/);

/** Property names: 1 to 255 UTF-8 bytes, not one of the well-known names. */
export const propertyNameArb = fc.oneof(
  text(20, 1),
  fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', '0', '10', 'a b'),
).filter((k) => !WELL_KNOWN.has(k) && Buffer.byteLength(k) <= 0xff);

export const propertiesArb = fc.dictionary(propertyNameArb, text(40), { maxKeys: 8 });

export const recordInputArb: fc.Arbitrary<RecordInput> = fc.record({
  topic: topicArb,
  queueId: fc.integer({ min: 0, max: 1023 }),
  body: fc.uint8Array({ minLength: 1, maxLength: 300 }),
  tags: fc.option(text(30), { nil: undefined }),
  keys: fc.option(fc.array(text(12, 1).filter((k) => !k.includes(' ')), { maxLength: 4 }),
    { nil: undefined }),
  uniqKey: fc.option(text(24), { nil: undefined }),
  properties: fc.option(propertiesArb, { nil: undefined }),
  sysFlag: fc.option(fc.integer({ min: 0, max: SYSFLAG_BATCH_MORE - 1 }), { nil: undefined }),
  bornTimestamp: fc.option(fc.maxSafeNat(), { nil: undefined }),
  reconsumeTimes: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: undefined }),
  preparedTxOffset: fc.option(fc.maxSafeNat(), { nil: undefined }),
}, { requiredKeys: ['topic', 'queueId', 'body'] });

export const placementArb: fc.Arbitrary<Placement> = fc.record({
  queueOffset: fc.maxSafeNat(),
  physicalOffset: fc.maxSafeNat(),
  storeTimestamp: fc.maxSafeNat(),
  more: fc.boolean(),
});

/** `input` encoded at byte `at` of a buffer with `after` spare bytes behind it. */
export function encodeAt(input: RecordInput, place: Placement, at: number,
  after = 0): { buf: Buffer; size: number } {
  const rec = prepareRecord(input);
  const buf = Buffer.alloc(at + rec.size + after);
  encodeRecord(buf, dataView(buf), at, rec, place.queueOffset, place.physicalOffset,
    place.storeTimestamp, place.more === true);
  return { buf, size: rec.size };
}

/** The properties a record of `input` must decode to, as sorted [key, value] pairs. */
export function expectedProperties(input: RecordInput): [string, string][] {
  const pairs = new Map<string, string>();
  if (input.tags !== undefined && input.tags !== '') pairs.set(PROPERTY_TAGS, input.tags);
  if (input.keys !== undefined && input.keys.length > 0) {
    pairs.set(PROPERTY_KEYS, input.keys.join(' '));
  }
  if (input.uniqKey !== undefined) pairs.set(PROPERTY_UNIQ_KEY, input.uniqKey);
  for (const [k, v] of Object.entries(input.properties ?? {})) pairs.set(k, v);
  return sortedPairs(Object.fromEntries(pairs));
}

export function sortedPairs(obj: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(obj).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Everything every decoder reads from the record at `at` (a frame checkFrame accepted), as plain
 * data; a decoder may refuse the record only with CORRUPT_DATA.
 */
export function readAll(buf: Buffer, at: number, physicalOffset: number,
  size: number): unknown {
  const dv = dataView(buf);
  const decoded = coded(['CORRUPT_DATA'], () => {
    const r = decodeRecord(buf, dv, at, true);
    return {
      checksum: r.checksum, size: r.size, sysFlag: r.sysFlag, topic: r.topic,
      queueId: r.queueId, queueOffset: r.queueOffset, physicalOffset: r.physicalOffset,
      bornTimestamp: r.bornTimestamp, storeTimestamp: r.storeTimestamp,
      reconsumeTimes: r.reconsumeTimes, preparedTxOffset: r.preparedTxOffset,
      body: r.body.toString('hex'), tags: r.tags, keys: r.keys, uniqKey: r.uniqKey,
      properties: sortedPairs(r.properties),
    };
  });
  const dispatched = coded(['CORRUPT_DATA'],
    () => ({ ...dispatchOf(buf, readHead(buf, dv, at), physicalOffset, size) }));
  const cursor = coded(['CORRUPT_DATA'], () => {
    const c = new RecordCursor();
    c.moveTo(buf, dv, at);
    return { topic: c.topic, properties: sortedPairs(c.properties), body: c.copyBody() };
  });
  return { decoded: describe(decoded), dispatched: describe(dispatched),
    cursor: describe(cursor) };
}

function describe(outcome: ReturnType<typeof coded>): unknown {
  return outcome.ok ? outcome.value : `error ${outcome.error.code}`;
}
