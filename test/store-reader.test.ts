/**
 * StoreReader: a record that fails its checks where the log still holds data is reported as
 * CORRUPT_DATA when read, never skipped; an entry under a deleted segment reads as removed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../lib/store/clock.js';
import { StoreEngine } from '../lib/store/store-engine.js';
import type { StoredRecord } from '../lib/store/record-decoder.js';
import { offsetToFileName } from '../lib/store/mapped-file.js';
import { backendCases, fileCase, useTempDirs } from './support/backends.js';

const SEG = 64 * 1024;
const tmp = useTempDirs();

describe.each(backendCases.filter((c) => c.kind !== 'sim'))('reading on $kind', ({ make }) => {
  it('throws CORRUPT_DATA for a garbled record in an older segment', async () => {
    const dir = tmp.make();
    const options = { backend: make(), commitLogSegmentSize: SEG, maxMessageSize: 8 * 1024 };
    let store = await StoreEngine.open(dir, options);
    const puts = [];
    for (let i = 0; i < 200; i++) {
      puts.push(await store.putMessage({ topic: 'T', queueId: 0, body: Buffer.alloc(1000, i) }));
    }
    await store.close();
    const victim = puts[3]!;
    expect(victim.physicalOffset).toBeLessThan(SEG);
    const file = path.join(dir, 'commitlog', offsetToFileName(0));
    const bytes = fs.readFileSync(file);
    bytes[victim.physicalOffset + 100] = bytes[victim.physicalOffset + 100]! ^ 0xff; // the body
    fs.writeFileSync(file, bytes);
    store = await StoreEngine.open(dir, { ...options, backend: make() });
    try {
      expect(store.getMessage('T', 0, 0, 3).records.map((r) => r.queueOffset)).toEqual([0, 1, 2]);
      expect(() => store.getMessage('T', 0, 0, 10)).toThrow(expect.objectContaining({
        code: 'CORRUPT_DATA', offset: victim.physicalOffset }));
      expect(store.lookMessageByOffset(victim.physicalOffset)).toBeNull();
      expect(store.getMessage('T', 0, 4, 2).records[0]!.body[0]).toBe(4);
    } finally {
      await store.close();
    }
  });
});

describe.each(backendCases)('visitMessages on $kind', ({ make }) => {
  it('hands every record of a queue to the visitor in place, in order', async () => {
    const dir = tmp.make();
    const store = await StoreEngine.open(dir, { backend: make(), commitLogSegmentSize: SEG });
    try {
      const puts = [];
      for (let i = 0; i < 300; i++) {
        puts.push(await store.putMessage({ topic: 'V', queueId: i % 2, body: Buffer.alloc(200, i),
          tags: `t${i % 3}`, properties: { n: String(i) } }));
      }
      const seen: { offset: number; first: number; length: number; tag: string | undefined;
        n: string | undefined; phy: number }[] = [];
      let offset = 0;
      for (;;) {
        const r = store.visitMessages('V', 1, offset, 16, (c) => {
          seen.push({ offset: c.queueOffset, first: c.bodyBuffer[c.bodyOffset]!,
            length: c.bodyLength, tag: c.properties.TAGS, n: c.properties.n,
            phy: c.physicalOffset });
        });
        if (r.count === 0) {
          expect(r.status).toBe('OFFSET_OVERFLOW_ONE');
          break;
        }
        offset = r.nextBeginOffset;
      }
      const odd = puts.filter((_, i) => i % 2 === 1);
      expect(seen.map((s) => s.offset)).toEqual(odd.map((p) => p.queueOffset));
      expect(seen.map((s) => s.phy)).toEqual(odd.map((p) => p.physicalOffset));
      seen.forEach((s, k) => {
        const i = 2 * k + 1;
        expect([s.first, s.length, s.tag, s.n]).toEqual([i & 0xff, 200, `t${i % 3}`, String(i)]);
      });
      // A record kept beyond the visit is a copy that stays valid.
      let kept: StoredRecord | null = null;
      store.visitMessages('V', 0, 5, 1, (c) => {
        kept = c.toRecord();
      });
      expect(kept!.queueOffset).toBe(5);
      expect(kept!.body.equals(Buffer.alloc(200, 10))).toBe(true);
      expect(store.visitMessages('V', 0, 0, 0, () => undefined).count).toBe(0);
      expect(store.visitMessages('nope', 0, 0, 5, () => undefined).status)
        .toBe('NO_MATCHED_LOGIC_QUEUE');
    } finally {
      await store.close();
    }
  });
});

describe('queryMessage with a time range', () => {
  it('maxNum counts exact matches, past candidates of the same second outside the range',
    async () => {
      const clock = new ManualClock(1_700_000_000_000);
      const t0 = clock.now();
      const store = await StoreEngine.open(tmp.make(), { backend: fileCase.make(),
        commitLogSegmentSize: SEG, clock });
      try {
        // 50 messages 10 ms apart, all in one second of the index: newest first, the 39 stored
        // after t0 + 100 are candidates of a [t0, t0 + 100] query that fail its exact check.
        for (let i = 0; i < 50; i++) {
          await store.putMessage({ topic: 'Q', queueId: 0, body: Buffer.from(`m${i}`),
            keys: ['k'] });
          clock.advance(10);
        }
        const inRange = store.queryMessage('Q', 'k', 5, t0, t0 + 100);
        expect(inRange.map((r) => r.queueOffset)).toEqual([10, 9, 8, 7, 6]);
        expect(store.queryMessage('Q', 'k', 32, t0 + 95, t0 + 125).map((r) => r.queueOffset))
          .toEqual([12, 11, 10]);
        expect(store.queryMessage('Q', 'k', 3).map((r) => r.queueOffset)).toEqual([49, 48, 47]);
      } finally {
        await store.close();
      }
    });
});
