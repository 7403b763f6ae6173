/**
 * Fuzzing the properties codec (record-codec.ts encodes the block, record-decoder.ts
 * decodeProperties reads it): any string map the encoder accepts decodes to itself (a lone
 * surrogate as U+FFFD, as UTF-8 has it), the encoder refuses the rest with a coded error, and
 * random bytes decode or fail with CORRUPT_DATA without reading outside the block.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { limits } from '../../lib/limits.js';
import { prepareRecord } from '../../lib/store/record-codec.js';
import { decodeProperties } from '../../lib/store/record-decoder.js';
import { coded, fuzz } from './fuzz-support.js';
import { propertyNameArb, sortedPairs, text } from './records.js';

/** Names and values of every size the block allows and a little beyond. */
const nameArb = fc.oneof({ arbitrary: propertyNameArb, weight: 6 },
  fc.string({ unit: 'binary', minLength: 60, maxLength: 130 }), fc.constant(''),
  fc.string({ unit: fc.constantFrom('\ud800', '\udfff', 'x'), minLength: 1, maxLength: 3 }));
const valueArb = fc.oneof({ arbitrary: text(30), weight: 8 },
  fc.integer({ min: 0x7ff0, max: 0x10010 }).map((n) => 'v'.repeat(n)),
  fc.string({ unit: fc.constantFrom('\ud800', '\udbff\udc00', 'é'), maxLength: 4 }));
const mapArb = fc.dictionary(nameArb, valueArb, { maxKeys: 6 });

/** What the encoder must accept: names of 1-255 bytes, values and the block within a u16. */
function fits(map: Record<string, string>): boolean {
  let size = 0;
  for (const [k, v] of Object.entries(map)) {
    const [kb, vb] = [Buffer.byteLength(k), Buffer.byteLength(v)];
    if (kb === 0 || kb > 0xff || vb > 0xffff) return false;
    size += 3 + kb + vb;
  }
  return size <= limits.maxPropertiesBytes;
}

/** A string as it comes back from UTF-8: lone surrogates become U+FFFD. */
function viaUtf8(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

describe('properties codec fuzzing', () => {
  it('string maps round trip, or the encoder refuses them with a coded error', () => {
    fc.assert(fc.property(mapArb, (properties) => {
      const prepared = coded(['INVALID_MESSAGE', 'MESSAGE_TOO_LARGE'], () =>
        prepareRecord({ topic: 'T', queueId: 0, body: Buffer.from('x'), properties }));
      expect(prepared.ok).toBe(fits(properties));
      if (!prepared.ok) return;
      const block = prepared.value.propertiesBytes ?? Buffer.alloc(0);
      const decoded = decodeProperties(block, 0, block.length);
      const want = Object.fromEntries(Object.entries(properties)
        .map(([k, v]) => [viaUtf8(k), viaUtf8(v)]));
      expect(sortedPairs(decoded)).toEqual(sortedPairs(want));
      expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    }), fuzz(0x5eed_0501, 300));
  });

  it('random bytes decode or fail with CORRUPT_DATA, reading only the block', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat({ max: 16 }),
      fc.nat({ max: 16 }), (bytes, before, after) => {
        const reads = [0x00, 0xff].map((filler) => {
          const buf = Buffer.alloc(before + bytes.length + after, filler);
          buf.set(bytes, before);
          const out = coded(['CORRUPT_DATA'],
            () => sortedPairs(decodeProperties(buf, before, before + bytes.length)));
          return out.ok ? out.value : out.error.code;
        });
        expect(reads[1]).toEqual(reads[0]);
      }), { ...fuzz(0x5eed_0502, 300),
      // Before the fix: a value read from the bytes after the block, and a RangeError.
      examples: [[new Uint8Array([1, 0x41, 0xff, 0xff]), 0, 8],
        [new Uint8Array([3, 0x41]), 0, 0]] });
  });
});
