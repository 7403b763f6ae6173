import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { IoBackend } from '../lib/store/io/backend.js';
import { MmapBackend } from '../lib/store/io/mmap-backend.js';
import { loadNative } from '../lib/store/io/native.js';
import type { MappedFile } from '../lib/store/mapped-file.js';
import { offsetToFileName } from '../lib/store/mapped-file.js';
import { MappedFileQueue } from '../lib/store/mapped-file-queue.js';
import { backendCases, enospc, nextTurn, SpyBackend, useTempDirs } from './support/backends.js';
import { SimBackend } from './support/sim-backend.js';

const SIZE = 8192;
const tmp = useTempDirs();

function queueOn(backend: IoBackend, dir: string, preallocate = true): MappedFileQueue {
  return new MappedFileQueue({ backend, dir, fileSizeBytes: SIZE, windowBytes: 1024, preallocate });
}

async function rolled(q: MappedFileQueue): Promise<MappedFile> {
  const next = q.roll();
  return next instanceof Promise ? next : next;
}

/** Append `data` to the queue, rolling when the last file cannot take it. */
async function append(q: MappedFileQueue, data: Buffer): Promise<number> {
  let file = q.last ?? q.createFirst(0);
  if (file.remaining < data.length) file = await rolled(q);
  const target = file.target(data.length)!;
  target.buf.set(data, target.at);
  file.advance(data.length);
  return file.fileFromOffset + file.wrote - data.length;
}

const chunk = (i: number): Buffer => Buffer.alloc(SIZE / 4, i + 1);

describe.each(backendCases)('MappedFileQueue on the $kind backend', ({ make }) => {
  function setup(preallocate = true): { spy: SpyBackend; dir: string; q: MappedFileQueue } {
    const spy = new SpyBackend(make());
    const dir = path.join(tmp.make(), 'log');
    return { spy, dir, q: queueOn(spy, dir, preallocate) };
  }

  it('an append waiting for a large growth goes on at its first step, not at its end',
    async () => {
      const BIG = 64 * 2 ** 20;
      const dir = path.join(tmp.make(), 'log');
      const q = new MappedFileQueue({ backend: make(), dir, fileSizeBytes: BIG, windowBytes: 1024,
        preallocate: false, initialBytes: 16 * 2 ** 20 });
      const file = q.createFirst(0);
      await file.grow(16 * 2 ** 20, false);
      const all = file.usable;
      const target = file.target(all - 4096)!;
      target.buf.fill(7, target.at, target.at + all - 4096);
      file.advance(all - 4096);
      // Needs more than the file has: a growth to 64 MiB starts; the wait ends at its first step.
      const waiting = q.makeRoom(8192);
      expect(waiting).not.toBeNull();
      await waiting;
      expect(file.hasRoom(8192)).toBe(true);
      expect(file.usable).toBe(all + 4 * 2 ** 20);
      expect(file.usable).toBeLessThan(BIG);
      expect(q.makeRoom(8192)).toBeNull();
      await q.settleTail();
      expect(file.usable).toBe(BIG);
      q.close();
      await q.allocationsSettled();
    });

  it('rolls to files named by their 20-digit start offset, contiguous', async () => {
    const { spy, dir, q } = setup();
    for (let i = 0; i < 10; i++) expect(await append(q, chunk(i))).toBe(i * SIZE / 4);
    await spy.settled();
    expect(q.files.map((f) => f.fileFromOffset)).toEqual([0, SIZE, 2 * SIZE]);
    expect(q.files.map((f) => path.basename(f.path)))
      .toEqual([0, SIZE, 2 * SIZE].map(offsetToFileName));
    for (const offset of [0, SIZE, 2 * SIZE]) {
      expect(spy.exists(path.join(dir, offsetToFileName(offset))), `${offset}`).toBe(true);
    }
    // One file is allocated ahead, once the owner asks (the commit log: a sixteenth in).
    expect(spy.exists(path.join(dir, offsetToFileName(3 * SIZE)))).toBe(false);
    q.startPreallocation();
    q.startPreallocation(); // one at a time: no second file ahead
    await spy.settled();
    expect(spy.exists(path.join(dir, offsetToFileName(3 * SIZE)))).toBe(true);
    expect(spy.exists(path.join(dir, offsetToFileName(4 * SIZE)))).toBe(false);
    expect(q.wroteWhere).toBe(10 * SIZE / 4);
    // A roll commits the file it leaves: only the last file may hold staged appends.
    for (const f of q.files.slice(0, -1)) expect([f.published, f.wrote]).toEqual([SIZE, SIZE]);
    expect(q.findByOffset(SIZE + 5)).toBe(q.files[1]);
    expect(q.findByOffset(3 * SIZE)).toBeUndefined();
    q.close();
  });

  it('keeps flushedWhere <= publishedWhere <= wroteWhere, each moving forward', async () => {
    const { q } = setup();
    let last = [0, 0, 0];
    for (let i = 0; i < 9; i++) {
      await append(q, chunk(i));
      if (i % 2 === 0) q.publish();
      if (i % 3 === 0) await q.flush();
      const now = [q.wroteWhere, q.publishedWhere, q.flushedWhere];
      expect(now[0]).toBeGreaterThanOrEqual(now[1]!);
      expect(now[1]).toBeGreaterThanOrEqual(now[2]!);
      now.forEach((v, k) => expect(v).toBeGreaterThanOrEqual(last[k]!));
      last = now;
    }
    expect(await q.flush()).toBe(q.wroteWhere);
    q.close();
    await q.allocationsSettled();
  });

  it('has allocationsSettled wait for an allocation open at close; none starts after', async () => {
    const { spy, dir, q } = setup();
    const release = spy.holdOpens();
    q.createFirst(0);
    q.startPreallocation();
    q.close();
    q.startPreallocation(); // closed: starts nothing
    let settled = false;
    const done = q.allocationsSettled().then(() => { settled = true; });
    await nextTurn();
    expect(settled).toBe(false);
    release();
    await done;
    expect(spy.opens.map((o) => o.path)).toEqual([path.join(dir, offsetToFileName(SIZE))]);
    await q.allocationsSettled(); // nothing in flight: at once
  });

  it('allocates the next file ahead, so the roll itself is synchronous', async () => {
    const { spy, dir, q } = setup();
    q.createFirst(0);
    expect(spy.opens).toEqual([]); // the owner starts allocation once the file is in use
    q.startPreallocation();
    const next = path.join(dir, offsetToFileName(SIZE));
    expect(spy.opens[0]!.path).toBe(next);
    await spy.settled();
    expect(spy.fileSize(next)).toBe(SIZE);
    const file = q.roll();
    expect(file).not.toBeInstanceOf(Promise);
    expect((file as MappedFile).fileFromOffset).toBe(SIZE);
    await spy.settled();
    // The owner asks again once the new last file is in use: the next one is allocated.
    q.startPreallocation();
    await spy.settled();
    // Allocation stays ahead of the new last file, in order, one file per offset.
    const paths = spy.opens.map((o) => o.path);
    expect(paths).toContain(path.join(dir, offsetToFileName(2 * SIZE)));
    expect(paths).toEqual([...new Set(paths)].sort());
    q.close();
    await spy.settled();
  });

  it('with syncAllocation, allocates ahead once the last file stops growing; a roll does not wait',
    async () => {
      const BIG = 16 * 2 ** 20;
      const grownQueue = (): { spy: SpyBackend; dir: string; q: MappedFileQueue;
        file: MappedFile } => {
        const spy = new SpyBackend(make());
        const dir = path.join(tmp.make(), 'log');
        const q = new MappedFileQueue({ backend: spy, dir, fileSizeBytes: BIG,
          windowBytes: 1024, preallocate: true, syncAllocation: true, initialBytes: 2 ** 20 });
        const file = q.createFirst(0);
        // Past a quarter of the first MiB: a growth to 4 MiB starts, off the main thread.
        const target = file.target(300 * 1024)!;
        target.buf.fill(7, target.at, target.at + 300 * 1024);
        file.advance(300 * 1024);
        return { spy, dir, q, file };
      };

      const { spy, dir, q, file } = grownQueue();
      let release = spy.holdGrowth();
      expect(q.makeRoom(1024)).toBeNull();
      expect(file.usable).toBe(2 ** 20);
      q.startPreallocation();
      expect(spy.opens).toEqual([]);
      release();
      await q.settleTail();
      expect(file.usable).toBe(4 * 2 ** 20);
      q.startPreallocation();
      expect(spy.opens.map((o) => o.path)).toEqual([path.join(dir, offsetToFileName(BIG))]);
      q.close();
      await q.allocationsSettled();

      // A roll while the last file grows allocates the file it needs.
      const again = grownQueue();
      release = again.spy.holdGrowth();
      expect(again.q.makeRoom(1024)).toBeNull();
      const next = again.q.roll();
      expect(again.spy.opens.map((o) => o.path))
        .toEqual([path.join(again.dir, offsetToFileName(BIG))]);
      release();
      expect((await next).fileFromOffset).toBe(BIG);
      await again.q.settleTail();
      again.q.close();
      await again.q.allocationsSettled();
    });

  it('rejects a roll with DISK_FULL when allocation fails, leaves no file, then recovers',
    async () => {
      const { spy, dir, q } = setup();
      spy.failNextOpenAfterCreate = enospc(dir);
      for (let i = 0; i < 4; i++) await append(q, chunk(i));
      const next = path.join(dir, offsetToFileName(SIZE));
      await expect(rolled(q)).rejects.toMatchObject({ code: 'DISK_FULL' });
      expect(spy.exists(next)).toBe(false);
      expect(q.files).toHaveLength(1);
      const file = await rolled(q);
      expect(file.fileFromOffset).toBe(SIZE);
      expect(spy.fileSize(next)).toBe(SIZE);
      expect(await append(q, chunk(5))).toBe(SIZE);
      q.close();
      await spy.settled();
    });

  it('truncateDirty keeps what is before the offset and deletes the files after it',
    async () => {
      const { spy, dir, q } = setup();
      for (let i = 0; i < 10; i++) await append(q, chunk(i));
      await q.flush();
      await spy.settled();
      q.truncateDirty(SIZE + 100, SIZE + 50, 'empty');
      expect(q.files.map((f) => f.fileFromOffset)).toEqual([0, SIZE]);
      // Flushed only up to what is known durable; the next flush syncs the rest and the cut.
      expect([q.wroteWhere, q.publishedWhere, q.flushedWhere]).toEqual([SIZE + 100, SIZE + 100,
        SIZE + 50]);
      expect(await q.flush()).toBe(SIZE + 100);
      expect(q.files[0]!.wrote).toBe(SIZE);
      expect(q.last!.view(0, 100)).toEqual(chunk(4).subarray(0, 100));
      expect(q.last!.view(100, SIZE - 100)).toEqual(Buffer.alloc(SIZE - 100));
      expect(spy.exists(path.join(dir, offsetToFileName(2 * SIZE)))).toBe(false);
      // Appending goes on from the cut, and the next roll makes the file that follows it.
      for (let i = 0; i < 4; i++) await append(q, chunk(20 + i));
      expect(q.files.map((f) => f.fileFromOffset)).toEqual([0, SIZE, 2 * SIZE]);
      expect(q.files.map((f) => path.basename(f.path)))
        .toEqual([0, SIZE, 2 * SIZE].map(offsetToFileName));
      q.close();
      await spy.settled();
    });

  it('deleteOldest never deletes the last file', async () => {
    const { spy, dir, q } = setup(false);
    for (let i = 0; i < 10; i++) await append(q, chunk(i));
    const removed = q.deleteOldest(100);
    expect(removed.map((f) => f.fileFromOffset)).toEqual([0, SIZE]);
    expect(q.files.map((f) => f.fileFromOffset)).toEqual([2 * SIZE]);
    expect(q.minOffset).toBe(2 * SIZE);
    expect(spy.readdir(dir)).toEqual([offsetToFileName(2 * SIZE)]);
    expect(q.deleteOldest(1)).toEqual([]);
    expect(q.files).toHaveLength(1);
    q.close();
  });

  it('loads what it wrote', async () => {
    const { spy, dir, q } = setup(false);
    for (let i = 0; i < 6; i++) await append(q, chunk(i));
    await q.flush();
    q.close();
    const again = queueOn(spy, dir, false);
    again.load();
    expect(again.files.map((f) => f.fileFromOffset)).toEqual([0, SIZE]);
    expect(again.files[1]!.view(0, SIZE / 4)).toEqual(chunk(4));
    again.close();
  });

  it('load rejects a gap between files with CORRUPT_DATA', async () => {
    const { spy, dir, q } = setup(false);
    for (let i = 0; i < 10; i++) await append(q, chunk(i));
    q.close();
    spy.unlink(path.join(dir, offsetToFileName(SIZE)));
    const again = queueOn(spy, dir, false);
    expect(() => again.load()).toThrow(expect.objectContaining({ code: 'CORRUPT_DATA',
      offset: 2 * SIZE }));
    again.close();
  });

  it('load rejects a file whose name is not aligned to the file size', () => {
    const { spy, dir } = setup(false);
    spy.mkdir(dir);
    spy.openSync(path.join(dir, offsetToFileName(100)),
      { sizeBytes: SIZE, create: true, readOnly: false }).close();
    const q = queueOn(spy, dir, false);
    expect(() => q.load()).toThrow(expect.objectContaining({ code: 'CORRUPT_DATA' }));
  });
});

describe('MappedFileQueue on the mmap backend, mapping files on first use', () => {
  it('maps no file at load, and each file when it is first read or appended to', async () => {
    const addon = loadNative().mmap!;
    /** The length of each mapping made, in order. */
    const maps: number[] = [];
    const counting = new MmapBackend({ ...addon,
      map: (...args: Parameters<typeof addon.map>) => {
        maps.push(args[0]);
        return addon.map(...args);
      } });
    const dir = path.join(tmp.make(), 'log');
    const q = queueOn(counting, dir, false);
    for (let i = 0; i < 10; i++) await append(q, chunk(i));
    await q.flush();
    q.close();
    maps.length = 0;

    const again = queueOn(counting, dir, false);
    again.load();
    expect(again.files).toHaveLength(3);
    expect(maps).toEqual([]);
    // A read of the first file maps it (all of it: it is full) and no other.
    expect(again.files[0]!.view(SIZE / 4, SIZE / 4)).toEqual(chunk(1));
    expect(maps).toEqual([SIZE]);
    expect(again.files[0]!.view(0, SIZE / 4)).toEqual(chunk(0));
    expect(maps).toHaveLength(1);
    // The last file's appends go on where the log ended, and read back.
    const last = again.files[2]!;
    expect(last.view(0, SIZE / 4)).toEqual(chunk(8));
    expect(maps).toHaveLength(2);
    // A read that asks not to map reads a file not mapped yet from the file, a copy...
    const middle = again.files[1]!;
    const copy = middle.view(SIZE / 4, SIZE / 4, false);
    expect(copy).toEqual(chunk(5));
    expect(middle.mappedNow).toBe(false);
    expect(maps).toHaveLength(2);
    // ...and a mapped one from its mapping.
    expect(again.files[0]!.view(SIZE / 2, SIZE / 4, false)).toEqual(chunk(2));
    expect(maps).toHaveLength(2);
    // The backend's copy of a file not mapped yet maps nothing either.
    expect(middle.file.read(0, SIZE / 4)).toEqual(chunk(4));
    expect(maps).toHaveLength(2);
    again.close();
  });
});

describe('MappedFileQueue on a full simulated disk', () => {
  it('rejects a roll with DISK_FULL until capacity is freed, leaving no partial file',
    async () => {
      const sim = new SimBackend({ seed: 1, capacityBytes: SIZE + 100 });
      const dir = path.join(tmp.make(), 'log');
      const q = queueOn(sim, dir);
      for (let i = 0; i < 4; i++) await append(q, chunk(i));
      await expect(rolled(q)).rejects.toMatchObject({ code: 'DISK_FULL' });
      expect(sim.fileNames()).toEqual([path.join(dir, offsetToFileName(0))]);
      sim.setCapacity(10 * SIZE);
      sim.failNext('open', 'ENOSPC');
      await expect(rolled(q)).rejects.toMatchObject({ code: 'DISK_FULL' });
      expect(sim.fileNames()).toHaveLength(1);
      expect((await rolled(q)).fileFromOffset).toBe(SIZE);
      expect(await append(q, chunk(4))).toBe(SIZE);
      q.close();
    });

  it('a failed first file throws DISK_FULL synchronously', () => {
    const sim = new SimBackend({ seed: 1, capacityBytes: SIZE - 1 });
    const q = queueOn(sim, path.join(tmp.make(), 'log'));
    expect(() => q.createFirst(0)).toThrow(expect.objectContaining({ code: 'DISK_FULL' }));
    expect(q.files).toHaveLength(0);
  });
});
