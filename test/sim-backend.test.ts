import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskFullError, PocketMQError } from '../lib/errors.js';
import type { IoBackend, OpenOptions } from '../lib/store/io/backend.js';
import { FileBackend } from '../lib/store/io/file-backend.js';
import { SECTOR_BYTES, SimBackend } from './support/sim-backend.js';

const ROOT = '/sim';
const create = (sizeBytes: number): OpenOptions => ({ sizeBytes, create: true, readOnly: false });
const bytes = (text: string): Buffer => Buffer.from(text);

function newDisk(seed = 1): SimBackend {
  const disk = new SimBackend({ seed });
  disk.mkdir(ROOT);
  return disk;
}

/** Code and cause code of what `fn` throws (or rejects with). */
async function failure(fn: () => unknown): Promise<[string, string | undefined]> {
  try {
    await fn();
  } catch (err) {
    const cause = err instanceof PocketMQError ? err.cause : undefined;
    return [(err as { code: string }).code, (cause as NodeJS.ErrnoException | undefined)?.code];
  }
  throw new Error('expected a failure');
}

/** The same sequence of directory and file calls, logged so two backends can be compared. */
async function fsScript(b: IoBackend, root: string): Promise<unknown[]> {
  const log: unknown[] = [];
  const at = (...parts: string[]): string => path.join(root, ...parts);
  const step = async (name: string, fn: () => unknown): Promise<void> => {
    try {
      const value = await fn();
      log.push([name, Buffer.isBuffer(value) ? value.toString('hex') : value]);
    } catch (err) {
      const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
      log.push([name, 'throws', (err as { code?: string }).code, cause?.code]);
    }
  };
  const ro = { sizeBytes: 0, create: false, readOnly: true };
  await step('readdir empty root', () => b.readdir(root));
  await step('readdir missing', () => b.readdir(at('missing')));
  await step('mkdir -p', () => b.mkdir(at('a', 'b', 'c')));
  await step('mkdir again', () => b.mkdir(at('a', 'b', 'c')));
  await step('exists', () => [b.exists(at('a')), b.exists(at('a', 'b', 'c')), b.exists(at('z'))]);
  await step('readdir root', () => b.readdir(root));
  await step('writeFile', () => b.writeFile(at('a', 'marker'), bytes('hello')));
  await step('writeFile shorter', () => b.writeFile(at('a', 'marker'), bytes('x')));
  await step('readFile', () => b.readFile(at('a', 'marker')));
  await step('fileSize', () => [b.fileSize(at('a', 'marker')), b.fileSize(at('nope'))]);
  await step('readFile missing', () => b.readFile(at('nope')));
  await step('readdir a', () => b.readdir(at('a')).sort());
  await step('unlink missing', () => b.unlink(at('a', 'nope')));
  await step('rmdir non-empty', () => b.rmdir(at('a')));
  await step('still there', () => b.exists(at('a')));
  await step('rmdir missing', () => b.rmdir(at('gone')));
  await step('open no create', () => b.openSync(at('a', 'nope'), { ...create(64), create: false }));
  await step('open read-only missing', () => b.openSync(at('a', 'nope'), { ...ro, create: true }));
  await step('open in missing dir', () => b.openSync(at('q', 'seg'), create(64)));
  await step('open under a file', () => b.openSync(at('a', 'marker', 'seg'), create(64)));
  await step('open a dir', () => b.openSync(at('a'), create(64)));
  await step('async open missing', () => b.open(at('a', 'nope'), { ...create(64), create: false }));
  await step('segment', async () => {
    const f = await b.open(at('a', 'seg'), create(4096));
    f.write(100, bytes('abc'));
    const before = f.read(98, 7).toString('hex');
    await f.flush();
    f.truncate(101);
    const after = f.view(98, 7).toString('hex');
    f.close();
    return [f.size(), f.mapping === null, b.fileSize(at('a', 'seg')), before, after];
  });
  await step('grow', () => {
    const f = b.openSync(at('a', 'seg'), create(8192));
    const data = f.read(100, 2).toString('hex');
    f.close();
    return [f.size(), b.fileSize(at('a', 'seg')), data];
  });
  await step('open smaller', () => {
    const f = b.openSync(at('a', 'seg'), create(1024));
    f.close();
    return [f.size(), b.fileSize(at('a', 'seg'))];
  });
  await step('read-only', () => {
    const f = b.openSync(at('a', 'seg'), ro);
    const size = f.size();
    const data = f.read(100, 1).toString('hex');
    f.close();
    return [size, data];
  });
  await step('write read-only', () => {
    const f = b.openSync(at('a', 'seg'), ro);
    try {
      f.write(0, bytes('x'));
    } finally {
      f.close();
    }
  });
  await step('atomic', () => b.writeFileAtomic(at('a', 'meta'), bytes('v1')));
  await step('atomic replace', () => b.writeFileAtomic(at('a', 'meta'), bytes('v2')));
  await step('atomic read', () => b.readFile(at('a', 'meta')));
  await step('no tmp left', () => b.readdir(at('a')).sort());
  await step('atomic missing dir', () => b.writeFileAtomic(at('q', 'meta'), bytes('v')));
  await step('unlink a dir', () => b.unlink(at('a')));
  await step('rmdir a file', () => b.rmdir(at('a', 'marker')));
  await step('readdir a file', () => b.readdir(at('a', 'marker')));
  await step('mkdir over a file', () => b.mkdir(at('a', 'marker')));
  await step('mkdir under a file', () => b.mkdir(at('a', 'marker', 'q')));
  await step('readFile a dir', () => b.readFile(at('a')));
  await step('writeFile a dir', () => b.writeFile(at('a'), bytes('x')));
  await step('diskUsage missing', () => b.diskUsage(at('missing')));
  await step('diskUsage', () => {
    const { totalBytes, freeBytes } = b.diskUsage(root);
    return totalBytes >= freeBytes && freeBytes > 0;
  });
  await step('clean up', () => {
    for (const name of ['marker', 'seg', 'meta']) b.unlink(at('a', name));
    b.rmdir(at('a', 'b', 'c'));
    b.rmdir(at('a', 'b'));
    const left = b.readdir(at('a'));
    b.rmdir(at('a'));
    return [left, b.exists(at('a')), b.readdir(root)];
  });
  return log;
}

describe('SimBackend matches FileBackend', () => {
  let dir = '';
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pocketmq-sim-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs the same directory and file script with the same results', async () => {
    const real = await fsScript(new FileBackend(), dir);
    const sim = await fsScript(newDisk(), ROOT);
    expect(sim).toEqual(real);
    expect(real).toContainEqual(['open no create', 'throws', 'IO_ERROR', 'ENOENT']);
  });
});

describe('SimBackend durability', () => {
  it('keeps flushed writes and drops unflushed ones on crash', async () => {
    const disk = newDisk();
    const file = await disk.open('/sim/log', create(4096));
    file.write(0, bytes('flushed'));
    await file.flush();
    file.write(512, bytes('lost'));
    expect(disk.volatileBytes('/sim/log')!.subarray(512, 516).toString()).toBe('lost');
    expect(disk.durableBytes('/sim/log')!.subarray(512, 516)).toEqual(Buffer.alloc(4));

    const report = disk.crash();
    expect(report).toMatchObject({ keptWrites: 0, droppedWrites: 1, lostFiles: [] });
    const again = disk.openSync('/sim/log', create(4096));
    expect(again.read(0, 7).toString()).toBe('flushed');
    expect(again.read(512, 4)).toEqual(Buffer.alloc(4));
  });

  it('makes durable only what was written before flush was called', async () => {
    const disk = newDisk();
    let release = (): void => {};
    disk.setFlushDelay(() => new Promise((resolve) => (release = resolve)));
    const file = disk.openSync('/sim/log', create(1024));
    file.write(0, bytes('a'));
    const flushed = file.flush();
    file.write(1, bytes('b'));
    release();
    await flushed;
    expect(disk.durableBytes('/sim/log')!.subarray(0, 2).toString()).toBe('a\0');
    expect(disk.stats.flushes).toBe(1);
  });

  it('makes every write durable at syncAll', () => {
    const disk = newDisk();
    const file = disk.openSync('/sim/log', create(1024));
    file.write(0, bytes('abc'));
    disk.syncAll();
    disk.crash({ mode: 'lose-new-files' });
    expect(disk.durableBytes('/sim/log')!.subarray(0, 3).toString()).toBe('abc');
  });

  it('keeps every write in keep-all mode', () => {
    const disk = newDisk();
    const file = disk.openSync('/sim/log', create(1024));
    file.write(0, bytes('one'));
    file.write(1, bytes('X'));
    expect(disk.crash({ mode: 'keep-all' }).keptWrites).toBe(2);
    expect(disk.readFile('/sim/log')!.subarray(0, 3).toString()).toBe('oXe');
  });

  it('keeps the same random subset for the same seed', () => {
    const run = (seed: number): unknown => {
      const disk = newDisk(seed);
      for (const name of ['a', 'b']) {
        const file = disk.openSync(`/sim/${name}`, create(1024));
        for (let i = 0; i < 24; i += 1) file.write(i * 8, Buffer.alloc(8, i + 1));
      }
      const report = disk.crash({ mode: 'random-subset' });
      const content = ['a', 'b'].map((name) => disk.readFile(`/sim/${name}`)!.toString('hex'));
      return [report, content];
    };
    expect(run(42)).toEqual(run(42));
    const [report] = run(42) as [{ keptWrites: number; droppedWrites: number }];
    expect(report.keptWrites).toBeGreaterThan(0);
    expect(report.droppedWrites).toBeGreaterThan(0);
    expect(new Set([1, 2, 3, 4].map((seed) => JSON.stringify(run(seed)))).size).toBeGreaterThan(1);
  });

  it('applies kept writes in order, each whole or not at all', () => {
    const disk = newDisk(7);
    const file = disk.openSync('/sim/log', create(1024));
    for (let i = 1; i <= 16; i += 1) file.write(0, Buffer.alloc(16, i));
    file.write(100, Buffer.alloc(16, 0xaa));
    disk.crash({ mode: 'random-subset' });
    const data = disk.readFile('/sim/log')!;
    expect(new Set(data.subarray(0, 16)).size).toBe(1);
    expect(new Set(data.subarray(100, 116)).size).toBe(1);
  });

  it('tears the last kept write at a sector boundary', () => {
    for (let seed = 1; seed <= 20; seed += 1) {
      const disk = newDisk(seed);
      const file = disk.openSync('/sim/log', create(4096));
      file.write(100, Buffer.alloc(2000, 0xff));
      const [torn] = disk.crash({ mode: 'keep-all', tear: true }).torn;
      expect(torn).toMatchObject({ path: '/sim/log', position: 100, length: 2000 });
      const end = 100 + torn!.keptBytes;
      expect(end % SECTOR_BYTES).toBe(0);
      expect(torn!.keptBytes).toBeGreaterThan(0);
      expect(torn!.keptBytes).toBeLessThan(2000);
      const data = disk.readFile('/sim/log')!;
      expect(data.subarray(100, end)).toEqual(Buffer.alloc(end - 100, 0xff));
      expect(data.subarray(end, 2100)).toEqual(Buffer.alloc(2100 - end));
    }
  });

  it('drops a torn write that lies inside one sector', () => {
    const disk = newDisk();
    const file = disk.openSync('/sim/log', create(1024));
    file.write(0, bytes('kept'));
    file.write(600, bytes('torn'));
    const report = disk.crash({ mode: 'keep-all', tear: true });
    expect(report.torn).toEqual([{ path: '/sim/log', position: 600, length: 4, keptBytes: 0 }]);
    expect(disk.readFile('/sim/log')!.subarray(0, 4).toString()).toBe('kept');
    expect(disk.readFile('/sim/log')!.subarray(600, 604)).toEqual(Buffer.alloc(4));
  });

  it('writes atomic files and markers durably', () => {
    const disk = newDisk();
    disk.writeFileAtomic('/sim/checkpoint', bytes('v1'));
    disk.writeFile('/sim/abort', bytes('1'));
    disk.crash({ mode: 'lose-new-files', tear: true });
    disk.writeFileAtomic('/sim/checkpoint', bytes('v2'));
    disk.crash({ mode: 'random-subset', tear: true });
    expect(disk.readFile('/sim/checkpoint')!.toString()).toBe('v2');
    expect(disk.readFile('/sim/abort')!.toString()).toBe('1');
  });

  it('loses never-flushed new files only in lose-new-files mode', async () => {
    const disk = newDisk();
    disk.openSync('/sim/kept', create(64)).write(0, bytes('x'));
    disk.crash();
    expect(disk.readFile('/sim/kept')).toEqual(Buffer.alloc(64));

    const flushed = disk.openSync('/sim/flushed', create(64));
    await flushed.flush();
    disk.openSync('/sim/new', create(64));
    const report = disk.crash({ mode: 'lose-new-files' });
    expect(report.lostFiles).toEqual(['/sim/new']);
    expect(disk.fileNames()).toEqual(['/sim/flushed', '/sim/kept']);
  });

  it('kills handles opened before a crash', async () => {
    const disk = newDisk();
    const file = disk.openSync('/sim/log', create(1024));
    let release = (): void => {};
    disk.setFlushDelay(() => new Promise((resolve) => (release = resolve)));
    const inFlight = file.flush();
    disk.crash();
    release();
    expect(await failure(() => inFlight)).toEqual(['IO_ERROR', 'EBADF']);
    disk.setFlushDelay(null);
    expect(await failure(() => file.read(0, 1))).toEqual(['IO_ERROR', 'EBADF']);
    expect(await failure(() => file.write(0, bytes('x')))).toEqual(['IO_ERROR', 'EBADF']);
    expect(await failure(() => file.truncate(0))).toEqual(['IO_ERROR', 'EBADF']);
    expect(await failure(() => file.flush())).toEqual(['IO_ERROR', 'EBADF']);
    expect(() => file.close()).not.toThrow();
    const again = await disk.open('/sim/log', create(1024));
    again.write(0, bytes('y'));
    expect(again.read(0, 1).toString()).toBe('y');
  });
});

describe('SimBackend faults and space', () => {
  it('fails open with DISK_FULL and creates nothing', async () => {
    const disk = newDisk();
    disk.failNext('open', 'ENOSPC');
    const err = await disk.open('/sim/seg', create(4096)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiskFullError);
    expect(err).toMatchObject({ code: 'DISK_FULL', path: '/sim/seg' });
    expect(disk.exists('/sim/seg')).toBe(false);
    expect(disk.fileNames()).toEqual([]);
    await disk.open('/sim/seg', create(4096));
    expect(disk.fileNames()).toEqual(['/sim/seg']);
  });

  it('accounts capacity and frees space on unlink', async () => {
    const disk = newDisk();
    disk.setCapacity(10_000);
    disk.openSync('/sim/one', create(8192)).close();
    expect(disk.diskUsage(ROOT)).toEqual({ totalBytes: 10_000, freeBytes: 10_000 - 8192 });
    const full = ['DISK_FULL', 'ENOSPC'];
    expect(await failure(() => disk.open('/sim/two', create(4096)))).toEqual(full);
    expect(disk.exists('/sim/two')).toBe(false);
    expect(await failure(() => disk.openSync('/sim/one', create(16_384)))).toEqual(full);
    expect(disk.fileSize('/sim/one')).toBe(8192);
    expect(await failure(() => disk.writeFileAtomic('/sim/m', Buffer.alloc(2000)))).toEqual(full);
    expect(disk.fileNames()).toEqual(['/sim/one']);
    disk.unlink('/sim/one');
    expect(disk.diskUsage(ROOT).freeBytes).toBe(10_000);
    disk.openSync('/sim/two', create(4096)).close();
    expect(disk.usedBytes()).toBe(4096);
  });

  it('fails the next writes and flushes with IO_ERROR, then recovers', async () => {
    const disk = newDisk();
    const file = disk.openSync('/sim/log', create(1024));
    disk.failNext('write', 'EIO', 2);
    expect(await failure(() => file.write(0, bytes('a')))).toEqual(['IO_ERROR', 'EIO']);
    expect(await failure(() => file.write(0, bytes('a')))).toEqual(['IO_ERROR', 'EIO']);
    file.write(0, bytes('b'));
    expect(file.read(0, 1).toString()).toBe('b');
    disk.failNext('flush', 'EIO');
    expect(await failure(() => file.flush())).toEqual(['IO_ERROR', 'EIO']);
    expect(disk.durableBytes('/sim/log')![0]).toBe(0);
    await file.flush();
    expect(disk.durableBytes('/sim/log')!.subarray(0, 1).toString()).toBe('b');
  });

  it('fails what a predicate picks until it is removed', async () => {
    const disk = newDisk();
    const file = disk.openSync('/sim/log', create(1024));
    const remove = disk.failWhen((e) => e.op === 'read' && e.position === 512 && 'EIO');
    expect(file.read(0, 4)).toEqual(Buffer.alloc(4));
    expect(await failure(() => file.read(512, 4))).toEqual(['IO_ERROR', 'EIO']);
    remove();
    expect(file.read(512, 4)).toEqual(Buffer.alloc(4));
  });

  it('logs every fault it throws, queued or picked', async () => {
    const disk = newDisk();
    const file = disk.openSync('/sim/log', create(1024));
    const before = disk.faultsFired;
    disk.failNext('write', 'ENOSPC');
    disk.failWhen((e) => e.op === 'read' && e.position === 512 && 'EIO');
    await failure(() => file.write(4, bytes('a')));
    file.write(4, bytes('a'));
    await failure(() => file.read(512, 4));
    expect(disk.faultsFired - before).toBe(2);
    expect(disk.firedSince(before).map((f) => [f.op, f.path, f.position, f.code])).toEqual([
      ['write', '/sim/log', 4, 'ENOSPC'], ['read', '/sim/log', 512, 'EIO'],
    ]);
    expect(disk.firedSince(disk.faultsFired)).toEqual([]);
  });

  it('flips a bit on read without touching the disk', () => {
    const disk = newDisk();
    const file = disk.openSync('/sim/log', create(1024));
    file.write(10, Buffer.from([0xf0]));
    disk.flipBitOnRead('/sim/log', 10, 1);
    expect(file.read(8, 4)[2]).toBe(0xf2);
    expect(disk.readFile('/sim/log')![10]).toBe(0xf2);
    expect(disk.volatileBytes('/sim/log')![10]).toBe(0xf0);
    disk.clearFaults();
    expect(file.read(10, 1)[0]).toBe(0xf0);
  });

  it('rejects reads and writes outside the file and writes on read-only handles', async () => {
    const disk = newDisk();
    const file = disk.openSync('/sim/log', create(1024));
    expect(disk.kind).toBe('sim');
    expect(file.mapping).toBeNull();
    expect(() => file.write(1020, Buffer.alloc(8))).toThrow(RangeError);
    expect(() => file.read(-1, 1)).toThrow(RangeError);
    const ro = disk.openSync('/sim/log', { sizeBytes: 0, create: false, readOnly: true });
    expect(ro.size()).toBe(1024);
    expect(await failure(() => ro.write(0, bytes('x')))).toEqual(['IO_ERROR', 'EBADF']);
  });
});
