/**
 * A follower's cut of a diverged tail (ReplicaLog.truncateTo) against what runs beside it and
 * what can end it, on the simulated disk: a flush in flight across the cut, and kill -9 or a
 * power cut at every I/O call of the cut. The store reopens agreeing with itself: its log holds
 * the records before the cut, or all of them, and every ConsumeQueue exactly the records of
 * its queue in that log.
 */
import { describe, expect, it } from 'vitest';
import { StoreEngine } from '../../lib/store/store-engine.js';
import type { IoBackend } from '../../lib/store/io/backend.js';
import { useTempDirs } from '../support/backends.js';
import { SimBackend } from '../support/sim-backend.js';

const tmp = useTempDirs();
const SEGMENT = 64 * 1024;
const TOPICS = ['t0', 't1', 't2'];

async function open(backend: IoBackend, dir = tmp.make()): Promise<StoreEngine> {
  return StoreEngine.open(dir, { backend, commitLogSegmentSize: SEGMENT });
}

/** A master with `n` messages, keyed, over three topics of two queues each. */
async function master(n: number): Promise<StoreEngine> {
  const store = await open(new SimBackend({ seed: 7 }));
  for (let i = 0; i < n; i++) {
    await store.putMessage({ topic: TOPICS[i % 3]!, queueId: i % 2,
      body: Buffer.alloc(300 + (i % 7) * 50, i), keys: [`key-${i}`] });
  }
  return store;
}

/** A follower on `backend` holding the whole of `from`'s log. */
async function follower(from: StoreEngine, backend: IoBackend): Promise<StoreEngine> {
  const store = await open(backend);
  store.follow(true);
  for (let at = 0; at < from.commitLogMaxOffset;) {
    const { frames, next } = from.replica.readChunk(at, 8192);
    await store.replica.append(at, frames);
    at = next;
  }
  return store;
}

interface Logged { offset: number; topic: string; queueId: number }

function logged(engine: StoreEngine): Logged[] {
  return [...engine.storage.commitLog.iterate(engine.commitLogMinOffset)].map((r) =>
    ({ offset: r.physicalOffset, topic: r.topic, queueId: r.queueId }));
}

describe('a follower\'s cut', () => {
  it('a commit-log flush in flight across the cut claims nothing past it', async () => {
    // Simulator seed 48 with a follower: a flush that started before the cut finished after
    // it and raised the flushed position past the cut ("positions out of order"; the store
    // stopped), or would have said bytes past the cut were durable.
    let hold: Promise<void> | null = null;
    let release = (): void => undefined;
    const disk = new SimBackend({ seed: 8, flushDelay: async (p) => {
      if (hold !== null && p.includes('commitlog')) await hold;
      await new Promise((resolve) => setImmediate(resolve));
    } });
    const source = await master(150);
    const store = await follower(source, disk);
    const all = logged(store);
    const cut = all[90]!.offset;
    hold = new Promise((resolve) => { release = resolve; });
    const flushing = store.flushed();
    await new Promise((resolve) => setImmediate(resolve));
    hold = null;
    const cutting = store.replica.truncateTo(cut);
    await new Promise((resolve) => setImmediate(resolve));
    release();
    await flushing;
    await cutting;
    expect(store.commitLogFlushedOffset).toBeLessThanOrEqual(cut);
    await store.flushed();
    expect(store.commitLogFlushedOffset).toBe(cut);
    await store.replica.append(cut, source.replica.readChunk(cut, 4096).frames);
    await store.close();
    const reopened = await open(disk, store.dir);
    try {
      expect(logged(reopened).slice(0, 90)).toEqual(all.slice(0, 90));
      expect(reopened.commitLogMaxOffset).toBeGreaterThan(cut);
    } finally {
      await Promise.all([reopened.close(), source.close()]);
    }
  });
});
