import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IoBackend } from '../lib/store/io/backend.js';
import { FileBackend } from '../lib/store/io/file-backend.js';
import { MmapBackend } from '../lib/store/io/mmap-backend.js';
import { loadNative } from '../lib/store/io/native.js';
import { INDEX_HEADER_BYTES } from '../lib/store/index-file.js';
import { IndexService, indexFileName } from '../lib/store/index-service.js';
import type { IndexServiceOptions } from '../lib/store/index-service.js';

const backends: [string, () => IoBackend][] = [
  ['file', () => new FileBackend()],
  ['mmap', () => new MmapBackend(loadNative().mmap!)],
];

const T0 = 1_700_000_000_000;
const ALL = Number.MAX_SAFE_INTEGER;
/** Five entries per file: a message's three entries often straddle two files. */
const tiny: IndexServiceOptions = { hashSlotCount: 4, maxIndexCount: 5 };

interface Msg {
  readonly keys: string[];
  readonly uniqKey: string;
  readonly phyOffset: number;
  readonly ts: number;
}

const msg = (i: number): Msg => ({
  keys: [`k${i % 3}`, `order-${i}`],
  uniqKey: `u${i}`,
  phyOffset: 100 * i,
  ts: T0 + 1000 * i,
});
const msgs = (from: number, to: number): Msg[] =>
  Array.from({ length: to - from }, (_, i) => msg(from + i));

function build(s: IndexService, list: readonly Msg[], topic = 'T'): void {
  for (const m of list) s.buildIndex(topic, m.keys, m.uniqKey, m.phyOffset, m.ts);
}

/** Newest-first offsets of the messages carrying `key`. */
function offsetsOf(list: readonly Msg[], key: string): number[] {
  return list.filter((m) => m.keys.includes(key) || m.uniqKey === key)
    .map((m) => m.phyOffset).reverse();
}

function snapshot(dir: string): Map<string, Buffer> {
  return new Map(fs.readdirSync(dir).sort().map((n) => [n, fs.readFileSync(path.join(dir, n))]));
}

describe.each(backends)('IndexService on the %s backend', (_kind, makeBackend) => {
  let root: string;
  let backend: IoBackend;
  const services: IndexService[] = [];
  const open = async (name = 'index', options = tiny): Promise<IndexService> => {
    const s = new IndexService(backend, path.join(root, name), options);
    services.push(s);
    await s.load();
    return s;
  };

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-'));
    backend = makeBackend();
  });
  afterEach(() => {
    for (const s of services.splice(0)) s.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('starts empty and indexes keys and uniq keys per topic', async () => {
    const s = await open();
    expect([s.endPhyOffset, s.fileCount]).toEqual([-1, 0]);
    build(s, msgs(0, 3));
    build(s, [{ keys: ['k0'], uniqKey: 'other', phyOffset: 300, ts: T0 }], 'U');
    expect(s.queryOffsets('T', 'k0', 10, 0, ALL)).toEqual([0]);
    expect(s.queryOffsets('T', 'u2', 10, 0, ALL)).toEqual([200]);
    expect(s.queryOffsets('T', 'order-1', 10, 0, ALL)).toEqual([100]);
    expect(s.queryOffsets('U', 'k0', 10, 0, ALL)).toEqual([300]);
    expect(s.queryOffsets('U', 'u0', 10, 0, ALL)).toEqual([]);
    expect(s.endPhyOffset).toBe(300);
  });

  it('indexes each distinct non-empty key once', async () => {
    const s = await open('index', { hashSlotCount: 4, maxIndexCount: 2 });
    s.buildIndex('T', ['a', 'a', '', 'u', 'b'], 'u', 0, T0);
    expect(s.fileCount).toBe(2); // u, a | b: three entries
    s.buildIndex('T', [], undefined, 10, T0);
    s.buildIndex('T', [''], '', 20, T0);
    expect(s.fileCount).toBe(2);
    expect(s.queryOffsets('T', 'a', 10, 0, ALL)).toEqual([0]);
    expect(s.queryOffsets('T', 'u', 10, 0, ALL)).toEqual([0]);
  });

  it('rolls to a new file when one is full and queries newest first across files', async () => {
    const s = await open();
    const list = msgs(0, 10);
    build(s, list);
    expect(s.fileCount).toBe(6); // 30 entries, 5 per file
    const names = fs.readdirSync(path.join(root, 'index')).sort();
    expect(names).toEqual([0, 1, 2, 3, 4, 5].map(indexFileName));
    expect(names[1]).toBe('00000000000000000001');
    for (const key of ['k0', 'k1', 'k2', 'order-4', 'u9']) {
      expect(s.queryOffsets('T', key, 100, 0, ALL)).toEqual(offsetsOf(list, key));
    }
    expect(s.queryOffsets('T', 'k0', 2, 0, ALL)).toEqual([900, 600]);
    expect(s.queryOffsets('T', 'k0', 0, 0, ALL)).toEqual([]);
    expect(s.queryOffsets('T', 'k1', 100, T0 + 2000, T0 + 7000)).toEqual([700, 400]);
    expect(s.endPhyOffset).toBe(900);
  });

  it('reloads every file as flushed and keeps appending to the newest', async () => {
    const s = await open();
    build(s, msgs(0, 7));
    await s.flush();
    s.close();
    const t = await open();
    expect([t.fileCount, t.endPhyOffset]).toEqual([5, 600]);
    expect(t.queryOffsets('T', 'k0', 100, 0, ALL)).toEqual(offsetsOf(msgs(0, 7), 'k0'));
    build(t, msgs(7, 8));
    expect(t.fileCount).toBe(5); // 21 + 3 entries still fit the fifth file
    expect(t.queryOffsets('T', 'k1', 100, 0, ALL)).toEqual(offsetsOf(msgs(0, 8), 'k1'));
  });

  it('drops a newest file cut short by a crash while it was being made', async () => {
    const s = await open();
    build(s, msgs(0, 3));
    await s.flush();
    s.close();
    const dir = path.join(root, 'index');
    const next = fs.readdirSync(dir).length;
    fs.writeFileSync(path.join(dir, indexFileName(next)), Buffer.alloc(0)); // created, no bytes
    fs.writeFileSync(path.join(dir, indexFileName(next + 1)), Buffer.alloc(40)); // partly zeroed
    const t = await open();
    expect(t.fileCount).toBe(next);
    expect(fs.readdirSync(dir).length).toBe(next);
    expect(t.queryOffsets('T', 'k1', 100, 0, ALL)).toEqual(offsetsOf(msgs(0, 3), 'k1'));
  });

  it('truncateFrom leaves the directory a clean run with the kept messages makes', async () => {
    for (const cut of [0, 250, 300, 400, 901, 2000]) {
      const s = await open(`cut-${cut}`);
      build(s, msgs(0, 10));
      s.truncateFrom(cut);
      const kept = msgs(0, 10).filter((m) => m.phyOffset < cut);
      expect(s.endPhyOffset).toBe(kept.at(-1)?.phyOffset ?? -1);
      expect(s.queryOffsets('T', 'k1', 100, 0, ALL)).toEqual(offsetsOf(kept, 'k1'));
      const clean = await open(`clean-${cut}`);
      build(clean, kept);
      const later = msgs(10, 13);
      build(s, later);
      build(clean, later);
      s.close();
      clean.close();
      const got = snapshot(path.join(root, `cut-${cut}`));
      const want = snapshot(path.join(root, `clean-${cut}`));
      expect([...got.keys()]).toEqual([...want.keys()]);
      for (const [name, bytes] of want) expect(got.get(name)!.equals(bytes)).toBe(true);
    }
  });

  it('deleteFilesBefore deletes the oldest files wholly below the offset, never the newest',
    async () => {
      const s = await open();
      const list = msgs(0, 10);
      build(s, list); // files end at offsets 100, 300, 400, 600, 800, 900
      expect(s.deleteFilesBefore(0)).toBe(0);
      expect(s.deleteFilesBefore(300)).toBe(1);
      expect(s.deleteFilesBefore(301)).toBe(1);
      expect(fs.readdirSync(path.join(root, 'index')).sort())
        .toEqual([2, 3, 4, 5].map(indexFileName));
      expect(s.queryOffsets('T', 'k0', 100, 0, ALL)).toEqual([900, 600, 300]);
      expect(s.deleteFilesBefore(ALL)).toBe(3);
      expect(s.fileCount).toBe(1);
      expect(s.endPhyOffset).toBe(900);
      build(s, msgs(10, 11));
      await s.flush();
      s.close();
      const t = await open();
      expect(t.fileCount).toBe(2);
      expect(t.queryOffsets('T', 'u10', 10, 0, ALL)).toEqual([1000]);
    });

  it('rejects a file whose header fails its checksum with CORRUPT_DATA', async () => {
    const s = await open();
    build(s, msgs(0, 4));
    await s.flush();
    s.close();
    const bad = path.join(root, 'index', indexFileName(1));
    const bytes = fs.readFileSync(bad);
    bytes[INDEX_HEADER_BYTES - 1] = 1; // a reserved byte
    fs.writeFileSync(bad, bytes);
    const t = new IndexService(backend, path.join(root, 'index'), tiny);
    await expect(t.load()).rejects.toMatchObject({ code: 'CORRUPT_DATA', path: bad });
    expect(() => t.queryOffsets('T', 'k0', 1, 0, ALL))
      .toThrow(expect.objectContaining({ code: 'STORE_CLOSED' }));
  });

  it('ignores files that are not index files', async () => {
    fs.mkdirSync(path.join(root, 'index'));
    fs.writeFileSync(path.join(root, 'index', 'notes.txt'), 'x');
    const s = await open();
    expect(s.fileCount).toBe(0);
  });

  it('asserts offsets never decrease across files', async () => {
    const s = await open();
    build(s, msgs(0, 2)); // the second message rolls into file 1
    expect(() => s.buildIndex('T', ['x'], undefined, 50, T0))
      .toThrow(expect.objectContaining({ code: 'ASSERTION_FAILED' }));
  });

  it('refuses calls after close with STORE_CLOSED; close is idempotent', async () => {
    const s = await open();
    s.close();
    s.close();
    const closed = expect.objectContaining({ code: 'STORE_CLOSED' });
    expect(() => s.buildIndex('T', ['k'], undefined, 0, T0)).toThrow(closed);
    expect(() => s.truncateFrom(0)).toThrow(closed);
    expect(() => s.deleteFilesBefore(0)).toThrow(closed);
    await expect(s.flush()).rejects.toMatchObject({ code: 'STORE_CLOSED' });
  });
});
