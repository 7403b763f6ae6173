import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi, type Mock } from 'vitest';
import { FileBackend } from '../lib/store/io/file-backend.js';
import { MmapBackend } from '../lib/store/io/mmap-backend.js';
import { loadNative, type NativeAddons } from '../lib/store/io/native.js';
import type { Logger } from '../lib/store/options.js';
import { chooseBackend } from '../lib/store/store-io.js';
import { ensureBuilt } from './support/dist.js';
import { SimBackend } from './support/sim-backend.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function spyLogger(): Logger & { warn: Mock<(message: string) => void>;
  error: Mock<(message: string) => void>; } {
  return { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() };
}

describe('chooseBackend', () => {
  const missing: NativeAddons = { mmap: null, flock: null, problems: ['x'] };

  it('falls back to the file backend, warning once, when the mmap addon is missing', () => {
    const logger = spyLogger();
    const backend = chooseBackend('mmap', logger, missing);
    expect(backend).toBeInstanceOf(FileBackend);
    expect(backend.kind).toBe('file');
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(String(logger.warn.mock.calls[0]![0])).toContain('x');
    expect(logger.error).not.toHaveBeenCalled();
  });

  it('returns the mmap backend when the addon is present, silently', () => {
    const logger = spyLogger();
    const native = loadNative();
    expect(native.mmap).not.toBeNull();
    const backend = chooseBackend('mmap', logger, native);
    expect(backend).toBeInstanceOf(MmapBackend);
    expect(backend.kind).toBe('mmap');
    expect(logger.warn).not.toHaveBeenCalled();
  });

  it('gives the file backend when asked, and a backend object as it is', () => {
    const logger = spyLogger();
    expect(chooseBackend('file', logger, missing).kind).toBe('file');
    const sim = new SimBackend();
    expect(chooseBackend(sim, logger, missing)).toBe(sim);
    expect(logger.warn).not.toHaveBeenCalled();
  });

  it('reports a failed addon load as a problem instead of throwing', () => {
    const native = loadNative((id) => {
      throw new Error(`cannot find module ${id}\nstack`);
    });
    expect(native.mmap).toBeNull();
    expect(native.flock).toBeNull();
    expect(native.problems).toEqual(['@riaskov/mmap-io: cannot find module @riaskov/mmap-io',
      'fs-ext: cannot find module fs-ext']);
    const logger = spyLogger();
    expect(chooseBackend('mmap', logger, native).kind).toBe('file');
    expect(logger.warn).toHaveBeenCalledTimes(1);
  });
});

describe('loadNative in a process started with arguments of its own', () => {
  it('loads the mmap addon when argv holds --dir (node-pre-gyp would read it as its own)',
    () => {
      ensureBuilt();
      // A fresh process: loadNative caches its first answer.
      const script = "import('./dist/store/io/native.js').then((m) => " +
        'process.stdout.write(JSON.stringify(m.loadNative().problems)))';
      const out = execFileSync(process.execPath,
        ['--input-type=module', '-e', script, '--', 'verify', '--dir', '/nonexistent/data', '-C',
          '/elsewhere'], { cwd: root, encoding: 'utf8' });
      expect(JSON.parse(out)).toEqual([]);
    });
});

describe('disk usage', () => {
  it('counts as df does: blocks reserved for root are neither used nor free', () => {
    const usage = new FileBackend().diskUsage(root);
    const s = fs.statfsSync(root);
    expect(usage.freeBytes).toBe(s.bavail * s.bsize);
    expect(usage.totalBytes - usage.freeBytes).toBe((s.blocks - s.bfree) * s.bsize);
  });
});
