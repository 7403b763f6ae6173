import { describe, expect, it } from 'vitest';
import { limits } from '../lib/limits.js';
import { StoreEngine } from '../lib/store/store-engine.js';
import { fileCase, useTempDirs } from './support/backends.js';
import { SimBackend } from './support/sim-backend.js';

const tmp = useTempDirs();

describe('ASYNC_FLUSH appends and the event loop', () => {
  it('a producer awaiting every append still lets other callbacks run', async () => {
    const store = await StoreEngine.open(tmp.make(), { backend: fileCase.make(),
      commitLogSegmentSize: 4 * 2 ** 20 });
    try {
      let ticks = 0;
      let ticking = true;
      const tick = (): void => {
        ticks++;
        if (ticking) setImmediate(tick);
      };
      setImmediate(tick);
      const body = Buffer.alloc(16, 1);
      const appends = limits.appendsPerTurn * 8;
      let resolvedAtOnce = 0;
      for (let i = 0; i < appends; i++) {
        const before = ticks;
        await store.putMessage({ topic: 't', queueId: 0, body });
        if (ticks === before) resolvedAtOnce++;
      }
      ticking = false;
      // Without the per-turn bound every append resolves in microtasks and `tick` never runs
      // until the loop ends; with it, the loop yields after each appendsPerTurn appends.
      expect(ticks).toBeGreaterThanOrEqual(7);
      expect(resolvedAtOnce).toBeGreaterThan(appends * 0.9);
      expect(store.getMaxOffsetInQueue('t', 0)).toBe(appends);
    } finally {
      await store.close();
    }
  });
});

describe('StoreEngine.put: the result itself where no promise is needed', () => {
  it('ASYNC_FLUSH hands out the result at once up to the turn bound, then promises', async () => {
    const store = await StoreEngine.open(tmp.make(), { backend: fileCase.make(),
      commitLogSegmentSize: 4 * 2 ** 20 });
    try {
      const body = Buffer.alloc(16, 2);
      await new Promise((resolve) => setImmediate(resolve)); // a fresh turn
      const results = [];
      for (let i = 0; i < limits.appendsPerTurn + 3; i++) {
        results.push(store.put({ topic: 't', queueId: 1, body }));
      }
      const atOnce = results.filter((r) => !(r instanceof Promise));
      expect(atOnce).toHaveLength(limits.appendsPerTurn);
      expect(results.slice(limits.appendsPerTurn).every((r) => r instanceof Promise)).toBe(true);
      const all = await Promise.all(results);
      expect(all.map((r) => r.queueOffset)).toEqual(all.map((_, i) => i));
      expect(all.every((r) => r.status === 'PUT_OK')).toBe(true);
      // Bad input is a rejected promise, never a throw.
      const bad = store.put({ topic: 'bad topic', queueId: 0, body });
      expect(bad).toBeInstanceOf(Promise);
      await expect(bad).rejects.toMatchObject({ code: 'INVALID_TOPIC' });
    } finally {
      await store.close();
    }
  });

  it('SYNC_FLUSH hands out a promise that settles once the record is durable', async () => {
    const store = await StoreEngine.open(tmp.make(), { backend: fileCase.make(),
      commitLogSegmentSize: 4 * 2 ** 20, flushDiskType: 'SYNC_FLUSH' });
    try {
      const put = store.put({ topic: 't', queueId: 0, body: Buffer.from('durable') });
      expect(put).toBeInstanceOf(Promise);
      const result = await put;
      expect(result.status).toBe('PUT_OK');
      expect(store.commitLogFlushedOffset).toBeGreaterThanOrEqual(result.physicalOffset +
        result.size);
    } finally {
      await store.close();
    }
  });
});

describe('a write that fails at the end of a turn', () => {
  it('stops the store with a coded error instead of throwing out of the event loop', async () => {
    const sim = new SimBackend({ seed: 3 });
    const store = await StoreEngine.open(tmp.make(), { backend: sim,
      commitLogSegmentSize: 4 * 2 ** 20 });
    try {
      await store.putMessage({ topic: 't', queueId: 0, body: Buffer.from('a') });
      await new Promise((resolve) => setImmediate(resolve));
      sim.failNext('write', 'EIO');
      // Staged in this turn's write window; the window's pwrite at the turn's end fails.
      await store.putMessage({ topic: 't', queueId: 0, body: Buffer.from('b') });
      await new Promise((resolve) => setImmediate(resolve));
      await expect(store.putMessage({ topic: 't', queueId: 0, body: Buffer.from('c') }))
        .rejects.toMatchObject({ code: 'STORE_STOPPED' });
    } finally {
      await store.close();
    }
  });
});

describe('appends that wait for the log (a segment roll or growth not done yet)', () => {
  it('a turn of appends across several rolls, batches among them, keeps their order', async () => {
    // 64 KiB segments and nothing awaited: the turn outruns every roll, so most appends wait
    // for one, and each roll's appends fill the next segment and wait for the one after.
    const store = await StoreEngine.open(tmp.make(), { backend: fileCase.make(),
      commitLogSegmentSize: 64 * 1024 });
    try {
      const body = Buffer.alloc(500, 3);
      const pending: Promise<{ queueOffset: number; physicalOffset: number }[]>[] = [];
      for (let i = 0; i < 1200; i++) {
        if (i % 100 === 50) {
          pending.push(store.putMessages([0, 1, 2].map(() => ({ topic: 't', queueId: 0, body }))));
        } else {
          pending.push(Promise.resolve(store.put({ topic: 't', queueId: 0, body }))
            .then((r) => [r]));
        }
      }
      const results = (await Promise.all(pending)).flat();
      expect(results).toHaveLength(1200 + 12 * 2);
      // In the order they were asked for: consecutive queue offsets, increasing log offsets.
      expect(results.map((r) => r.queueOffset)).toEqual(results.map((_, i) => i));
      for (let i = 1; i < results.length; i++) {
        expect(results[i]!.physicalOffset).toBeGreaterThan(results[i - 1]!.physicalOffset);
      }
      // They spanned segments: more than 1.2 MB of records in 64 KiB segments.
      expect(results.at(-1)!.physicalOffset).toBeGreaterThan(10 * 64 * 1024);
      const read = store.getMessage('t', 0, 1000, 4);
      expect('records' in read && read.records.map((m) => m.queueOffset)).toEqual(
        [1000, 1001, 1002, 1003]);
    } finally {
      await store.close();
    }
  });
});
