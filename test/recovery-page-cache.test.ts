/**
 * Recovery after an unclean end (lib/store/recovery.ts, consume-queue.ts, index-service.ts,
 * mapped-file.ts): what an open reads is the page cache, which may hold writes of a run that
 * crashed or failed to open and that never reached the disk. An open that relies on such bytes
 * (ConsumeQueue entries it dropped, an index header it cut, a log tail it emptied) syncs them
 * before a checkpoint or a clean close vouches for them, so a later power cut cannot bring back
 * what was dropped. On the simulated disk, which keeps unflushed writes until a crash.
 */
import { describe, expect, it } from 'vitest';
import { options, rejection, SEGMENT_BYTES, StoreEngine, useTempDirs } from
  './support/recovery-kit.js';
import { SimBackend } from './support/sim-backend.js';
import { segmentOf } from './support/store-check.js';

const tempDir = useTempDirs();
const body = (i: number): Buffer => Buffer.from(`message ${i} `.repeat(8));
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Every flush fails with EIO until the returned function is called. */
function failFlushes(disk: SimBackend): () => void {
  return disk.failWhen((event) => (event.op === 'flush' ? 'EIO' : null));
}

describe('entries dropped by a recovery whose open failed', () => {
  it('stay dropped after a later clean close and a power cut', async () => {
    const dir = tempDir();
    const disk = new SimBackend({ seed: 143 });
    const opts = options(disk);
    let store = await StoreEngine.open(dir, opts);
    for (let i = 0; i < 2; i++) {
      await store.putMessage({ topic: 'Victim', queueId: 0, body: body(i), keys: [`v${i}`] });
    }
    await store.flushed();
    await store.runRetention(); // the checkpoint: records 0 and 1 dispatched
    const dispatched = store.commitLogMaxOffset;
    for (let i = 2; i < 6; i++) {
      await store.putMessage({ topic: 'Victim', queueId: 0, body: body(i), keys: [`v${i}`] });
    }
    await turn();
    // The queue and the index reach the disk, records 2..5 of the log do not.
    await store.storage.consumeQueues.flush();
    await store.storage.index.flush();
    disk.crash({ mode: 'drop-unflushed' });
    await store.close().catch(() => undefined); // its files died with the crash

    // Recovery drops entries 2..5 and cuts the index, then the open fails before any sync:
    // the zeros and the shorter index header are in the page cache only.
    const stopFailing = failFlushes(disk);
    await rejection(StoreEngine.open(dir, opts));
    stopFailing();

    // The next open reads that page cache: nothing left to drop. Other records then take the
    // place of the lost ones in the log, and the store closes cleanly.
    store = await StoreEngine.open(dir, opts);
    expect(store.getMaxOffsetInQueue('Victim', 0)).toBe(2);
    for (let i = 0; i < 6; i++) {
      await store.putMessage({ topic: 'Other', queueId: 0, body: body(100 + i) });
    }
    expect(store.commitLogMaxOffset).toBeGreaterThan(dispatched);
    await store.close();

    // A power cut loses only what no flush reached: the drop must have been among the flushed.
    disk.crash({ mode: 'drop-unflushed' });
    store = await StoreEngine.open(dir, opts);
    try {
      expect(store.getMaxOffsetInQueue('Victim', 0)).toBe(2);
      expect(store.getMessage('Victim', 0, 0, 8).records.map((r) => r.body.toString()))
        .toEqual([body(0).toString(), body(1).toString()]);
      for (let i = 0; i < 6; i++) {
        const found = store.storage.index.queryOffsets('Victim', `v${i}`, 8, 0,
          Number.MAX_SAFE_INTEGER);
        expect(found.filter((o) => o >= dispatched), `index of v${i}`).toEqual([]);
      }
    } finally {
      await store.close();
    }
  });
});

describe('an open that fails after a clean close', () => {
  it('leaves a crash behind: what its recovery dropped is synced by the next open', async () => {
    const dir = tempDir();
    const disk = new SimBackend({ seed: 3 });
    const opts = options(disk);
    let store = await StoreEngine.open(dir, opts);
    let last = await store.putMessage({ topic: 'Victim', queueId: 0, body: body(0),
      keys: ['v0'] });
    for (let i = 1; i < 4; i++) {
      last = await store.putMessage({ topic: 'Victim', queueId: 0, body: body(i),
        keys: [`v${i}`] });
    }
    await store.close();
    // The disk garbles the last record's body: the next open cuts it off as a torn tail.
    const segment = segmentOf(dir, last.physicalOffset, SEGMENT_BYTES);
    const file = disk.openSync(segment, { sizeBytes: 0, create: false, readOnly: false });
    file.write((last.physicalOffset % SEGMENT_BYTES) + 70, Buffer.alloc(8, 0xff));
    await file.flush();
    file.close();

    // The next open cannot write `abort` (the disk is full for a moment). Had its recovery
    // dropped entry 3 and cut the index before that (in the page cache), the open after it
    // would take the page cache for the disk, as after a clean close.
    const stopFailing = disk.failWhen((event) =>
      (event.op === 'writeFile' && event.path.endsWith('abort') ? 'ENOSPC' : null));
    await rejection(StoreEngine.open(dir, opts));
    stopFailing();

    store = await StoreEngine.open(dir, opts);
    expect(store.getMaxOffsetInQueue('Victim', 0)).toBe(3);
    for (let i = 0; i < 6; i++) {
      await store.putMessage({ topic: 'Other', queueId: 0, body: body(100 + i) });
    }
    await store.close();
    disk.crash({ mode: 'drop-unflushed' });
    store = await StoreEngine.open(dir, opts);
    try {
      expect(store.getMaxOffsetInQueue('Victim', 0)).toBe(3);
      const found = store.storage.index.queryOffsets('Victim', 'v3', 8, 0,
        Number.MAX_SAFE_INTEGER);
      expect(found).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

describe('the bytes past a crashed log', () => {
  it('are zeros on disk once a later run closed cleanly, though it found them zeros', async () => {
    const dir = tempDir();
    const disk = new SimBackend({ seed: 7 });
    const opts = options(disk);
    let store = await StoreEngine.open(dir, opts);
    for (let i = 0; i < 4; i++) await store.putMessage({ topic: 'T', queueId: 0, body: body(i) });
    await store.flushed();
    await store.runRetention(); // the checkpoint: the log ends at `end`
    const end = store.commitLogMaxOffset;
    const big = (i: number): Buffer => Buffer.alloc(700, i);
    await store.putMessages([4, 5, 6, 7, 8, 9].map((i) => ({ topic: 'T', queueId: 0,
      body: big(i) })));
    await turn();
    // The batch's write is torn: a prefix of it reaches the disk, and recovery ends the log
    // before the batch, at `end`. The bytes after it hold the prefix.
    disk.crash({ mode: 'keep-all', tear: true });
    await store.close().catch(() => undefined); // its files died with the crash
    const segment = segmentOf(dir, end, SEGMENT_BYTES);
    const past = (): Buffer => disk.durableBytes(segment)!.subarray(end % SEGMENT_BYTES);
    expect(past().some((b) => b !== 0)).toBe(true);

    // The open empties the tail in the page cache, then fails before syncing it.
    let emptied = false;
    const stopFailing = disk.failWhen((event) => {
      if (event.op === 'write' && event.path === segment) emptied = true;
      return emptied && (event.op === 'writeFile' || event.op === 'flush') ? 'ENOSPC' : null;
    });
    await rejection(StoreEngine.open(dir, opts));
    stopFailing();
    store = await StoreEngine.open(dir, opts); // finds zeros there: nothing to write
    expect(store.commitLogMaxOffset).toBe(end);
    await store.close();
    // A clean close says the bytes past the log are zeros on disk (the next open trusts them).
    expect(past().every((b) => b === 0)).toBe(true);
  });
});
