/**
 * OverlayBackend: the copy-on-write view under read-only stores. Writes, truncations, new
 * files, deletions and small files all stay in memory and read back as written; the files on
 * disk never change; bytes past a file's end on disk read as zeros.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileBackend } from '../lib/store/io/file-backend.js';
import { OverlayBackend } from '../lib/store/io/overlay-backend.js';
import { useTempDirs } from './support/backends.js';

const tmp = useTempDirs();

function setUp(): { dir: string; file: string; bytes: Buffer; overlay: OverlayBackend } {
  const dir = tmp.make();
  const file = path.join(dir, 'data');
  const bytes = Buffer.alloc(10_000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
  fs.writeFileSync(file, bytes);
  return { dir, file, bytes, overlay: new OverlayBackend(new FileBackend()) };
}

describe('OverlayBackend', () => {
  it('reads the file, keeps writes and truncations in memory, never touching the file', () => {
    const { file, bytes, overlay } = setUp();
    const f = overlay.openSync(file, { sizeBytes: 16_384, create: false, readOnly: false });
    expect(f.mapping).toBeNull();
    expect(f.size()).toBe(16_384);
    expect(f.read(0, 10_000)).toEqual(bytes);
    // Past the file's end on disk: zeros.
    expect(f.read(9_990, 20)).toEqual(Buffer.concat([bytes.subarray(9_990), Buffer.alloc(10)]));
    f.write(4090, Buffer.from('across a page'));
    expect(f.read(4088, 17).toString('latin1', 2, 15)).toBe('across a page');
    expect(f.view(4090, 13).toString()).toBe('across a page');
    f.truncate(4095);
    expect(f.read(4090, 10)).toEqual(Buffer.concat([Buffer.from('acros'), Buffer.alloc(5)]));
    expect(f.read(8000, 100)).toEqual(Buffer.alloc(100));
    f.write(8000, Buffer.from('after'));
    expect(f.read(7998, 9)).toEqual(Buffer.from('\0\0after\0\0'));
    // Another handle on the same path sees the same overlay.
    const g = overlay.openSync(file, { sizeBytes: 16_384, create: false, readOnly: false });
    expect(g.read(8000, 5).toString()).toBe('after');
    f.close();
    g.close();
    expect(fs.readFileSync(file)).toEqual(bytes);
  });

  it('makes, lists, deletes and writes small files only in memory', async () => {
    const { dir, file, overlay } = setUp();
    overlay.mkdir(path.join(dir, 'sub', 'deeper'));
    const made = await overlay.open(path.join(dir, 'sub', 'deeper', 'new'),
      { sizeBytes: 8192, create: true, readOnly: false });
    made.write(10, Buffer.from('hi'));
    expect(made.read(8, 6)).toEqual(Buffer.from('\0\0hi\0\0'));
    expect(overlay.exists(path.join(dir, 'sub', 'deeper', 'new'))).toBe(true);
    expect(overlay.fileSize(path.join(dir, 'sub', 'deeper', 'new'))).toBe(8192);
    expect(overlay.readdir(path.join(dir, 'sub', 'deeper'))).toEqual(['new']);
    overlay.writeFileAtomic(path.join(dir, 'config.json'), Buffer.from('{}'));
    await overlay.writeFileAtomicAsync(path.join(dir, 'other.json'), Buffer.from('[]'));
    expect(overlay.readFile(path.join(dir, 'config.json'))?.toString()).toBe('{}');
    expect(overlay.readdir(dir).sort()).toEqual(['config.json', 'data', 'other.json', 'sub']);
    overlay.unlink(file);
    expect(overlay.exists(file)).toBe(false);
    expect(overlay.readFile(file)).toBeNull();
    expect(overlay.readdir(dir)).not.toContain('data');
    expect(() => overlay.openSync(file, { sizeBytes: 10, create: false, readOnly: false }))
      .toThrow(/deleted/);
    expect(() => overlay.openSync(path.join(dir, 'missing'),
      { sizeBytes: 10, create: false, readOnly: false })).toThrow();
    // The disk holds what it held.
    expect(fs.readdirSync(dir)).toEqual(['data']);
    expect(fs.statSync(file).size).toBe(10_000);
  });
});
