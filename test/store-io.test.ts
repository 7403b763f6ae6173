import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi, type Mock } from 'vitest';
import { FileBackend } from '../lib/store/io/file-backend.js';
import { MmapBackend } from '../lib/store/io/mmap-backend.js';
import {
  FLOCK_IN_WORKER_PROBLEM, loadNative, type NativeAddons,
} from '../lib/store/io/native.js';
import type { Logger } from '../lib/store/options.js';
import { chooseBackend, isElectron } from '../lib/store/store-io.js';
import { ensureBuilt } from './support/dist.js';
import { SimBackend } from './support/sim-backend.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function spyLogger(): Logger & { warn: Mock<(message: string) => void>;
  info: Mock<(message: string) => void>; error: Mock<(message: string) => void>; } {
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

  it('loads both binaries from node_modules, beside the packages\' own entries', () => {
    const native = loadNative();
    expect(native.problems).toEqual([]);
    expect(native.flock).not.toBeNull();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-native-'));
    const file = path.join(dir, 'lock');
    const first = fs.openSync(file, 'w');
    const second = fs.openSync(file, 'r');
    try {
      native.flock!.flockSync(first, 'exnb');
      // The package's own entry loads the binary again: it works, and sees the same lock.
      const fsExt = createRequire(import.meta.url)('fs-ext') as
        { flockSync(fd: number, flags: string): void };
      expect(() => fsExt.flockSync(second, 'exnb')).toThrow(/EAGAIN|EWOULDBLOCK/);
      native.flock!.flockSync(first, 'un');
      fsExt.flockSync(second, 'exnb');
    } finally {
      fs.closeSync(first);
      fs.closeSync(second);
      fs.rmSync(dir, { recursive: true, force: true });
    }
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

describe('the default backend', () => {
  const native = loadNative();

  it("'auto' is mmap when the addon loads, and plain files under Electron, said once", () => {
    const logger = spyLogger();
    expect(chooseBackend('auto', logger, native, false).kind).toBe('mmap');
    expect(logger.info).not.toHaveBeenCalled();
    expect(chooseBackend('auto', logger, native, true).kind).toBe('file');
    expect(logger.info).toHaveBeenCalledTimes(1);
    expect(String(logger.info.mock.calls[0]![0])).toMatch(/Electron.*backend: 'mmap'/);
    expect(logger.warn).not.toHaveBeenCalled();
  });

  it("an explicit 'mmap' is kept under Electron", () => {
    const logger = spyLogger();
    expect(chooseBackend('mmap', logger, native, true).kind).toBe('mmap');
    expect(logger.info).not.toHaveBeenCalled();
  });

  it('Electron is told by process.versions.electron', () => {
    expect(isElectron({ ...process.versions, electron: '33.2.0' })).toBe(true);
    expect(isElectron(process.versions)).toBe(false);
  });

  it('a store opened where process.versions.electron is set runs on plain files by default',
    () => {
      ensureBuilt();
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-electron-'));
      try {
        // The addons load first, as in an app that rebuilt them for Electron (node-pre-gyp
        // looks for an Electron build once process.versions.electron is set).
        const script = `
const { loadNative } = await import('./dist/store/io/native.js');
if (loadNative().mmap === null) throw new Error('mmap addon missing');
Object.defineProperty(process.versions, 'electron', { value: '33.2.0', enumerable: true });
const { MessageStore } = await import('./dist/index.js');
const kinds = [];
for (const options of [{}, { backend: 'mmap' }]) {
  const store = await MessageStore.open(${JSON.stringify(dir)}, options);
  await store.createProducer({ group: 'g' }).send({ topic: 't', body: 'e' });
  kinds.push((await store.stats()).backend);
  await store.close();
}
process.stdout.write(JSON.stringify(kinds));`;
        const out = execFileSync(process.execPath, ['--input-type=module', '-e', script],
          { cwd: root, encoding: 'utf8' });
        expect(JSON.parse(out)).toEqual(['file', 'mmap']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
});

describe('the addons\' binaries', () => {
  it('are loaded from node_modules without the module resolver, once per process', () => {
    ensureBuilt();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-dlopen-'));
    try {
      // The package's bundle, as an application loads it: no binary goes through require.
      const script = `
import { createRequire } from 'node:module';
const { MessageStore } = await import('./dist/index.js');
const store = await MessageStore.open(${JSON.stringify(dir)});
const backend = (await store.stats()).backend;
await store.close();
const required = Object.keys(createRequire(import.meta.url).cache)
  .filter((f) => f.endsWith('.node'));
process.stdout.write(JSON.stringify({ backend, required }));`;
      // No compile cache written: a process that only opens a store would leave one without
      // the send path for every later process.
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script],
        { cwd: root, encoding: 'utf8', env: { ...process.env, POCKETMQ_COMPILE_CACHE: 'off' } });
      expect(JSON.parse(out)).toEqual({ backend: 'mmap', required: [] });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('loadNative off the main thread', () => {
  it('never loads fs-ext (not context-aware: a second thread would abort the process)', () => {
    const loaded: string[] = [];
    const native = loadNative((id) => {
      loaded.push(id);
      return loadNative().mmap;
    }, false);
    expect(loaded).toEqual(['@riaskov/mmap-io']);
    expect(native.mmap).not.toBeNull();
    expect(native.flock).toBeNull();
    expect(native.problems).toEqual([FLOCK_IN_WORKER_PROBLEM]);
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

describe('loadNative in a fresh process', () => {
  it('loads the mmap binary itself, without node-pre-gyp (most of a cold open otherwise)', () => {
    ensureBuilt();
    const script = "import { createRequire } from 'node:module';" +
      "const m = await import('./dist/store/io/native.js'); const n = m.loadNative();" +
      "const cache = Object.keys(createRequire(import.meta.url).cache);" +
      'process.stdout.write(JSON.stringify({ mmap: n.mmap !== null, problems: n.problems,' +
      " preGyp: cache.some((k) => k.includes('node-pre-gyp')) }));";
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script],
      { cwd: root, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ mmap: true, problems: [], preGyp: false });
  });
});

describe('disk usage', () => {
  it('counts as df does: blocks reserved for root are neither used nor free', () => {
    // Other processes write to this disk too: take a reading that no write fell into (the
    // file system's counts equal just before and just after it).
    for (let tries = 1; ; tries++) {
      const before = fs.statfsSync(root);
      const usage = new FileBackend().diskUsage(root);
      const s = fs.statfsSync(root);
      const still = before.bavail === s.bavail && before.bfree === s.bfree;
      if (!still && tries < 50) continue;
      expect(still, 'the disk never stood still across three readings').toBe(true);
      expect(usage.freeBytes).toBe(s.bavail * s.bsize);
      expect(usage.totalBytes - usage.freeBytes).toBe((s.blocks - s.bfree) * s.bsize);
      return;
    }
  });
});
