/**
 * After a clean close a store's ConsumeQueues open on first use: the open lists them and opens
 * none, and a queue used later behaves as if it had been opened with the store (its end, its
 * minimum after retention, appends that continue it). After a crash, or when the open cuts
 * records off the log's end, every queue opens with the store, as recovery needs.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../lib/store/clock.js';
import { StoreEngine, type PutResult } from '../lib/store/store-engine.js';
import type { IoBackend } from '../lib/store/io/backend.js';
import type { StoreOptions } from '../lib/store/options.js';
import type { RecordInput } from '../lib/store/record-codec.js';
import { backendCases, SpyBackend, useTempDirs } from './support/backends.js';

const SEG = 64 * 1024;
const HOUR = 3_600_000;
const tmp = useTempDirs();

const msg = (topic: string, queueId: number, i: number, bodyBytes = 100): RecordInput => ({
  topic, queueId, body: Buffer.alloc(bodyBytes, i & 0xff),
});

const opened: StoreEngine[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close().catch(() => undefined);
});

describe.each(backendCases)('consume queues opened on first use ($kind)', ({ make }) => {
  const clock = new ManualClock();
  const options = (spy: SpyBackend): StoreOptions => ({
    backend: spy, clock, commitLogSegmentSize: SEG, consumeQueueEntriesPerFile: 16,
    flushIntervalMs: HOUR, flushConsumeQueueIntervalMs: HOUR, cleanResourceIntervalMs: 24 * HOUR,
  });

  /** Opens `dir` on `disk` (the same one for every open of a test: the simulated disk is one). */
  async function open(dir: string, disk: IoBackend):
  Promise<{ store: StoreEngine; spy: SpyBackend }> {
    const spy = new SpyBackend(disk);
    spy.usedRatio = 0.1;
    const store = await StoreEngine.open(dir, options(spy));
    opened.push(store);
    return { store, spy };
  }

  const queueFiles = (spy: SpyBackend): string[] => spy.syncOpens
    .filter((p) => p.includes(`${path.sep}consumequeue${path.sep}`))
    .map((p) => path.relative(path.join(p, '..', '..', '..'), p));

  /** T/0..3 with 5 + i messages each, U/0 with 2; closed cleanly. */
  async function made(): Promise<{ dir: string; disk: IoBackend; last: PutResult }> {
    const dir = tmp.make();
    const disk = make();
    const { store } = await open(dir, disk);
    for (let q = 0; q < 4; q++) {
      for (let i = 0; i < 5 + q; i++) await store.putMessage(msg('T', q, i));
    }
    await store.putMessage(msg('U', 0, 0));
    const last = await store.putMessage(msg('U', 0, 1));
    await store.close();
    return { dir, disk, last };
  }

  it('opens no queue at open, and one queue when it is used', async () => {
    const { dir, disk } = await made();
    const { store, spy } = await open(dir, disk);
    expect(queueFiles(spy)).toEqual([]);
    // Topics and their queue ids are known without opening a queue.
    expect(store.topics()).toEqual([{ topic: 'T', queueIds: [0, 1, 2, 3] },
      { topic: 'U', queueIds: [0] }]);
    expect(queueFiles(spy)).toEqual([]);
    expect(store.getMaxOffsetInQueue('T', 2)).toBe(7);
    expect(queueFiles(spy)).toEqual([path.join('T', '2', '00000000000000000000')]);
    const read = store.getMessage('T', 3, 0, 32);
    expect([read.status, read.records.length]).toEqual(['FOUND', 8]);
    expect(read.records.map((r) => r.queueOffset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(queueFiles(spy)).toHaveLength(2);
    // Stats count every queue, opening the rest.
    expect(store.stats().consumeQueues.queues).toBe(5);
  });

  it('continues a queue first used after the reopen at its end', async () => {
    const { dir, disk } = await made();
    let { store } = await open(dir, disk);
    const put = await store.putMessage(msg('T', 1, 99));
    expect([put.status, put.queueOffset]).toEqual(['PUT_OK', 6]);
    // A queue never used in this run is unchanged by its close, and so is the next open's view.
    await store.close();
    ({ store } = await open(dir, disk));
    expect(store.getMaxOffsetInQueue('T', 1)).toBe(7);
    expect(store.getMaxOffsetInQueue('T', 0)).toBe(5);
    expect(store.getMaxOffsetInQueue('U', 0)).toBe(2);
    const again = await store.putMessage(msg('U', 0, 3));
    expect(again.queueOffset).toBe(2);
    const read = store.getMessage('T', 1, 0, 32);
    expect(read.records.map((r) => r.queueOffset)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(read.records[6]!.physicalOffset).toBe(put.physicalOffset);
  });

  it('opens every queue with the store after a crash', async () => {
    const { dir, disk } = await made();
    // What a run that did not close leaves behind.
    disk.writeFile(path.join(dir, 'abort'), Buffer.from('1\n'));
    const { store, spy } = await open(dir, disk);
    expect(queueFiles(spy).sort()).toEqual(['T/0', 'T/1', 'T/2', 'T/3', 'U/0']
      .map((q) => path.join(...q.split('/'), '00000000000000000000')));
    expect(store.getMaxOffsetInQueue('T', 3)).toBe(8);
  });

  it('opens every queue with the store when it cuts records they index', async () => {
    const { dir, disk, last } = await made();
    // The log's last record (U/0's second) garbled after the clean close: a torn tail.
    const segment = disk.openSync(path.join(dir, 'commitlog', '00000000000000000000'),
      { sizeBytes: 0, create: false, readOnly: false });
    segment.write(last.physicalOffset + last.size - 8, Buffer.alloc(8, 0xee));
    await segment.flush();
    segment.close();
    const { store, spy } = await open(dir, disk);
    expect(store.commitLogMaxOffset).toBe(last.physicalOffset);
    // The cut changes U/0's file, and is flushed with the open, as after a crash.
    expect(queueFiles(spy)).toHaveLength(5);
    expect(store.getMaxOffsetInQueue('U', 0)).toBe(1);
    expect(store.getMaxOffsetInQueue('T', 3)).toBe(8);
    const put = await store.putMessage(msg('U', 0, 2));
    expect([put.queueOffset, put.physicalOffset]).toEqual([1, last.physicalOffset]);
    expect(store.getMessage('U', 0, 0, 8).records.map((r) => r.physicalOffset))
      .toEqual([last.physicalOffset - last.size, last.physicalOffset]);
  });

  it('gives a queue used late the minimum retention left, and retention takes its files',
    async () => {
      const dir = tmp.make();
      const disk = make();
      let { store, spy } = await open(dir, disk);
      // 40 messages of 5 KB in each of two queues: several segments, several queue files.
      for (let i = 0; i < 40; i++) {
        await store.putMessage(msg('T', 0, i, 5000));
        await store.putMessage(msg('T', 1, i, 5000));
      }
      await store.close();
      ({ store, spy } = await open(dir, disk));
      const filesOf = (q: number): string[] => spy.readdir(path.join(dir, 'consumequeue', 'T',
        String(q)));
      const before = filesOf(1).length;
      expect(before).toBeGreaterThan(2);
      // Retention runs on its timer (and again here): segments go, neither queue was used in
      // this run, and it opened both to delete their old files.
      clock.advance(73 * HOUR);
      await store.runRetention();
      expect(store.commitLogMinOffset).toBeGreaterThan(0);
      expect(filesOf(1).length).toBeLessThan(before);
      const min0 = store.getMinOffsetInQueue('T', 0);
      const min1 = store.getMinOffsetInQueue('T', 1);
      expect(min1).toBeGreaterThan(16);
      expect(min0).toBeGreaterThan(16);
      await store.close();
      // The next open lists them again; each takes the log's start when it is first used.
      ({ store, spy } = await open(dir, disk));
      expect(store.commitLogMinOffset).toBeGreaterThan(0);
      expect(queueFiles(spy)).toEqual([]);
      expect(store.getMinOffsetInQueue('T', 1)).toBe(min1);
      expect(store.getMessage('T', 1, 0, 1).status).toBe('OFFSET_TOO_SMALL');
      expect(store.getMinOffsetInQueue('T', 0)).toBe(min0);
      expect(store.getMaxOffsetInQueue('T', 0)).toBe(40);
    });
});
