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
import { SimBackend, type CrashMode } from '../support/sim-backend.js';
import { ProcessDisk } from '../sim/process-disk.js';

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

/** The log is `all` or its first `kept` records, and each queue holds exactly its records. */
function expectConsistent(engine: StoreEngine, all: Logged[], kept: number): void {
  const now = logged(engine);
  expect([kept, all.length]).toContain(now.length);
  expect(now).toEqual(all.slice(0, now.length));
  for (const topic of TOPICS) {
    for (const queueId of [0, 1]) {
      const mine = now.filter((r) => r.topic === topic && r.queueId === queueId);
      expect(engine.getMaxOffsetInQueue(topic, queueId), `${topic}/${queueId}`)
        .toBe(mine.length);
      const last = mine.at(-1);
      if (last !== undefined) {
        const queue = engine.storage.consumeQueues.get(topic, queueId)!;
        expect(queue.get(mine.length - 1)?.physicalOffset).toBe(last.offset);
      }
    }
  }
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

  it.each<[string, CrashMode]>([['kill -9', 'keep-all'], ['a power cut', 'drop-unflushed'],
    ['a power cut keeping some writes', 'random-subset']])(
    '%s at any I/O call of the cut leaves a store that agrees with itself', async (_, mode) => {
      // Simulator seed 153 with a follower: kill -9 after the cut dropped ConsumeQueue entries
      // but before its checkpoint was written; the reopen found the cut records in the log,
      // past the old checkpoint, and the queues without them.
      const source = await master(120);
      let calls = 0;
      for (let at = 1; ; at++) {
        const sim = new SimBackend({ seed: 100 + at });
        const disk = new ProcessDisk(sim);
        const store = await follower(source, disk);
        const all = logged(store);
        await store.flushed();
        await store.runRetention(); // the checkpoint on disk: flushed and dispatched to the end
        let died = false;
        disk.onKill = () => { died = true; };
        disk.killAfter(at);
        await store.replica.truncateTo(all[80]!.offset).catch(() => undefined);
        if (!died) {
          calls = at;
          disk.kill();
        }
        await store.close().catch(() => undefined); // a dead process: nothing reaches the disk
        sim.crash({ mode });
        const reopened = await open(sim, store.dir);
        try {
          expectConsistent(reopened, all, 80);
        } finally {
          await reopened.close();
        }
        if (!died) break;
      }
      expect(calls).toBeGreaterThan(5);
      await source.close();
    });

  it('a checkpoint write in flight across the cut does not undo it', async () => {
    // A logics flush that started before the cut wrote its dispatched offset, past the cut,
    // after the cut's own checkpoint (which had found nothing new to write): a kill before the
    // cut ended left queues without records the log still held.
    const source = await master(120);
    let calls = 0;
    for (let at = 1; ; at++) {
      const held: (() => void)[] = [];
      let holding = false;
      const sim = new SimBackend({ seed: 200 + at, flushDelay: async (p) => {
        if (p.includes('consumequeue') && holding) {
          await new Promise<void>((resolve) => held.push(resolve));
        } else if (p.includes('consumequeue')) {
          for (const resolve of held.splice(0)) resolve();
        }
        await new Promise((resolve) => setImmediate(resolve));
      } });
      const disk = new ProcessDisk(sim);
      const store = await open(disk);
      store.follow(true);
      let mark = 0;
      for (let from = 0, chunks = 0; from < source.commitLogMaxOffset; chunks++) {
        if (chunks === 12) {
          await store.flushed();
          await store.runRetention(); // the checkpoint: flushed and dispatched to here
          mark = from;
        }
        const { frames, next } = source.replica.readChunk(from, 4096);
        await store.replica.append(from, frames);
        from = next;
      }
      const all = logged(store);
      await store.flushed();
      holding = true;
      const stale = store.runRetention().catch(() => undefined);
      await new Promise((resolve) => setImmediate(resolve));
      holding = false;
      let died = false;
      disk.onKill = () => { died = true; };
      disk.killAfter(at);
      await store.replica.truncateTo(mark).catch(() => undefined);
      for (const resolve of held.splice(0)) resolve();
      await stale;
      if (!died) {
        calls = at;
        disk.kill();
      }
      await store.close().catch(() => undefined);
      sim.crash({ mode: 'keep-all' });
      const reopened = await open(sim, store.dir);
      try {
        expectConsistent(reopened, all, all.filter((r) => r.offset < mark).length);
      } finally {
        await reopened.close();
      }
      if (!died) break;
    }
    expect(calls).toBeGreaterThan(5);
    await source.close();
  });
});
