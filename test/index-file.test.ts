import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IoBackend } from '../lib/store/io/backend.js';
import { FileBackend } from '../lib/store/io/file-backend.js';
import { MmapBackend } from '../lib/store/io/mmap-backend.js';
import { loadNative } from '../lib/store/io/native.js';
import {
  INDEX_HEADER_BYTES, IndexFile, indexFileBytes, indexFileDefaults, indexKeyHash,
  resolveIndexFileGeometry,
} from '../lib/store/index-file.js';

const backends: [string, () => IoBackend][] = [
  ['file', () => new FileBackend()],
  ['mmap', () => new MmapBackend(loadNative().mmap!)],
];

const T0 = 1_700_000_000_000;
const tiny = { hashSlotCount: 4, maxIndexCount: 16 };

interface Put {
  readonly key: string;
  readonly phyOffset: number;
  readonly ts: number;
}

/** Twelve entries over few slots: several chains, two keys per message, 2.5 s apart. */
const puts: Put[] = Array.from({ length: 12 }, (_, i) => ({
  key: `T#k${i % 5}`,
  phyOffset: 100 * Math.floor(i / 2),
  ts: T0 + 2500 * Math.floor(i / 2),
}));

function putAll(file: IndexFile, list: readonly Put[]): void {
  for (const p of list) expect(file.put(p.key, p.phyOffset, p.ts)).toBe(true);
}

/** Expected result of a query, computed from the puts themselves. */
function expected(list: readonly Put[], key: string): number[] {
  return list.filter((p) => p.key === key).map((p) => p.phyOffset).reverse();
}

describe.each(backends)('IndexFile on the %s backend', (_kind, makeBackend) => {
  let dir: string;
  let backend: IoBackend;
  const open: IndexFile[] = [];
  const track = (f: IndexFile): IndexFile => {
    open.push(f);
    return f;
  };
  const create = (name: string, geometry: object = tiny): IndexFile =>
    track(IndexFile.create(backend, path.join(dir, name), geometry));
  const reopen = async (name: string): Promise<IndexFile> =>
    track(await IndexFile.open(backend, path.join(dir, name)));

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-'));
    backend = makeBackend();
  });
  afterEach(() => {
    for (const f of open.splice(0)) f.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates a file of the documented size with the default geometry', () => {
    const f = create('default', {});
    expect(f.geometry).toEqual(indexFileDefaults);
    expect(fs.statSync(f.path).size).toBe(64 + 65536 * 4 + 262144 * 20);
    expect(f.isEmpty()).toBe(true);
    expect([f.beginPhyOffset, f.endPhyOffset, f.beginTimestamp, f.endTimestamp])
      .toEqual([-1, -1, -1, -1]);
  });

  it('finds every offset put under a key, newest first', () => {
    const f = create('a');
    putAll(f, puts);
    for (let k = 0; k < 5; k++) {
      const key = `T#k${k}`;
      expect(f.query(key, 0, Number.MAX_SAFE_INTEGER, 100)).toEqual(expected(puts, key));
    }
    expect(f.query('T#missing', 0, Number.MAX_SAFE_INTEGER, 100)).toEqual([]);
    expect(f.indexCount).toBe(12);
    expect([f.beginPhyOffset, f.endPhyOffset]).toEqual([0, 500]);
    expect(f.beginTimestamp).toBe(T0);
    expect(f.endTimestamp).toBe(T0 + 12_000); // 12.5 s stored as whole seconds
  });

  it('keeps colliding keys apart by hash in a single-slot chain', () => {
    const f = create('a', { hashSlotCount: 1, maxIndexCount: 16 });
    putAll(f, puts);
    expect(f.query('T#k1', 0, Number.MAX_SAFE_INTEGER, 100)).toEqual(expected(puts, 'T#k1'));
    // "Aa" and "BB" share Java's hashCode: the index cannot tell them apart.
    expect(indexKeyHash('T#Aa')).toBe(indexKeyHash('T#BB'));
    f.put('T#Aa', 900, T0 + 20_000);
    f.put('T#BB', 901, T0 + 20_000);
    expect(f.query('T#Aa', 0, Number.MAX_SAFE_INTEGER, 10)).toEqual([901, 900]);
  });

  it('maps Integer.MIN_VALUE hash codes to 0 as RocketMQ does', () => {
    expect(indexKeyHash('polygenelubricants')).toBe(0);
    expect(indexKeyHash('Aa')).toBe(2112);
    const f = create('a');
    f.put('polygenelubricants', 7, T0);
    expect(f.query('polygenelubricants', T0, T0, 1)).toEqual([7]);
  });

  it('filters by time with second granularity', () => {
    const f = create('a');
    f.put('T#k', 0, T0);
    f.put('T#k', 10, T0 + 1500);
    f.put('T#k', 20, T0 + 4999);
    f.put('T#k', 30, T0 + 9000);
    const q = (b: number, e: number): number[] => f.query('T#k', b, e, 100);
    for (const [at, off] of [[T0, 0], [T0 + 1500, 10], [T0 + 4999, 20], [T0 + 9000, 30]]) {
      expect(q(at!, at!)).toContain(off);
    }
    expect(q(T0 + 5000, T0 + 8999)).toEqual([]);
    expect(q(T0 + 2000, T0 + 9000)).toEqual([30, 20]);
    expect(q(T0 + 9001, Number.MAX_SAFE_INTEGER)).toEqual([30]); // same second as T0 + 9000
    expect(q(T0 + 10_000, Number.MAX_SAFE_INTEGER)).toEqual([]);
    expect(q(0, T0 - 1)).toEqual([]);
  });

  it('finds a message stored while the clock stepped back before beginTimestamp', () => {
    const f = create('a');
    f.put('T#k', 0, T0);
    f.put('T#k', 10, T0 - 3500);
    expect(f.query('T#k', T0 - 3500, T0 - 3500, 10)).toEqual([10]);
    expect(f.query('T#k', T0, T0, 10)).toEqual([0]);
  });

  it('returns at most maxNum offsets', () => {
    const f = create('a');
    for (let i = 0; i < 10; i++) f.put('T#k', i * 10, T0 + i);
    expect(f.query('T#k', 0, Number.MAX_SAFE_INTEGER, 3)).toEqual([90, 80, 70]);
    expect(f.query('T#k', 0, Number.MAX_SAFE_INTEGER, 0)).toEqual([]);
  });

  it('refuses puts when full', () => {
    const f = create('a', { hashSlotCount: 2, maxIndexCount: 3 });
    expect([f.put('a', 0, T0), f.put('b', 1, T0), f.put('c', 2, T0)]).toEqual([true, true, true]);
    expect(f.isFull()).toBe(true);
    expect(f.put('d', 3, T0)).toBe(false);
    expect(f.indexCount).toBe(3);
    expect(f.query('d', 0, Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
  });

  it('preserves everything across flush, close and reopen', async () => {
    const f = create('a');
    putAll(f, puts);
    await f.flush();
    f.close();
    const g = await reopen('a');
    expect(g.geometry).toEqual(resolveIndexFileGeometry(tiny));
    expect([g.indexCount, g.beginPhyOffset, g.endPhyOffset, g.beginTimestamp, g.endTimestamp])
      .toEqual([12, 0, 500, T0, T0 + 12_000]);
    for (let k = 0; k < 5; k++) {
      const key = `T#k${k}`;
      expect(g.query(key, 0, Number.MAX_SAFE_INTEGER, 100)).toEqual(expected(puts, key));
    }
    g.put('T#k0', 600, T0 + 15_000);
    g.close();
    const h = await reopen('a');
    expect(h.query('T#k0', 0, Number.MAX_SAFE_INTEGER, 1)).toEqual([600]);
  });

  it('keeps what close wrote even without a flush', async () => {
    const f = create('a');
    putAll(f, puts);
    f.close();
    const g = await reopen('a');
    expect(g.indexCount).toBe(12);
    expect(g.query('T#k3', 0, Number.MAX_SAFE_INTEGER, 100)).toEqual(expected(puts, 'T#k3'));
  });

  it('after a crash, opens exactly as the last flush left it', async () => {
    const f = create('a');
    const clean = create('clean');
    putAll(f, puts.slice(0, 7));
    putAll(clean, puts.slice(0, 7));
    await f.flush();
    putAll(f, puts.slice(7));
    // What the OS holds at a kill -9: the mapping's pages, or what a plain file wrote.
    fs.copyFileSync(f.path, path.join(dir, 'crashed'));
    const g = await reopen('crashed');
    expect([g.indexCount, g.endPhyOffset]).toEqual([7, 300]);
    expect(g.query('T#k2', 0, Number.MAX_SAFE_INTEGER, 100))
      .toEqual(expected(puts.slice(0, 7), 'T#k2'));
    putAll(g, puts.slice(7));
    putAll(clean, puts.slice(7));
    g.close();
    clean.close();
    expect(fs.readFileSync(g.path).equals(fs.readFileSync(clean.path))).toBe(true);
  });

  it('repairs a file whose slots and entries ran ahead of its header', async () => {
    const old = create('old');
    putAll(old, puts.slice(0, 5));
    old.close();
    const full = create('full');
    putAll(full, puts);
    full.close();
    // A crash between writing slots and entries and committing the header.
    const torn = fs.readFileSync(full.path);
    fs.readFileSync(old.path).copy(torn, 0, 0, INDEX_HEADER_BYTES);
    fs.writeFileSync(path.join(dir, 'torn'), torn);
    const g = await reopen('torn');
    expect([g.indexCount, g.endPhyOffset]).toEqual([5, 200]);
    g.close();
    expect(fs.readFileSync(g.path).equals(fs.readFileSync(old.path))).toBe(true);
  });

  it('reports a chain that links forward as CORRUPT_DATA', async () => {
    const f = create('a', { hashSlotCount: 1, maxIndexCount: 16 });
    putAll(f, puts.slice(0, 4));
    f.close();
    const bytes = fs.readFileSync(f.path);
    bytes.writeUInt32LE(4, INDEX_HEADER_BYTES + 4 + 2 * 20 + 16); // entry 3's prevIndex := 4
    fs.writeFileSync(f.path, bytes);
    const g = await reopen('a');
    expect(() => g.query('T#k0', 0, Number.MAX_SAFE_INTEGER, 10))
      .toThrow(expect.objectContaining({ code: 'CORRUPT_DATA', path: g.path }));
  });

  it('a flush overtaken by truncateFrom commits the truncated state', async () => {
    const f = create('a');
    putAll(f, puts);
    const flushed = f.flush();
    await Promise.resolve();
    await Promise.resolve(); // the flush now waits for its first fdatasync
    f.truncateFrom(300);
    await flushed;
    fs.copyFileSync(f.path, path.join(dir, 'image'));
    const g = await reopen('image');
    g.close();
    const clean = create('clean');
    putAll(clean, puts.slice(0, 6));
    clean.close();
    expect(fs.readFileSync(g.path).equals(fs.readFileSync(clean.path))).toBe(true);
  });

  it('truncateFrom leaves the bytes of a file built only with the kept entries', async () => {
    for (const cut of [0, 1, 200, 250, 500, 501]) {
      const name = `cut-${cut}`;
      const f = create(name);
      putAll(f, puts);
      f.truncateFrom(cut);
      const kept = puts.filter((p) => p.phyOffset < cut);
      expect(f.indexCount).toBe(kept.length);
      expect(f.endPhyOffset).toBe(kept.at(-1)?.phyOffset ?? -1);
      await f.flush();
      f.close();
      const g = create(`${name}-clean`);
      putAll(g, kept);
      g.close();
      expect(fs.readFileSync(f.path).equals(fs.readFileSync(g.path))).toBe(true);
    }
  });

  it('after truncateFrom, new puts give the same file as a clean run', async () => {
    const f = create('a');
    putAll(f, puts);
    f.truncateFrom(300);
    const later = puts.slice(6).map((p) => ({ ...p, key: `${p.key}x`, ts: p.ts + 1000 }));
    putAll(f, later);
    f.close();
    const g = create('clean');
    putAll(g, puts.slice(0, 6));
    putAll(g, later);
    g.close();
    const reopened = await reopen('a');
    expect(reopened.query('T#k1x', 0, Number.MAX_SAFE_INTEGER, 10))
      .toEqual(expected(later, 'T#k1x'));
    expect(fs.readFileSync(f.path).equals(fs.readFileSync(g.path))).toBe(true);
  });

  it('rejects a header that fails its checksum with CORRUPT_DATA naming the path', async () => {
    const f = create('a');
    putAll(f, puts);
    await f.flush();
    f.close();
    for (const at of [0, 20, 44, 60]) {
      const bytes = fs.readFileSync(f.path);
      bytes[at] = bytes[at]! ^ 0x10;
      const bad = path.join(dir, `bad-${at}`);
      fs.writeFileSync(bad, bytes);
      await expect(IndexFile.open(backend, bad)).rejects.toMatchObject({
        code: 'CORRUPT_DATA', path: bad, message: expect.stringContaining(bad),
      });
    }
  });

  it('rejects a file too short for a header or of the wrong size', async () => {
    const short = path.join(dir, 'short');
    fs.writeFileSync(short, Buffer.alloc(INDEX_HEADER_BYTES - 1));
    await expect(IndexFile.open(backend, short)).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
    const f = create('a');
    f.close();
    const grown = path.join(dir, 'grown');
    fs.writeFileSync(grown, Buffer.concat([fs.readFileSync(f.path), Buffer.alloc(20)]));
    await expect(IndexFile.open(backend, grown)).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
  });

  it('asserts offsets never decrease and timestamps are not negative', () => {
    const f = create('a');
    f.put('k', 100, T0);
    f.put('k', 100, T0);
    const failed = expect.objectContaining({ code: 'ASSERTION_FAILED' });
    expect(() => f.put('k', 99, T0)).toThrow(failed);
    expect(() => f.put('k', 200, -1)).toThrow(failed);
    expect(() => f.put('k', 1.5, T0)).toThrow(failed);
    expect(f.indexCount).toBe(2);
  });

  it('refuses every call after close with STORE_CLOSED; close is idempotent', async () => {
    const f = create('a');
    f.close();
    f.close();
    const closed = expect.objectContaining({ code: 'STORE_CLOSED' });
    expect(() => f.put('k', 0, T0)).toThrow(closed);
    expect(() => f.query('k', 0, 1, 1)).toThrow(closed);
    expect(() => f.truncateFrom(0)).toThrow(closed);
    expect(() => f.flush()).toThrow(closed);
  });

  it('validates geometry options, naming the property', () => {
    expect(() => create('x', { hashSlotCount: 0 }))
      .toThrow(expect.objectContaining({ code: 'INVALID_OPTION', property: 'hashSlotCount' }));
    expect(() => create('y', { maxIndexCount: 2 ** 30 }))
      .toThrow(expect.objectContaining({ code: 'INVALID_OPTION', property: 'maxIndexCount' }));
    expect(indexFileBytes({ hashSlotCount: 4, maxIndexCount: 16 })).toBe(64 + 16 + 320);
  });
});
