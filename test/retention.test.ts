import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Checkpoint } from '../lib/store/checkpoint.js';
import { ManualClock } from '../lib/store/clock.js';
import { StoreEngine, type PutResult } from '../lib/store/store-engine.js';
import type { StoreOptions } from '../lib/store/options.js';
import type { RecordInput } from '../lib/store/record-codec.js';
import { backendCases, SpyBackend, useTempDirs } from './support/backends.js';
import { SimBackend } from './support/sim-backend.js';

const SEG = 64 * 1024;
const HOUR = 3_600_000;
const tmp = useTempDirs();

const msg = (i: number, bodyBytes = 5000): RecordInput => ({
  topic: 'T', queueId: 0, body: Buffer.alloc(bodyBytes, i & 0xff), keys: [`k${i}`],
  uniqKey: `u${i}`,
});

const options = (backend: SpyBackend | SimBackend, clock: ManualClock): StoreOptions => ({
  backend, clock, commitLogSegmentSize: SEG, consumeQueueEntriesPerFile: 16,
  indexHashSlots: 16, indexMaxEntries: 16, flushIntervalMs: HOUR,
  flushConsumeQueueIntervalMs: HOUR, cleanResourceIntervalMs: 24 * HOUR,
});

const opened: StoreEngine[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close().catch(() => undefined);
});

async function open(dir: string, o: StoreOptions): Promise<StoreEngine> {
  const store = await StoreEngine.open(dir, o);
  opened.push(store);
  return store;
}

async function fill(store: StoreEngine, count: number, from = 0): Promise<PutResult[]> {
  const puts: PutResult[] = [];
  for (let i = from; i < from + count; i++) puts.push(await store.putMessage(msg(i)));
  await store.flushed();
  return puts;
}

describe.each(backendCases)('retention on the $kind backend', ({ make }) => {
  function setup(): { dir: string; spy: SpyBackend; clock: ManualClock; o: StoreOptions } {
    const spy = new SpyBackend(make());
    spy.usedRatio = 0.1;
    const clock = new ManualClock();
    return { dir: tmp.make(), spy, clock, o: options(spy, clock) };
  }

  it('deletes segments older than fileReservedTimeHours, never the newest', async () => {
    const { dir, spy, clock, o } = setup();
    const store = await open(dir, o);
    await fill(store, 40);
    const log = store.storage.commitLog;
    const segments = log.queue.files.length;
    expect(segments).toBeGreaterThanOrEqual(4);
    clock.advance(71 * HOUR);
    await store.runRetention();
    expect(store.commitLogMinOffset).toBe(0);
    clock.advance(2 * HOUR);
    await store.runRetention();
    const newest = log.queue.last!.fileFromOffset;
    expect(store.commitLogMinOffset).toBe(newest);
    expect(spy.exists(path.join(dir, 'commitlog', '00000000000000000000'))).toBe(false);
    clock.advance(1000 * HOUR);
    expect((await store.runRetention()).deletedSegments).toBe(0);
    expect(log.queue.files.map((f) => f.fileFromOffset)).toEqual([newest]);
    expect((await store.putMessage(msg(99))).status).toBe('PUT_OK');
  });

  it('dates a segment by the next one\'s first record without mapping that segment',
    async () => {
      const { dir, clock, o } = setup();
      let store = await open(dir, o);
      await fill(store, 40);
      await store.close();
      store = await open(dir, o);
      const files = [...store.storage.commitLog.queue.files];
      expect(files.length).toBeGreaterThanOrEqual(4);
      clock.advance(71 * HOUR);
      expect((await store.runRetention()).deletedSegments).toBe(0);
      // Only the newest segment is mapped (the reopen reads its end); on backends that do not
      // map, none.
      expect(files.filter((f) => f.mappedNow).map((f) => f.fileFromOffset))
        .toEqual(files[0]!.mapped ? [files.at(-1)!.fileFromOffset] : []);
      clock.advance(2 * HOUR);
      await store.runRetention();
      expect(store.commitLogMinOffset).toBe(files.at(-1)!.fileFromOffset);
    });

  it('moves the queue minimum so an old offset reads OFFSET_TOO_SMALL, also after reopen',
    async () => {
      const { dir, clock, o } = setup();
      let store = await open(dir, o);
      const puts = await fill(store, 40);
      const cq = store.storage.consumeQueues.get('T', 0)!;
      const cqFiles = cq.fileCount;
      clock.advance(73 * HOUR);
      await store.runRetention();
      const min = puts.findIndex((p) => p.physicalOffset >= store.commitLogMinOffset);
      expect(min).toBeGreaterThan(16);
      expect(store.getMinOffsetInQueue('T', 0)).toBe(min);
      expect(cq.fileCount).toBeLessThan(cqFiles);
      const old = store.getMessage('T', 0, 0, 10);
      expect([old.status, old.nextBeginOffset, old.minOffset]).toEqual(['OFFSET_TOO_SMALL', min,
        min]);
      const first = store.getMessage('T', 0, min, 1);
      expect([first.status, first.records[0]!.queueOffset]).toEqual(['FOUND', min]);
      expect(store.getOffsetInQueueByTime('T', 0, 0)).toBe(min);
      await store.close();
      store = await open(dir, o);
      const again = store.getMessage('T', 0, 0, 10);
      expect([again.status, again.nextBeginOffset]).toEqual(['OFFSET_TOO_SMALL', min]);
      expect(store.getMinOffsetInQueue('T', 0)).toBe(min);
      expect(store.getMaxOffsetInQueue('T', 0)).toBe(40);
    });

  it('deletes index files that only point into deleted segments', async () => {
    const { dir, clock, o } = setup();
    const store = await open(dir, o);
    const puts = await fill(store, 40);
    const index = store.storage.index;
    const indexFiles = index.fileCount;
    expect(indexFiles).toBeGreaterThanOrEqual(4);
    clock.advance(73 * HOUR);
    await store.runRetention();
    expect(index.fileCount).toBeLessThan(indexFiles);
    expect(store.queryMessage('T', 'u0')).toEqual([]);
    expect(store.queryMessage('T', 'k39').map((r) => r.physicalOffset))
      .toEqual([puts[39]!.physicalOffset]);
  });

  it('deletes before expiry under disk pressure', async () => {
    const { dir, spy, o } = setup();
    const store = await open(dir, o);
    await fill(store, 40);
    expect(await store.runRetention()).toMatchObject({ deletedSegments: 0, diskFull: false });
    spy.usedRatio = 0.8;
    const run = await store.runRetention();
    expect(run.deletedSegments).toBeGreaterThan(0);
    expect(run.diskFull).toBe(false);
    expect(store.commitLogMinOffset).toBe(store.storage.commitLog.queue.last!.fileFromOffset);
    expect(store.getMinOffsetInQueue('T', 0)).toBeGreaterThan(0);
  });

  it('refuses appends with DISK_FULL above diskFullRatio until usage drops', async () => {
    const { dir, spy, o } = setup();
    const store = await open(dir, o);
    const [put] = await fill(store, 1);
    spy.usedRatio = 0.95;
    expect((await store.runRetention()).diskFull).toBe(true);
    await expect(store.putMessage(msg(1))).rejects.toMatchObject({ code: 'DISK_FULL' });
    await expect(store.putMessages([msg(1)])).rejects.toMatchObject({ code: 'DISK_FULL' });
    expect(store.lookMessageByOffset(put!.physicalOffset)!.body).toEqual(msg(0).body);
    spy.usedRatio = 0.5;
    expect((await store.runRetention()).diskFull).toBe(false);
    expect((await store.putMessage(msg(1))).queueOffset).toBe(1);
  });
});

describe('a full simulated disk', () => {
  const BODY = 1000;
  /** A disk with room for what an open store with one record holds, plus `spareSegments`. */
  async function fullDisk(spareSegments: number): Promise<{ sim: SimBackend; o: StoreOptions }> {
    const probe = new SimBackend({ seed: 3 });
    const clock = new ManualClock();
    const o = { ...options(probe, clock), consumeQueueEntriesPerFile: 4096,
      diskMaxUsedSpaceRatio: 1, diskFullRatio: 1 };
    const store = await StoreEngine.open(tmp.make(), o);
    await store.putMessage({ topic: 'T', queueId: 0, body: Buffer.alloc(BODY) });
    const used = probe.usedBytes();
    await store.close();
    // The probe holds one segment; the store allocates one ahead once it is in use (room is
    // left for two).
    const sim = new SimBackend({ seed: 3,
      capacityBytes: used + (spareSegments + 2) * SEG + 4096 });
    return { sim, o: { ...o, backend: sim } };
  }

  /** Put until the disk is full; returns the acknowledged puts. */
  async function putUntilFull(store: StoreEngine, from = 0): Promise<PutResult[]> {
    const acked: PutResult[] = [];
    for (let i = from; i < from + 1000; i++) {
      try {
        acked.push(await store.putMessage({ topic: 'T', queueId: 0, body: Buffer.alloc(BODY, i) }));
      } catch (err) {
        expect(err).toMatchObject({ code: 'DISK_FULL' });
        return acked;
      }
    }
    throw new Error('the disk never filled');
  }

  function expectAll(store: StoreEngine, count: number): void {
    const got = store.getMessage('T', 0, 0, count);
    expect(got.records.map((r) => r.body[0])).toEqual(
      Array.from({ length: count }, (_, i) => i & 0xff));
  }

  it('refuses appends with DISK_FULL, keeps what was acknowledged, and resumes when freed',
    async () => {
      const { sim, o } = await fullDisk(1);
      const store = await open(tmp.make(), o);
      const acked = await putUntilFull(store);
      expect(acked.at(-1)!.physicalOffset).toBeGreaterThan(2 * SEG);
      expectAll(store, acked.length);
      await expect(store.putMessage(msg(0, BODY))).rejects.toMatchObject({ code: 'DISK_FULL' });
      sim.setCapacity(100 * SEG);
      const next = await store.putMessage({ topic: 'T', queueId: 0, body: Buffer.alloc(BODY, 7) });
      // The log goes on where it ended (the refused append waited for its segment to grow), or
      // in the following segment (it sealed the last one and waited for the next).
      const last = acked.at(-1)!;
      const nextSegment = (Math.floor(last.physicalOffset / SEG) + 1) * SEG;
      expect(next.queueOffset).toBe(acked.length);
      expect([last.physicalOffset + last.size, nextSegment]).toContain(next.physicalOffset);
      expect(store.getMessage('T', 0, acked.length, 1).records[0]!.body[0]).toBe(7);
    });

  it('refuses an append whose consume-queue file cannot be allocated, storing nothing',
    async () => {
      const sim = new SimBackend({ seed: 3 });
      const dir = tmp.make();
      const o = { ...options(sim, new ManualClock()), diskMaxUsedSpaceRatio: 1,
        diskFullRatio: 1 };
      let store = await open(dir, o);
      const put = (i: number, queueId = 0): Promise<PutResult> =>
        store.putMessage({ topic: 'T', queueId, body: Buffer.alloc(10, i) });
      await put(0);
      sim.setCapacity(sim.usedBytes() + 100);
      for (let i = 1; i < 16; i++) expect((await put(i)).queueOffset).toBe(i);
      const end = store.commitLogMaxOffset;
      // The 17th entry needs a second 16-entry file; a new queue needs its first one.
      for (const queueId of [0, 0, 1]) {
        await expect(put(16, queueId)).rejects.toMatchObject({ code: 'DISK_FULL' });
        await expect(store.putMessages([{ topic: 'T', queueId, body: Buffer.alloc(10) }]))
          .rejects.toMatchObject({ code: 'DISK_FULL' });
      }
      expect(store.commitLogMaxOffset).toBe(end);
      expect(store.getMaxOffsetInQueue('T', 0)).toBe(16);
      sim.setCapacity(100 * SEG);
      expect((await put(16)).queueOffset).toBe(16);
      expect((await put(0, 1)).queueOffset).toBe(0);
      await store.close();
      store = await open(dir, o);
      expectAll(store, 17);
      expect(store.getMaxOffsetInQueue('T', 1)).toBe(1);
    });

  it('refuses an append whose index file cannot be allocated, storing nothing', async () => {
    const sim = new SimBackend({ seed: 3 });
    const dir = tmp.make();
    const o = { ...options(sim, new ManualClock()), consumeQueueEntriesPerFile: 1024,
      diskMaxUsedSpaceRatio: 1, diskFullRatio: 1 };
    let store = await open(dir, o);
    const put = (i: number): Promise<PutResult> =>
      store.putMessage({ topic: 'T', queueId: 0, body: Buffer.alloc(10, i), keys: [`k${i}`] });
    await put(0);
    sim.setCapacity(sim.usedBytes() + 100);
    // 16 entries per index file: the 17th key needs a new one.
    for (let i = 1; i < 16; i++) expect((await put(i)).queueOffset).toBe(i);
    const end = store.commitLogMaxOffset;
    for (let attempt = 0; attempt < 2; attempt++) {
      await expect(put(16)).rejects.toMatchObject({ code: 'DISK_FULL' });
    }
    expect([store.commitLogMaxOffset, store.getMaxOffsetInQueue('T', 0)]).toEqual([end, 16]);
    sim.setCapacity(100 * SEG);
    expect((await put(16)).queueOffset).toBe(16);
    expect(store.queryMessage('T', 'k16').map((r) => r.queueOffset)).toEqual([16]);
    await store.close();
    store = await open(dir, o);
    expectAll(store, 17);
    expect(store.queryMessage('T', 'k3').map((r) => r.queueOffset)).toEqual([3]);
  });

  it('a checkpoint that cannot be written is retried by the next flush, without a stop',
    async () => {
      const sim = new SimBackend({ seed: 7 });
      const dir = tmp.make();
      const errors: string[] = [];
      const logger = { debug: () => undefined, info: () => undefined, warn: () => undefined,
        error: (m: string) => errors.push(m) };
      const store = await open(dir, { ...options(sim, new ManualClock()), logger });
      const checkpoint = path.join(dir, 'checkpoint');
      await store.putMessage(msg(0));
      await store.flushed();
      await store.runRetention();
      // The write in place fails at its fdatasync (a disk out of room) while `full`.
      let full = true;
      let syncs = 0;
      sim.failWhen((e) => e.op === 'flush' && e.path === checkpoint && ++syncs > 0 && full &&
        'ENOSPC');
      const last = await store.putMessage(msg(1));
      await store.flushed();
      await store.runRetention();
      expect(syncs).toBe(1);
      expect(errors).toEqual([expect.stringContaining('checkpoint not written, will retry')]);
      expect(store.isOpen).toBe(true);
      full = false;
      // Nothing new to flush: written again all the same, and this time it holds.
      await store.runRetention();
      expect(syncs).toBe(2);
      expect(Checkpoint.peek(sim, dir)!.commitLogFlushedOffset)
        .toBe(last.physicalOffset + last.size);
      expect(errors).toHaveLength(1);
    });

  it('a segment that cannot grow refuses the appends that need it, without a stop', async () => {
    const sim = new SimBackend({ seed: 5 });
    const dir = tmp.make();
    // 4 MiB segments: the first file starts at 64 KiB and grows, off the main thread past 1 MiB.
    const o = { ...options(sim, new ManualClock()), commitLogSegmentSize: 64 * SEG,
      diskMaxUsedSpaceRatio: 1, diskFullRatio: 1 };
    const store = await open(dir, o);
    const acked: PutResult[] = [];
    const put = (i: number): Promise<PutResult> =>
      store.putMessage({ topic: 'T', queueId: 0, body: Buffer.alloc(BODY * 8, i) });
    // Past 64 KiB the file has grown to 1 MiB (on the main thread); the next growth (to 4 MiB,
    // off it, from 256 KiB on) fails, and with it the append that needs it.
    while (store.commitLogMaxOffset < 80 * 1024) acked.push(await put(acked.length));
    expect(sim.fileSize(path.join(dir, 'commitlog', '0'.repeat(20)))).toBe(2 ** 20);
    sim.failNext('grow', 'ENOSPC', 1000);
    let refused = 0;
    for (let n = 0; n < 400 && refused === 0; n++) {
      try {
        acked.push(await put(acked.length));
      } catch (err) {
        expect(err).toMatchObject({ code: 'DISK_FULL' });
        refused++;
      }
    }
    expect(refused).toBe(1);
    expect(store.isOpen).toBe(true);
    sim.clearFaults();
    const next = await put(acked.length);
    expect(next.queueOffset).toBe(acked.length);
    expect(next.physicalOffset).toBe(acked.at(-1)!.physicalOffset + acked.at(-1)!.size);
    acked.push(next);
    expectAll(store, acked.length);
    await store.close();
  });

  it('reopens a full store with everything in it, and appends once space is freed',
    async () => {
      const { sim, o } = await fullDisk(1);
      const dir = tmp.make();
      let store = await open(dir, o);
      const acked = await putUntilFull(store);
      await store.close();
      store = await open(dir, o);
      expectAll(store, acked.length);
      await expect(store.putMessage(msg(0, BODY))).rejects.toMatchObject({ code: 'DISK_FULL' });
      sim.setCapacity(100 * SEG);
      const next = await store.putMessage({ topic: 'T', queueId: 0, body: Buffer.alloc(BODY, 9) });
      expect(next.queueOffset).toBe(acked.length);
      await store.close();
      store = await open(dir, o);
      expectAll(store, acked.length);
      expect(store.getMaxOffsetInQueue('T', 0)).toBe(acked.length + 1);
    });
});
