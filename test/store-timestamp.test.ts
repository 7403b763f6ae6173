/**
 * Store timestamps: every append reads the clock, so appends of one busy event-loop turn that
 * lie milliseconds apart keep their own times, and searches by time find the right offset.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../lib/store/clock.js';
import { StoreEngine } from '../lib/store/store-engine.js';
import { fileCase, useTempDirs } from './support/backends.js';

const tmp = useTempDirs();
const SEGMENT = 4 * 2 ** 20;

afterEach(() => {
  vi.restoreAllMocks();
});

/** Append `count` records in one synchronous run, calling `tick(i)` before each. */
function appendInOneTurn(store: StoreEngine, count: number, tick: (i: number) => void):
  Promise<{ queueOffset: number; storeTimestamp: number }[]> {
  const pending = [];
  for (let i = 0; i < count; i++) {
    tick(i);
    pending.push(store.putMessage({ topic: 't', queueId: 0, body: Buffer.from(`m${i}`),
      keys: ['k'] }));
  }
  return Promise.all(pending);
}

describe('store timestamps within one event-loop turn', () => {
  it('the system clock is read for every append (Date.now moving 10 ms each time)', async () => {
    const store = await StoreEngine.open(tmp.make(), { backend: fileCase.make(),
      commitLogSegmentSize: SEGMENT });
    try {
      const t0 = Date.now() + 60_000;
      let now = t0;
      vi.spyOn(Date, 'now').mockImplementation(() => now);
      const results = await appendInOneTurn(store, 40, (i) => { now = t0 + i * 10; });
      vi.restoreAllMocks();
      expect(results.map((r) => r.storeTimestamp)).toEqual(results.map((_, i) => t0 + i * 10));
      expect(store.getOffsetInQueueByTime('t', 0, t0 + 205)).toBe(21);
      expect(store.getOffsetInQueueByTime('t', 0, t0 + 390)).toBe(39);
      expect(store.getOffsetInQueueByTime('t', 0, t0 + 391)).toBe(40);
      const window = store.queryMessage('t', 'k', 32, t0 + 100, t0 + 149);
      expect(window.map((r) => r.queueOffset)).toEqual([14, 13, 12, 11, 10]);
    } finally {
      await store.close();
    }
  });

  it('an injected clock advanced between appends gives each its own time', async () => {
    const clock = new ManualClock();
    const store = await StoreEngine.open(tmp.make(), { backend: fileCase.make(),
      commitLogSegmentSize: SEGMENT, clock });
    try {
      const t0 = clock.now();
      const results = await appendInOneTurn(store, 20, (i) => { if (i > 0) clock.advance(7); });
      expect(results.map((r) => r.storeTimestamp)).toEqual(results.map((_, i) => t0 + i * 7));
      expect(store.getOffsetInQueueByTime('t', 0, t0)).toBe(0);
      expect(store.getOffsetInQueueByTime('t', 0, t0 + 50)).toBe(8);
      expect(store.getOffsetInQueueByTime('t', 0, t0 + 10_000)).toBe(20);
    } finally {
      await store.close();
    }
  });
});
