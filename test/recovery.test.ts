/**
 * Recovery (lib/store/recovery.ts, SPEC §6): a torn or garbled last record is cut off and its
 * queue offset reused, after a clean close or a crash; a bad record with valid ones after it,
 * before the flushed offset, is CORRUPT_DATA and the failed open changes nothing; a batch is all
 * or nothing; recovery reports progress and re-dispatches what the checkpoint did not cover.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PocketMQError } from '../lib/errors.js';
import {
  checkIndex, checkQueues, differences, garble, readLog, segmentOf, snapshot,
} from './support/store-check.js';
import {
  copyOpenStore, lastRecord, StoreEngine, options, rejection, SEGMENT_BYTES, truncate,
  useTempDirs, write, type Written,
} from './support/recovery-kit.js';
import { SimBackend } from './support/sim-backend.js';
import { Plan, recordOf } from './support/workload.mjs';

const tempDir = useTempDirs();
const UNITS = 400; // ~3 segments; record 399 is the last, keyed (399 % 3 === 0)

/**
 * The store in `dir` lost its last record (seq `last.seq`): everything before it is intact, the
 * ConsumeQueue and the index no longer point at it, and the next append takes its place.
 */
async function expectLastRecordGone(dir: string, opts: ReturnType<typeof options>,
  w: Written, context: string): Promise<void> {
  const last = lastRecord(w);
  const { topic, queueId, result } = last;
  const store = await StoreEngine.open(dir, opts);
  try {
    expect(store.recovery?.tornTail, context).toBe(true);
    expect(store.recovery?.endOffset, context).toBe(result.physicalOffset);
    const log = readLog(store, 'single', context);
    expect(log.seqs, context).toBe(last.seq);
    checkQueues(store, log, context);
    checkIndex(store, log, context);
    expect(store.getMaxOffsetInQueue(topic, queueId), context).toBe(result.queueOffset);
    for (const key of last.keys) {
      const offsets = store.storage.index.queryOffsets(topic, key, 64, 0, Number.MAX_SAFE_INTEGER);
      expect(offsets.filter((o) => o >= result.physicalOffset), `${context}: index of ${key}`)
        .toEqual([]);
    }
    // The next append reuses the queue offset and the place; the old keys find nothing.
    const again = await store.putMessage({ ...recordOf(last.seq, topic, queueId), keys: ['new'] });
    expect([again.queueOffset, again.physicalOffset], context)
      .toEqual([result.queueOffset, result.physicalOffset]);
    for (const key of last.keys) {
      expect(store.queryMessage(topic, key, 64).map((r) => r.physicalOffset), context)
        .not.toContain(result.physicalOffset);
    }
    expect(store.queryMessage(topic, 'new').map((r) => r.physicalOffset))
      .toEqual([result.physicalOffset]);
  } finally {
    await store.close();
  }
  // A short segment file stays short: it grows as appends need it.
  const size = fs.statSync(segmentOf(dir, result.physicalOffset, SEGMENT_BYTES)).size;
  expect(size, context).toBeLessThanOrEqual(SEGMENT_BYTES);
  expect(size, context).toBeGreaterThanOrEqual(
    (result.physicalOffset % SEGMENT_BYTES) + result.size);
}

async function writeAndClose(dir: string, opts: ReturnType<typeof options>,
  units = UNITS): Promise<Written> {
  const store = await StoreEngine.open(dir, opts);
  const w = await write(store, units);
  await store.close();
  return w;
}

describe.each(['mmap', 'file'] as const)('torn tail on the %s backend', (backend) => {
  it.each([1, 6, 11, 40, -1])('a newest segment cut %i bytes into its last record opens',
    async (cut) => {
      const dir = tempDir();
      const opts = options(backend);
      const w = await writeAndClose(dir, opts);
      const { result } = lastRecord(w);
      const keep = (result.physicalOffset % SEGMENT_BYTES) + (cut < 0 ? result.size + cut : cut);
      truncate(segmentOf(dir, result.physicalOffset, SEGMENT_BYTES), keep);
      await expectLastRecordGone(dir, opts, w, `${backend}, cut at ${keep}`);
    });

  it('a segment holding only a torn first record opens', async () => {
    const dir = tempDir();
    const opts = options(backend);
    const store = await StoreEngine.open(dir, opts);
    let w = await write(store, 1);
    while (lastRecord(w).result.physicalOffset % SEGMENT_BYTES !== 0) {
      w = await write(store, 1, 'single', w);
    }
    await store.close();
    truncate(segmentOf(dir, lastRecord(w).result.physicalOffset, SEGMENT_BYTES), 30);
    await expectLastRecordGone(dir, opts, w, `${backend}, first record of a segment`);
  });

  it.each([
    ['checksum', 0, 4], ['totalSize', 4, 1], ['magic', 8, 2], ['queue offset', 24, 1],
    ['body', 70, 3], ['last byte', -1, 1],
  ])('a last record garbled in its %s is cut off', async (_field, at, length) => {
    const dir = tempDir();
    const opts = options(backend);
    const w = await writeAndClose(dir, opts);
    const { result } = lastRecord(w);
    const position = (result.physicalOffset % SEGMENT_BYTES) + (at < 0 ? result.size + at : at);
    garble(segmentOf(dir, result.physicalOffset, SEGMENT_BYTES), position, length);
    await expectLastRecordGone(dir, opts, w, `${backend}, garbled at ${position}`);
  });

  it('after a crash, a garbled last record is cut off and the rest re-dispatched', async () => {
    const dir = tempDir();
    const crashed = tempDir();
    const opts = options(backend);
    const store = await StoreEngine.open(dir, opts);
    const w = await write(store, UNITS);
    await store.flushed();
    copyOpenStore(dir, crashed);
    await store.close();
    const { result } = lastRecord(w);
    garble(segmentOf(crashed, result.physicalOffset, SEGMENT_BYTES),
      (result.physicalOffset % SEGMENT_BYTES) + 64, 8);
    expect(fs.existsSync(path.join(crashed, 'abort'))).toBe(true);
    await expectLastRecordGone(crashed, opts, w, `${backend}, after a crash`);
  });
});

const crashes = [1, 2, 3].flatMap((seed) => [
  { seed, mode: 'drop-unflushed' as const, tear: false },
  { seed, mode: 'keep-all' as const, tear: true },
  { seed, mode: 'random-subset' as const, tear: true },
]);

describe('a torn tail on the simulated disk', () => {
  it.each(crashes)('a crash ($mode, tear $tear, seed $seed) keeps what was flushed',
    async ({ seed, mode, tear }) => {
      const dir = tempDir();
      const disk = new SimBackend({ seed });
      const opts = options(disk);
      const store = await StoreEngine.open(dir, opts);
      const w = await write(store, 150, 'mixed');
      await store.flushed();
      const flushedSeqs = w.plan.seq;
      await write(store, 60, 'mixed', w);
      await new Promise((resolve) => setImmediate(resolve)); // the turn's commit
      disk.crash({ mode, tear });
      await store.close().catch(() => undefined); // fails: its files died with the crash
      const reopened = await StoreEngine.open(dir, opts);
      try {
        const log = readLog(reopened, 'mixed', `sim ${mode} seed ${seed}`);
        expect(log.seqs).toBeGreaterThanOrEqual(flushedSeqs);
        checkQueues(reopened, log, `sim ${mode} seed ${seed}`);
        checkIndex(reopened, log, `sim ${mode} seed ${seed}`);
      } finally {
        await reopened.close();
      }
    });
});

describe('SYNC_FLUSH on the simulated disk', () => {
  it.each([1, 2, 3, 4])('every acknowledged record survives power loss (seed %i)', async (seed) => {
    const dir = tempDir();
    const disk = new SimBackend({ seed });
    const opts = options(disk, { flushDiskType: 'SYNC_FLUSH' });
    const store = await StoreEngine.open(dir, opts);
    const plan = new Plan('mixed');
    const acked: boolean[] = [];
    const appends: Promise<unknown>[] = [];
    for (let i = 0; i < 120; i++) {
      const unit = plan.next();
      const put = unit.batch ? store.putMessages(unit.records) : store.putMessage(unit.records[0]!);
      appends.push(put.then(() => { acked[unit.index] = true; }, () => undefined));
      if (i % 8 === 7) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(appends.slice(0, 60));
    disk.crash({ mode: 'random-subset', tear: true });
    await Promise.all(appends);
    await store.close().catch(() => undefined); // fails: its files died with the crash
    let ackedUnits = 0;
    while (acked[ackedUnits] === true) ackedUnits++;
    expect(ackedUnits).toBeGreaterThanOrEqual(60);
    const reopened = await StoreEngine.open(dir, opts);
    try {
      const log = readLog(reopened, 'mixed', `SYNC_FLUSH seed ${seed}`);
      expect(log.units).toBeGreaterThanOrEqual(ackedUnits);
      checkQueues(reopened, log, `SYNC_FLUSH seed ${seed}`);
      checkIndex(reopened, log, `SYNC_FLUSH seed ${seed}`);
    } finally {
      await reopened.close();
    }
  });
});

describe('a batch cut by a crash', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('is all or nothing (seed %i)', async (seed) => {
    const dir = tempDir();
    const disk = new SimBackend({ seed });
    const opts = options(disk);
    const store = await StoreEngine.open(dir, opts);
    const w = await write(store, 30, 'batch');
    await store.flushed();
    const flushedUnits = w.units.length;
    await write(store, 3, 'batch', w);
    await new Promise((resolve) => setImmediate(resolve)); // the turn's commit
    disk.crash({ mode: 'keep-all', tear: true }); // the last write of each file torn
    await store.close().catch(() => undefined); // fails: its files died with the crash
    const reopened = await StoreEngine.open(dir, opts);
    try {
      const log = readLog(reopened, 'batch', `batch seed ${seed}`); // throws on a cut batch
      expect(log.units).toBeGreaterThanOrEqual(flushedUnits);
      checkQueues(reopened, log, `batch seed ${seed}`);
      checkIndex(reopened, log, `batch seed ${seed}`);
    } finally {
      await reopened.close();
    }
  });
});

describe.each(['mmap', 'file'] as const)('corruption in the middle, %s backend', (backend) => {
  function expectCorrupt(err: unknown, offset: number): void {
    expect(err).toBeInstanceOf(PocketMQError);
    expect(err).toMatchObject({ code: 'CORRUPT_DATA', offset });
    expect((err as Error).message).toContain(String(offset));
  }

  it('after a clean close: the open checks from the checkpoint on; an older bad record is ' +
    'CORRUPT_DATA when read', async () => {
    const dir = tempDir();
    const opts = options(backend);
    const w = await writeAndClose(dir, opts);
    // A record in the middle of the newest segment, with valid records after it.
    const unit = w.units[w.units.length - 20]!;
    const victim = unit.results[0]!;
    garble(segmentOf(dir, victim.physicalOffset, SEGMENT_BYTES),
      (victim.physicalOffset % SEGMENT_BYTES) + 70, 2);
    const store = await StoreEngine.open(dir, opts);
    try {
      // Only the checkpoint's last record (and nothing after it) was checked.
      expect(store.recovery).toMatchObject({ records: 1, tornTail: false,
        startOffset: lastRecord(w).result.physicalOffset });
      const { topic, queueId } = unit.unit.records[0]!;
      expect(() => store.getMessage(topic, queueId, victim.queueOffset, 1))
        .toThrow(expect.objectContaining({ code: 'CORRUPT_DATA', offset: victim.physicalOffset }));
    } finally {
      await store.close();
    }
  });

  it('after a crash: a bad record before the flushed offset is CORRUPT_DATA', async () => {
    const dir = tempDir();
    const crashed = tempDir();
    const opts = options(backend);
    const w = await writeAndClose(dir, opts, 200);
    const victim = lastRecord(w).result; // the last record the checkpoint knows flushed
    const store = await StoreEngine.open(dir, opts);
    await write(store, 200, 'single', w);
    await store.flushed();
    copyOpenStore(dir, crashed);
    await store.close();
    garble(segmentOf(crashed, victim.physicalOffset, SEGMENT_BYTES),
      (victim.physicalOffset % SEGMENT_BYTES) + 4, 4);
    const before = snapshot(crashed);
    expectCorrupt(await rejection(StoreEngine.open(crashed, opts)), victim.physicalOffset);
    // A segment caught while being allocated ahead (shorter, all zeros) may be grown.
    expect(differences(before, snapshot(crashed), true)).toEqual([]);
  });
});

describe('recovery of a crashed store', () => {
  it('lets the event loop run while it checks a large log', async () => {
    const dir = tempDir();
    const crashed = tempDir();
    const opts = { backend: 'mmap' as const, commitLogSegmentSize: 16 * 2 ** 20 };
    const store = await StoreEngine.open(dir, opts);
    const body = Buffer.alloc(4000, 9);
    let last: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < 20_000; i++) last = store.putMessage({ topic: 'Big', queueId: 0, body });
    await last;
    await store.flushed();
    copyOpenStore(dir, crashed);
    await store.close();
    fs.rmSync(path.join(crashed, 'checkpoint')); // nothing covered: check the whole 80 MB
    let turns = 0;
    let running = true;
    const spin = (): void => {
      turns++;
      if (running) setImmediate(spin);
    };
    setImmediate(spin);
    const turnsAtProgress: number[] = [];
    const reopened = await StoreEngine.open(crashed,
      { ...opts, onRecoveryProgress: () => turnsAtProgress.push(turns) });
    running = false;
    try {
      expect(reopened.recovery!.checkedBytes).toBeGreaterThan(64 * 2 ** 20);
      expect(reopened.getMaxOffsetInQueue('Big', 0)).toBe(20_000);
      // Recovery yields every limits.recoveryYieldBytes: the loop ran between its steps.
      expect(turnsAtProgress.length).toBeGreaterThan(3);
      expect(turnsAtProgress.at(-1)!).toBeGreaterThan(turnsAtProgress[0]!);
    } finally {
      await reopened.close();
    }
  });

  it('re-dispatches every record the checkpoint did not cover, reporting progress', async () => {
    const dir = tempDir();
    const crashed = tempDir();
    const store = await StoreEngine.open(dir, options('mmap'));
    const w = await write(store, 900, 'mixed');
    await store.flushed();
    copyOpenStore(dir, crashed);
    await store.close();
    const segments = fs.readdirSync(path.join(crashed, 'commitlog')).length;
    expect(segments).toBeGreaterThan(4);
    const progress: { checkedBytes: number; totalBytes: number }[] = [];
    const reopened = await StoreEngine.open(crashed,
      options('mmap', { onRecoveryProgress: (p) => progress.push(p) }));
    try {
      // Nothing flushed the ConsumeQueues or the checkpoint since the store was created.
      expect(reopened.recovery).toMatchObject({ startOffset: 0, redispatched: w.plan.seq,
        records: w.plan.seq, tornTail: false });
      expect(progress.length).toBeGreaterThanOrEqual(segments - 3); // files allocated ahead
      const checked = progress.map((p) => p.checkedBytes);
      expect(checked).toEqual([...checked].sort((a, b) => a - b));
      expect(progress.every((p) => p.checkedBytes <= p.totalBytes)).toBe(true);
      const log = readLog(reopened, 'mixed', 'crashed');
      expect(log.seqs).toBe(w.plan.seq);
      checkQueues(reopened, log, 'crashed');
      checkIndex(reopened, log, 'crashed');
    } finally {
      await reopened.close();
    }
  });
});

describe.each(['mmap', 'file'] as const)('past the end of a crashed log, %s backend', (backend) => {
  it('stale records past a torn tail are emptied before appends reach them', async () => {
    const dir = tempDir();
    const crashed = tempDir();
    const opts = options(backend);
    const store = await StoreEngine.open(dir, opts);
    // Nothing flushes a checkpoint (idle timers): past its start everything is a tail.
    const w = await write(store, 60);
    await store.flushed();
    copyOpenStore(dir, crashed);
    await store.close();
    // The 41st record torn: the 19 after it are valid records at their own offsets, stale.
    const victim = w.units[40]!;
    const at = victim.results[0]!.physicalOffset;
    garble(segmentOf(crashed, at, SEGMENT_BYTES), (at % SEGMENT_BYTES) + 70, 2);
    const reopened = await StoreEngine.open(crashed, opts);
    try {
      expect(reopened.recovery).toMatchObject({ endOffset: at, tornTail: true });
      // The same record again ends where the torn one did: at the first stale record.
      const again = await reopened.putMessage(victim.unit.records[0]!);
      expect([again.physicalOffset, again.size]).toEqual([at, victim.results[0]!.size]);
    } finally {
      await reopened.close();
    }
    const file = fs.readFileSync(segmentOf(crashed, at, SEGMENT_BYTES));
    const end = (at % SEGMENT_BYTES) + victim.results[0]!.size;
    expect(file.subarray(end).equals(Buffer.alloc(file.length - end))).toBe(true);
    const third = await StoreEngine.open(crashed, opts);
    try {
      // 41 records, none of the stale ones back.
      expect(readLog(third, 'single', 'third open').seqs).toBe(41);
      expect(third.recovery?.tornTail).toBe(false);
    } finally {
      await third.close();
    }
  });
});

describe.each(['mmap', 'file'] as const)('segment files of different sizes, %s backend',
  (backend) => {
  const MiB = 2 ** 20;

  it('a log whose first segment grew and was sealed short, and a short newest one, reopens',
    async () => {
      const dir = tempDir();
      const opts = options(backend, { commitLogSegmentSize: MiB });
      const store = await StoreEngine.open(dir, opts);
      // A new log starts with a small file that grows as it fills.
      const w = await write(store, 20);
      const first = segmentOf(dir, 0, MiB);
      expect(fs.statSync(first).size).toBeLessThan(MiB);
      let more = await write(store, 3000, 'single', w);
      while (lastRecord(more).result.physicalOffset < MiB) {
        more = await write(store, 50, 'single', more);
      }
      await store.close();
      // The sealed first segment cut right after its blank marker (as a file that never grew to
      // the end), the newest cut right after its last record: both shorter than the segment.
      const sealed = more.units.filter((u) => u.results[0]!.physicalOffset < MiB).at(-1)!;
      const blankAt = sealed.results.at(-1)!.physicalOffset + sealed.results.at(-1)!.size;
      truncate(first, blankAt + 12);
      const last = lastRecord(more).result;
      const newest = segmentOf(dir, last.physicalOffset, MiB);
      truncate(newest, (last.physicalOffset % MiB) + last.size);
      const reopened = await StoreEngine.open(dir, opts);
      try {
        expect(reopened.recovery?.tornTail).toBe(false);
        const log = readLog(reopened, 'single', `${backend}, short segments`);
        expect(log.seqs).toBe(lastRecord(more).seq + 1);
        checkQueues(reopened, log, 'short segments');
        const next = await reopened.putMessage(recordOf(lastRecord(more).seq + 1, 'Orders', 0));
        expect(next.physicalOffset).toBe(last.physicalOffset + last.size);
      } finally {
        await reopened.close();
      }
      expect(fs.statSync(first).size).toBe(blankAt + 12);
    });

  it('a clean reopen that changes nothing does not write the checkpoint', async () => {
    const dir = tempDir();
    const opts = options(backend);
    const store = await StoreEngine.open(dir, opts);
    await write(store, 5);
    await store.close();
    const checkpoint = path.join(dir, 'checkpoint');
    const before = fs.readFileSync(checkpoint);
    // cleanShutdown, the field at 12 + 7 * 8: 1 after the close.
    expect(before.readUInt32LE(12 + 7 * 8)).toBe(1);
    const again = await StoreEngine.open(dir, opts);
    try {
      // A write at open would have said cleanShutdown 0 (the store is open).
      expect(fs.readFileSync(checkpoint)).toEqual(before);
      expect(fs.existsSync(path.join(dir, 'abort'))).toBe(true);
      await write(again, 1);
    } finally {
      await again.close();
    }
    // The close wrote it: it covers the record appended since, and says clean again.
    const after = fs.readFileSync(checkpoint);
    expect(after.readUInt32LE(12 + 7 * 8)).toBe(1);
    expect(after.readUInt32LE(12)).toBeGreaterThan(before.readUInt32LE(12));
  });
});
