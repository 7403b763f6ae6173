import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConsumeQueue, CQ_ENTRY_BYTES, type ConsumeQueueEntry,
} from '../lib/store/consume-queue.js';
import type { IoBackend } from '../lib/store/io/backend.js';
import { MmapBackend } from '../lib/store/io/mmap-backend.js';
import { loadNative } from '../lib/store/io/native.js';
import { offsetToFileName } from '../lib/store/mapped-file.js';
import { backendCases, useTempDirs } from './support/backends.js';

const PER_FILE = 16;
const FILE_BYTES = PER_FILE * CQ_ENTRY_BYTES;
const tmp = useTempDirs();

/** Entry i: 100 bytes at 1000 + 100 * i, stored at time 5000 + 10 * i. */
const entry = (i: number): ConsumeQueueEntry => ({
  queueOffset: i, physicalOffset: 1000 + 100 * i, size: 100,
  // Negative Java hash codes and delay-topic times past 2^32 both round trip.
  tagsCode: i % 3 === 0 ? -1_234_567 - i : i % 3 === 1 ? 1_700_000_000_000 + i : i,
});
const storedAt = (phy: number): number => 5000 + 10 * ((phy - 1000) / 100);

describe.each(backendCases)('ConsumeQueue on the $kind backend', ({ make }) => {
  function open(backend: IoBackend = make(), root = path.join(tmp.make(), 'consumequeue')):
  { cq: ConsumeQueue; backend: IoBackend; root: string } {
    const cq = new ConsumeQueue({ backend, root, topic: 'T', queueId: 3,
      entriesPerFile: PER_FILE });
    cq.load();
    return { cq, backend, root };
  }
  const fill = (cq: ConsumeQueue, from: number, to: number): void => {
    for (let i = from; i < to; i++) {
      const e = entry(i);
      cq.put(i, e.physicalOffset, e.size, e.tagsCode);
    }
  };
  const all = (cq: ConsumeQueue): (ConsumeQueueEntry | null)[] =>
    Array.from({ length: cq.maxOffset - cq.minOffset }, (_, k) => cq.get(cq.minOffset + k));

  it('puts and gets entries across rolling files', () => {
    const { cq, backend, root } = open();
    expect([cq.minOffset, cq.maxOffset, cq.fileCount]).toEqual([0, 0, 0]);
    fill(cq, 0, 40);
    expect([cq.minOffset, cq.maxOffset, cq.fileCount]).toEqual([0, 40, 3]);
    expect(all(cq)).toEqual(Array.from({ length: 40 }, (_, i) => entry(i)));
    expect(cq.get(40)).toBeNull();
    expect(cq.get(-1)).toBeNull();
    expect(cq.maxPhysicalOffset).toBe(entry(39).physicalOffset + 100);
    expect(backend.readdir(path.join(root, 'T', '3')))
      .toEqual([0, FILE_BYTES, 2 * FILE_BYTES].map(offsetToFileName));
    cq.close();
  });

  it('puts a run of entries as the same puts one by one, within a file and across files',
    () => {
      const { cq: one, backend, root } = open();
      const { cq: runs, root: runRoot } = open(backend);
      fill(one, 0, 45);
      const run = (from: number, to: number): void => {
        const es = Array.from({ length: to - from }, (_, k) => entry(from + k));
        runs.reserve(from, to - from);
        runs.putRun(es, es);
      };
      // The first run starts the queue; then runs inside one file, one that ends a file, one
      // that crosses two boundaries (entry by entry), and one into the last file's room.
      run(0, 5);
      run(5, 9);
      run(9, 16);
      run(16, 40);
      run(40, 45);
      expect(all(runs)).toEqual(all(one));
      expect([runs.minOffset, runs.maxOffset, runs.fileCount, runs.maxPhysicalOffset])
        .toEqual([one.minOffset, one.maxOffset, one.fileCount, one.maxPhysicalOffset]);
      expect(backend.readdir(path.join(runRoot, 'T', '3')))
        .toEqual(backend.readdir(path.join(root, 'T', '3')));
      // A run out of order or pointing backwards is refused as a put is.
      const next = entry(45);
      expect(() => runs.putRun([{ ...next, queueOffset: 47 }], [next])).toThrow(
        expect.objectContaining({ code: 'ASSERTION_FAILED' }));
      expect(() => runs.putRun([{ ...next, physicalOffset: 10 }], [next])).toThrow(
        expect.objectContaining({ code: 'ASSERTION_FAILED' }));
      expect(runs.maxOffset).toBe(45);
      one.close();
      runs.close();
    });

  it('refuses an entry out of order or pointing backwards', () => {
    const { cq } = open();
    fill(cq, 0, 3);
    expect(() => cq.put(5, 5000, 100, 0)).toThrow(expect.objectContaining({
      code: 'ASSERTION_FAILED' }));
    expect(() => cq.put(3, 1000, 100, 0)).toThrow(expect.objectContaining({
      code: 'ASSERTION_FAILED' }));
    cq.close();
  });

  it('hands out raw entries within one file', () => {
    const { cq } = open();
    fill(cq, 0, 20);
    const { bytes, count } = cq.entries(10, 100);
    expect(count).toBe(PER_FILE - 10);
    expect(bytes.length).toBe(count * CQ_ENTRY_BYTES);
    for (let k = 0; k < count; k++) {
      expect(Number(bytes.readBigUInt64LE(k * CQ_ENTRY_BYTES))).toBe(entry(10 + k).physicalOffset);
      expect(bytes.readUInt32LE(k * CQ_ENTRY_BYTES + 8)).toBe(100);
      expect(Number(bytes.readBigInt64LE(k * CQ_ENTRY_BYTES + 12))).toBe(entry(10 + k).tagsCode);
    }
    expect(cq.entries(16, 2).count).toBe(2);
    expect(cq.entries(20, 2).count).toBe(0);
    cq.close();
  });

  it('finds the first entry stored at or after a time', () => {
    const { cq } = open();
    fill(cq, 0, 40);
    expect(cq.searchByTime(0, storedAt)).toBe(0);
    expect(cq.searchByTime(5000, storedAt)).toBe(0);
    expect(cq.searchByTime(5001, storedAt)).toBe(1);
    expect(cq.searchByTime(5200, storedAt)).toBe(20);
    expect(cq.searchByTime(5395, storedAt)).toBe(40);
    // Records whose commit-log segment is gone count as older than any time.
    expect(cq.searchByTime(0, (phy) => (phy < entry(10).physicalOffset ? null : storedAt(phy))))
      .toBe(10);
    cq.close();
  });

  it('truncateFrom drops the entries at and after a commit-log offset', () => {
    const { cq } = open();
    fill(cq, 0, 40);
    cq.truncateFrom(entry(20).physicalOffset + 50);
    expect([cq.maxOffset, cq.fileCount]).toEqual([21, 2]);
    expect(cq.maxPhysicalOffset).toBe(entry(20).physicalOffset + 100);
    cq.truncateFrom(entry(16).physicalOffset);
    expect(cq.maxOffset).toBe(16);
    expect(cq.get(16)).toBeNull();
    fill(cq, 16, 18);
    expect(all(cq)).toEqual(Array.from({ length: 18 }, (_, i) => entry(i)));
    cq.truncateFrom(entry(40).physicalOffset);
    expect(cq.maxOffset).toBe(18);
    cq.truncateFrom(0);
    expect([cq.minOffset, cq.maxOffset]).toEqual([0, 0]);
    fill(cq, 0, 2);
    expect(all(cq)).toEqual([entry(0), entry(1)]);
    cq.close();
  });

  it('truncateFrom finds the cut wherever it falls', () => {
    const { cq } = open();
    const count = 6 * PER_FILE + 5;
    fill(cq, 0, count);
    // Every cut, from the last entry back to the first, between entries and on one.
    for (let k = count - 1; k >= 0; k--) {
      cq.truncateFrom(entry(k).physicalOffset + (k % 2 === 0 ? 50 : 0));
      const kept = k % 2 === 0 ? k + 1 : k;
      expect(cq.maxOffset).toBe(kept);
      expect(cq.get(kept)).toBeNull();
      if (kept > 0) expect(cq.get(kept - 1)).toEqual(entry(kept - 1));
      fill(cq, kept, count);
    }
    expect(all(cq)).toEqual(Array.from({ length: count }, (_, i) => entry(i)));
    // Past the end: nothing dropped.
    cq.truncateFrom(entry(count).physicalOffset);
    expect(cq.maxOffset).toBe(count);
    cq.close();
  });

  it('deleteBefore drops whole files and moves minOffset past removed records', () => {
    const { cq, backend, root } = open();
    fill(cq, 0, 40);
    expect(cq.deleteBefore(entry(20).physicalOffset)).toBe(1);
    expect([cq.minOffset, cq.maxOffset, cq.fileCount]).toEqual([20, 40, 2]);
    expect(cq.get(19)).toBeNull();
    expect(cq.get(20)).toEqual(entry(20));
    expect(backend.readdir(path.join(root, 'T', '3')))
      .toEqual([FILE_BYTES, 2 * FILE_BYTES].map(offsetToFileName));
    expect(cq.searchByTime(0, storedAt)).toBe(20);
    // Never the last file, even when every entry points before the minimum.
    cq.deleteBefore(entry(100).physicalOffset);
    expect([cq.minOffset, cq.maxOffset, cq.fileCount]).toEqual([40, 40, 1]);
    fill(cq, 40, 42);
    expect(all(cq)).toEqual([entry(40), entry(41)]);
    cq.close();
  });

  it('reloads from disk exactly as it was', async () => {
    const { cq, backend, root } = open();
    fill(cq, 0, 37);
    await cq.flush();
    const before = { min: cq.minOffset, max: cq.maxOffset, phy: cq.maxPhysicalOffset,
      files: cq.fileCount, entries: all(cq) };
    cq.close();
    const again = open(backend, root).cq;
    expect({ min: again.minOffset, max: again.maxOffset, phy: again.maxPhysicalOffset,
      files: again.fileCount, entries: all(again) }).toEqual(before);
    fill(again, 37, 40);
    expect(again.get(39)).toEqual(entry(39));
    again.close();
  });

  it('reserve allocates the files coming entries need, without moving the end', () => {
    const { cq, backend, root } = open();
    const dir = path.join(root, 'T', '3');
    cq.reserve(0, 1);
    expect(backend.readdir(dir)).toEqual([offsetToFileName(0)]);
    expect([cq.maxOffset, cq.fileCount]).toEqual([0, 0]);
    fill(cq, 0, 15);
    cq.reserve(15, 1);
    expect(backend.readdir(dir)).toHaveLength(1);
    cq.reserve(15, 2 * PER_FILE + 1);
    expect(backend.readdir(dir))
      .toEqual([0, FILE_BYTES, 2 * FILE_BYTES].map(offsetToFileName));
    expect([cq.maxOffset, cq.fileCount]).toEqual([15, 1]);
    cq.close();
    // Reserved files left empty (the append that wanted them failed) do not move the end.
    const again = open(backend, root).cq;
    expect([again.minOffset, again.maxOffset, again.fileCount]).toEqual([0, 15, 1]);
    fill(again, 15, 20);
    expect(all(again)).toEqual(Array.from({ length: 20 }, (_, i) => entry(i)));
    again.close();
  });

  it('starts at the first offset it is given, and reloads there', () => {
    const { cq, backend, root } = open();
    for (let i = 21; i < 25; i++) cq.put(i, entry(i).physicalOffset, 100, entry(i).tagsCode);
    expect([cq.minOffset, cq.maxOffset]).toEqual([21, 25]);
    expect(cq.get(20)).toBeNull();
    cq.close();
    const again = open(backend, root).cq;
    expect([again.minOffset, again.maxOffset]).toEqual([21, 25]);
    expect(all(again)).toEqual([21, 22, 23, 24].map(entry));
    again.close();
  });

  it('holds nothing with only files made ahead of entries that never came, and then starts ' +
    'at the first offset it is given', () => {
    const { cq, backend, root } = open();
    // A follower that started over reserved room for entry 21, then was killed before it.
    cq.reserve(21, 1);
    cq.close();
    const again = open(backend, root).cq;
    expect(again.fileCount).toBe(1);
    expect(again.holdsNothing).toBe(true);
    // Its first entry, 37, lies in another file than the one made ahead.
    for (let i = 37; i < 40; i++) again.put(i, entry(i).physicalOffset, 100, entry(i).tagsCode);
    expect([again.minOffset, again.maxOffset, again.holdsNothing]).toEqual([37, 40, false]);
    expect(backend.readdir(path.join(root, 'T', '3'))).toEqual([offsetToFileName(2 * FILE_BYTES)]);
    again.close();
    const reloaded = open(backend, root).cq;
    expect(all(reloaded)).toEqual([37, 38, 39].map(entry));
    // One that held entries does not start over: a gap is refused.
    expect(() => reloaded.put(41, entry(41).physicalOffset, 100, 0)).toThrow(/entry 41 after 40/);
    reloaded.close();
  });
});

describe('ConsumeQueue recovery on the mmap backend', () => {
  it('truncateFrom at the end of a long queue maps no file the load did not', () => {
    const addon = loadNative().mmap!;
    let maps = 0;
    const counting = new MmapBackend({ ...addon,
      map: (...args: Parameters<typeof addon.map>) => {
        maps++;
        return addon.map(...args);
      } });
    const root = path.join(tmp.make(), 'consumequeue');
    const make = (): ConsumeQueue => new ConsumeQueue({ backend: counting, root, topic: 'T',
      queueId: 0, entriesPerFile: PER_FILE });
    const cq = make();
    cq.load();
    const count = 10 * PER_FILE + 3;
    for (let i = 0; i < count; i++) {
      const e = entry(i);
      cq.put(i, e.physicalOffset, e.size, e.tagsCode);
    }
    cq.close();

    const again = make();
    again.load();
    maps = 0;
    // The log ends past every entry (nothing to drop), then just before the last two: only the
    // last file is read, which the load mapped already (a search over the whole queue read the
    // files in its middle).
    again.truncateFrom(entry(count).physicalOffset);
    again.truncateFrom(entry(count - 2).physicalOffset);
    expect(again.maxOffset).toBe(count - 2);
    expect(maps).toBe(0);
    // A read in the middle maps its file.
    expect(again.get(5 * PER_FILE)).toEqual(entry(5 * PER_FILE));
    expect(maps).toBe(1);
    again.close();
  });
});
