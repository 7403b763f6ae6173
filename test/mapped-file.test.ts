import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { IoBackend } from '../lib/store/io/backend.js';
import {
  fileNameToOffset, MappedFile, offsetToFileName,
} from '../lib/store/mapped-file.js';
import { backendCases, SpyBackend, useTempDirs } from './support/backends.js';

const SIZE = 8192;
const tmp = useTempDirs();

function pattern(length: number, seed: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff));
}

/** Encode `data` at the write position the way a log does: target, fill, advance. */
function append(file: MappedFile, data: Buffer): number {
  const target = file.target(data.length);
  expect(target).not.toBeNull();
  target!.buf.set(data, target!.at);
  const at = file.wrote;
  file.advance(data.length);
  return at;
}

function positions(file: MappedFile): [number, number, number] {
  expect(file.wrote).toBeGreaterThanOrEqual(file.published);
  expect(file.published).toBeGreaterThanOrEqual(file.flushed);
  return [file.wrote, file.published, file.flushed];
}

describe('segment file names', () => {
  it('are 20-digit offsets and parse back', () => {
    expect(offsetToFileName(0)).toBe('00000000000000000000');
    expect(offsetToFileName(1073741824)).toBe('00000000001073741824');
    expect(fileNameToOffset('00000000001073741824')).toBe(1073741824);
    expect(fileNameToOffset('1073741824')).toBeNull();
    expect(fileNameToOffset('00000000001073741824.tmp')).toBeNull();
  });
});

describe.each(backendCases)('MappedFile on the $kind backend', ({ make }) => {
  /** A file of `capacity` bytes allocated for its first 64 KiB. */
  async function openShort(capacity: number): Promise<MappedFile> {
    const dir = tmp.make();
    const backend = make();
    backend.mkdir(dir);
    const short = await backend.open(path.join(dir, offsetToFileName(0)),
      { sizeBytes: 64 * 1024, capacityBytes: capacity, create: true, readOnly: false });
    return new MappedFile(short, 0, 0, capacity);
  }

  async function open(windowBytes = 1024, backend: IoBackend = make()): Promise<MappedFile> {
    const dir = tmp.make();
    backend.mkdir(dir);
    const file = await backend.open(path.join(dir, offsetToFileName(0)),
      { sizeBytes: SIZE, create: true, readOnly: false });
    return new MappedFile(file, 0, windowBytes);
  }

  it('moves positions only forward, keeping wrote >= published >= flushed', async () => {
    const file = await open();
    const seen: [number, number, number][] = [positions(file)];
    const written: Buffer[] = [];
    for (let i = 0; i < 12; i++) {
      const data = pattern(100 + i * 37, i);
      written.push(data);
      append(file, data);
      seen.push(positions(file));
      if (i % 3 === 0) file.publish();
      seen.push(positions(file));
      if (i % 4 === 1) expect(await file.flush()).toBe(file.flushed);
      seen.push(positions(file));
    }
    expect(await file.flush()).toBe(file.wrote);
    seen.push(positions(file));
    for (let i = 1; i < seen.length; i++) {
      for (let k = 0; k < 3; k++) expect(seen[i]![k]).toBeGreaterThanOrEqual(seen[i - 1]![k]!);
    }
    const all = Buffer.concat(written);
    expect(file.wrote).toBe(all.length);
    expect(Buffer.compare(file.view(0, all.length), all)).toBe(0);
    expect(file.remaining).toBe(SIZE - all.length);
    file.close();
  });

  it('commits a window of appends as one contiguous write', async () => {
    const spy = new SpyBackend(make());
    const file = await open(1024, spy);
    for (let i = 0; i < 5; i++) append(file, pattern(100, i));
    if (file.published === file.wrote) {
      // Appends encode straight into the mapping: nothing goes through write().
      expect(file.mapped).toBe(true);
      file.publish();
      expect(spy.writes).toEqual([]);
    } else {
      expect(file.published).toBe(0);
      expect(spy.writes).toEqual([]);
      file.publish();
      expect(spy.writes).toEqual([{ path: file.path, position: 0, length: 500 }]);
      expect(file.published).toBe(500);
      // A window that cannot take the next append is published first, as one run.
      append(file, pattern(600, 9));
      append(file, pattern(600, 10));
      file.publish();
      expect(spy.writes.slice(1).map((w) => [w.position, w.length])).toEqual([[500, 600],
        [1100, 600]]);
    }
    expect(file.view(0, 500)).toEqual(Buffer.concat([0, 1, 2, 3, 4].map((i) => pattern(100, i))));
    file.close();
  });

  it('appends straight into the mapping when it has one and no window', async () => {
    const spy = new SpyBackend(make());
    const file = await open(0, spy);
    append(file, pattern(300, 1));
    if (file.mapped) {
      expect(file.published).toBe(300);
      expect(spy.writes).toEqual([]);
    }
    expect(file.view(0, 300)).toEqual(pattern(300, 1));
    file.close();
  });

  it('refuses an append that does not fit and a write past the end', async () => {
    const file = await open();
    append(file, pattern(SIZE - 10, 0));
    expect(file.target(11)).toBeNull();
    expect(file.target(10)).not.toBeNull();
    expect(() => file.advance(11)).toThrow(expect.objectContaining({ code: 'ASSERTION_FAILED' }));
    append(file, pattern(10, 1));
    expect(file.isFull).toBe(true);
    file.close();
  });

  it('reads staged bytes back before they are published', async () => {
    const file = await open();
    append(file, pattern(200, 3));
    expect(file.view(50, 100)).toEqual(pattern(200, 3).subarray(50, 150));
    expect(file.scanBuffer().buf.subarray(0, 200)).toEqual(pattern(200, 3));
    file.close();
  });

  it('resetPositions counts only durable bytes flushed; empty zeros stale bytes, a sync due',
    async () => {
      const file = await open();
      append(file, pattern(1000, 4));
      await file.flush();
      file.resetPositions(400, 300);
      // Only what a checkpoint says is durable counts as flushed.
      expect(positions(file)).toEqual([400, 400, 300]);
      expect(file.needsFlush).toBe(true);
      file.empty(400, 1000);
      expect(await file.flush()).toBe(400);
      expect(file.needsFlush).toBe(false);
      file.resetPositions(400, 400);
      expect(positions(file)).toEqual([400, 400, 400]);
      file.empty(400, 1000); // zeros already: nothing written, no sync due
      expect(file.needsFlush).toBe(false);
      expect(file.view(0, 400)).toEqual(pattern(1000, 4).subarray(0, 400));
      expect(file.view(400, 600)).toEqual(Buffer.alloc(600));
      append(file, pattern(10, 5));
      expect(file.view(400, 10)).toEqual(pattern(10, 5));
      file.close();
    });

  it('a distrusted tail takes no append until grow has emptied it', async () => {
    const file = await open();
    append(file, pattern(3000, 6));
    await file.flush();
    file.resetPositions(1000, 1000);
    file.distrustTail();
    expect(file.hasRoom(1)).toBe(false);
    await file.grow(SIZE, false);
    expect(file.usable).toBe(SIZE);
    expect(file.needsFlush).toBe(true); // the emptying is a write to sync
    expect(file.view(1000, SIZE - 1000)).toEqual(Buffer.alloc(SIZE - 1000));
    expect(file.hasRoom(SIZE - 1000)).toBe(true);
    file.close();
  });

  it('a short file reads zeros past its allocation, and grows to take appends', async () => {
    const dir = tmp.make();
    const backend = make();
    backend.mkdir(dir);
    const short = await backend.open(path.join(dir, offsetToFileName(0)),
      { sizeBytes: 1024, capacityBytes: SIZE, create: true, readOnly: false });
    const file = new MappedFile(short, 0, 0, SIZE);
    expect([file.sizeBytes, file.allocated, file.remaining]).toEqual([SIZE, 1024, SIZE]);
    append(file, pattern(1000, 7));
    expect(file.hasRoom(100)).toBe(false);
    expect(file.view(900, 300)).toEqual(Buffer.concat([pattern(1000, 7).subarray(900),
      Buffer.alloc(200)]));
    await file.grow(4096, false);
    expect([file.allocated, file.usable]).toEqual([4096, 4096]);
    append(file, pattern(3000, 8));
    expect(file.view(1000, 3000)).toEqual(pattern(3000, 8));
    file.growSync(SIZE);
    expect(file.allocated).toBe(SIZE);
    expect(file.scanBuffer().buf.length).toBe(SIZE);
    file.close();
  });

  it('a file grows far past its first allocation: appends and views there, older views intact',
    async () => {
      // 16 MiB of capacity from 64 KiB: the mmap backend maps such a file in part and maps it
      // again, wider, as it grows (the remapped views must see the same bytes).
      const BIG = 16 * 2 ** 20;
      const file = await openShort(BIG);
      const first = pattern(60_000, 9);
      append(file, first);
      const early = file.view(0, first.length);
      const chunk = pattern(200_000, 10);
      const at: number[] = [];
      for (let grown = 256 * 1024; grown <= BIG; grown *= 4) {
        await file.grow(grown, false);
        while (file.hasRoom(chunk.length)) at.push(append(file, chunk));
      }
      expect(file.allocated).toBe(BIG);
      expect(at.at(-1)! + chunk.length).toBeGreaterThan(BIG - chunk.length);
      for (const offset of at) expect(file.view(offset, chunk.length).equals(chunk)).toBe(true);
      expect(early.equals(first)).toBe(true);
      expect(file.view(0, first.length).equals(first)).toBe(true);
      await file.flush();
      expect(file.flushed).toBe(file.wrote);
      file.close();
    });

  it('a large growth makes its bytes usable step by step, before all of it is written',
    async () => {
      const BIG = 20 * 2 ** 20;
      const file = await openShort(BIG);
      const steps: { usable: number; allocated: number }[] = [];
      const chunk = pattern(1024 * 1024, 3);
      let wroteDuring = 0;
      await file.grow(BIG, false, () => {
        steps.push({ usable: file.usable, allocated: file.allocated });
        // A writer that caught up appends into the step at once.
        while (file.hasRoom(chunk.length) && file.usable < BIG) {
          append(file, chunk);
          wroteDuring += chunk.length;
        }
      });
      expect(steps.length).toBe(5);
      for (let i = 0; i < steps.length; i++) {
        expect(steps[i]!.usable).toBe(Math.min(BIG, 64 * 1024 + (i + 1) * 4 * 2 ** 20));
        expect(steps[i]!.allocated).toBe(steps[i]!.usable);
      }
      expect(wroteDuring).toBe(16 * 2 ** 20);
      expect(file.view(5 * 2 ** 20, chunk.length).equals(chunk)).toBe(true);
      file.close();
    });

  it('a flush of a closed file with unflushed bytes throws instead of reporting them flushed',
    async () => {
      const file = await open();
      append(file, pattern(100, 6));
      file.close();
      await expect(file.flush()).rejects.toMatchObject({ code: 'STORE_CLOSED' });
      expect(file.flushed).toBe(0);
    });
});
