/**
 * The compile cache's mechanics (lib/compile-cache.ts) on small bundles written by each test:
 * how a bundle runs, when a cache is written (partial, opened once a store opened, full once one
 * took records), found, refused or replaced, and that nothing it meets on disk makes a load
 * fail. Each test gets a fresh instance of the module, as a fresh process would. The package's
 * own bundles through it: compile-cache-package.test.ts.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { STORE_OPENED_CHANNEL, STORE_WRITTEN_CHANNEL } from '../lib/channels.js';
import type * as CompileCacheModule from '../lib/compile-cache.js';
import { useTempDirs } from './support/backends.js';

type CompileCache = typeof CompileCacheModule;

const tmp = useTempDirs('pmq-ccache-');
const HASH = 'a'.repeat(64);

let cacheDir: string;
let saved: { cache?: string; nodeOff?: string };
let loadBundle: CompileCache['loadBundle'];
let writePendingCaches: CompileCache['writePendingCaches'];
/** Every instance a test made, to finish after it (no write left for a timer or the exit). */
const instances: CompileCache[] = [];

/** A fresh instance of the module: a new process, as far as it can tell. */
async function freshModule(): Promise<void> {
  vi.resetModules();
  const instance = await import('../lib/compile-cache.js');
  instances.push(instance);
  ({ loadBundle, writePendingCaches } = instance);
}

/** What a store publishes once it is open. */
function storeOpens(): void {
  diagnostics_channel.channel(STORE_OPENED_CHANNEL).publish({ dir: 'test', readOnly: false });
}

/** What a store publishes once it took its first records. */
function storeWrites(): void {
  diagnostics_channel.channel(STORE_WRITTEN_CHANNEL).publish(undefined);
}

beforeEach(async () => {
  await freshModule();
  saved = { cache: process.env.POCKETMQ_COMPILE_CACHE,
    nodeOff: process.env.NODE_DISABLE_COMPILE_CACHE };
  delete process.env.NODE_DISABLE_COMPILE_CACHE;
  cacheDir = path.join(tmp.make(), 'cache');
  process.env.POCKETMQ_COMPILE_CACHE = cacheDir;
});

afterEach(() => {
  storeWrites();
  for (const instance of instances.splice(0)) instance.writePendingCaches();
  for (const [name, value] of [['POCKETMQ_COMPILE_CACHE', saved.cache],
    ['NODE_DISABLE_COMPILE_CACHE', saved.nodeOff]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

/** A bundle that counts its runs on globalThis and exports what its scope gives it. */
const SOURCE = `
globalThis.__ccacheRuns = (globalThis.__ccacheRuns ?? 0) + 1;
function twice(x) { return 2 * x; }
exports.twice = twice;
exports.scope = { filename: __filename, dirname: __dirname, meta: __importMetaUrl,
  requires: typeof require('node:path').join };
module.exports.same = module.exports === exports;
module.exports = Object.assign({}, module.exports, { replaced: true });
`;

/** Writes `source` as `<dir>/bundle.cjs` with a fixed modification time; returns its URL. */
function bundleIn(dir: string, source = SOURCE, mtime = new Date('2026-01-02T03:04:05Z')): URL {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'bundle.cjs');
  fs.writeFileSync(file, source);
  fs.utimesSync(file, mtime, mtime);
  return pathToFileURL(file);
}

function cacheFiles(): string[] {
  return fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir).sort() : [];
}

/**
 * The cache `name` was used by this process's load: removed now, it is not written again
 * (a load that compiled afresh, or whose cache V8 refused, writes it at the next write).
 */
function expectUsed(name: string): void {
  fs.rmSync(path.join(cacheDir, name));
  storeWrites();
  writePendingCaches();
  expect(cacheFiles()).toEqual([]);
}

/** Loads `url`, writes to a store, writes what is pending: the cache files then. */
function writeFull(url: URL, hash = HASH): string[] {
  loadBundle(url, hash);
  storeWrites();
  writePendingCaches();
  return cacheFiles();
}

describe('loadBundle', () => {
  it('runs a bundle as a CommonJS module once per file, with import.meta.url', () => {
    const runs = (): number => (globalThis as { __ccacheRuns?: number }).__ccacheRuns ?? 0;
    const url = bundleIn(path.join(tmp.make(), 'a'));
    const before = runs();
    const first = loadBundle(url, HASH);
    expect(loadBundle(url, HASH)).toBe(first);
    expect(runs()).toBe(before + 1);
    expect((first.twice as (x: number) => number)(21)).toBe(42);
    const file = url.pathname;
    expect(first.scope).toEqual({ filename: file, dirname: path.dirname(file), meta: url.href,
      requires: 'function' });
    expect(first.same).toBe(true);
    // What the bundle left in module.exports, as an esbuild bundle replaces it.
    expect(first.replaced).toBe(true);
  });

  it('reads a bundle in UTF-8 when it is not ASCII, and one that ends in a line comment', () => {
    const text = 'z\u00fcrich \u2192 \u6771\u4eac';
    const url = bundleIn(path.join(tmp.make(), 'u'),
      `exports.text = ${JSON.stringify(text)}.normalize();\n// the end, no newline`);
    expect(loadBundle(url, HASH).text).toBe(text);
  });

  it('writes a partial cache before a store took records, and a full one after', () => {
    loadBundle(bundleIn(path.join(tmp.make(), 'a')), HASH);
    expect(cacheFiles()).toEqual([]);
    writePendingCaches();
    expect(cacheFiles()).toEqual([expect.stringMatching(/^bundle\.cjs-.*\.partial\.cache$/)]);
    storeWrites();
    writePendingCaches();
    const [full] = cacheFiles();
    expect(cacheFiles()).toHaveLength(1);
    expect(full).toMatch(/^bundle\.cjs-.*[^l]\.cache$/);
    expect(full).not.toMatch(/partial/);
    // Once: nothing is left to write.
    fs.rmSync(path.join(cacheDir, full!));
    writePendingCaches();
    expect(cacheFiles()).toEqual([]);
  });

  it('a process that opens a store and sends nothing writes an opened cache, which a later ' +
    'one that sends replaces; one that only imports leaves it alone', async () => {
    const root = tmp.make();
    loadBundle(bundleIn(path.join(root, 'a')), HASH);
    storeOpens();
    writePendingCaches();
    const [opened] = cacheFiles();
    expect(opened).toMatch(/^bundle\.cjs-.*\.opened\.cache$/);
    // Only imports: uses it, writes no partial one over it.
    await freshModule();
    loadBundle(bundleIn(path.join(root, 'b')), HASH);
    writePendingCaches();
    expect(cacheFiles()).toEqual([opened]);
    // A partial cache written elsewhere meanwhile does not hide the opened one.
    fs.writeFileSync(path.join(cacheDir, opened!.replace('.opened.cache', '.partial.cache')), 'x');
    await freshModule();
    loadBundle(bundleIn(path.join(root, 'c')), HASH);
    storeOpens();
    writePendingCaches();
    expect(cacheFiles()).toHaveLength(2);
    // Sends: the full cache replaces both.
    storeWrites();
    writePendingCaches();
    expect(cacheFiles()).toEqual([opened!.replace('.opened.cache', '.cache')]);
  });

  it('a later process uses a full cache and writes nothing', async () => {
    const root = tmp.make();
    const [name] = writeFull(bundleIn(path.join(root, 'a')));
    // The same bundle elsewhere (same name, content and time), in a new process, finds the
    // cache: nothing is left to write.
    await freshModule();
    loadBundle(bundleIn(path.join(root, 'b')), HASH);
    expectUsed(name!);
  });

  it('uses a cache longer than the bundle, and one that fits in the buffer the text was read in',
    async () => {
    const root = tmp.make();
    // A long comment: the text outgrows its bytecode, so the cache is read into the text's
    // buffer; the bare bundle is shorter than its cache, which gets a buffer of its own.
    const long = `${SOURCE}/*${' '.repeat(64 * 1024)}*/\n`;
    for (const [name, source] of [['short', SOURCE], ['long', long]] as const) {
      await freshModule();
      const [cache] = writeFull(bundleIn(path.join(root, name, 'a'), source));
      const cacheBytes = fs.statSync(path.join(cacheDir, cache!)).size;
      expect(cacheBytes > source.length).toBe(name === 'short');
      await freshModule();
      const loaded = loadBundle(bundleIn(path.join(root, name, 'b'), source), HASH);
      expect((loaded.twice as (x: number) => number)(5)).toBe(10);
      expectUsed(cache!);
    }
  });

  it('a later process uses a partial cache, and replaces it once a store took records',
    async () => {
    const root = tmp.make();
    loadBundle(bundleIn(path.join(root, 'a')), HASH);
    writePendingCaches();
    const [partial] = cacheFiles();
    const inode = fs.statSync(path.join(cacheDir, partial!)).ino;
    await freshModule();
    loadBundle(bundleIn(path.join(root, 'b')), HASH);
    writePendingCaches();
    // Used as it was: the same file (a rewrite renames a new one into place).
    expect(cacheFiles()).toEqual([partial]);
    expect(fs.statSync(path.join(cacheDir, partial!)).ino).toBe(inode);
    storeWrites();
    writePendingCaches();
    expect(cacheFiles()).toEqual([partial!.replace('.partial.cache', '.cache')]);
  });

  it('refuses a damaged cache, removes it, runs the bundle and writes a good one', async () => {
    const root = tmp.make();
    const [name] = writeFull(bundleIn(path.join(root, 'a')));
    const file = path.join(cacheDir, name!);
    const good = fs.readFileSync(file);
    for (const [i, damaged] of [Buffer.alloc(good.length, 0x5a), good.subarray(0, 40)]
      .entries()) {
      fs.writeFileSync(file, damaged);
      await freshModule();
      const loaded = loadBundle(bundleIn(path.join(root, `damaged-${i}`)), HASH);
      expect((loaded.twice as (x: number) => number)(2)).toBe(4);
      expect(fs.existsSync(file)).toBe(false);
      storeWrites();
      writePendingCaches();
      expect(fs.readFileSync(file).equals(damaged)).toBe(false);
      expect(fs.readFileSync(file).length).toBeGreaterThan(40);
    }
  });

  it('keys the cache by the bundle: another build or an edited file never meets it', async () => {
    const root = tmp.make();
    const [old] = writeFull(bundleIn(path.join(root, 'a')));
    // Same name and size, another time: an edited file. The earlier build's cache goes.
    await freshModule();
    const edited = writeFull(bundleIn(path.join(root, 'b'), SOURCE,
      new Date('2026-02-03T04:05:06Z')));
    expect(edited).toHaveLength(1);
    expect(edited[0]).not.toBe(old);
    // Another build hash.
    await freshModule();
    const other = writeFull(bundleIn(path.join(root, 'c')), 'b'.repeat(64));
    expect(other).toHaveLength(1);
    expect(other[0]).not.toBe(edited[0]);
  });

  it('writes nothing when turned off', () => {
    const root = tmp.make();
    for (const [i, [name, value]] of [['POCKETMQ_COMPILE_CACHE', 'off'],
      ['POCKETMQ_COMPILE_CACHE', '0'], ['NODE_DISABLE_COMPILE_CACHE', '1']].entries()) {
      process.env.POCKETMQ_COMPILE_CACHE = cacheDir;
      process.env[name!] = value;
      loadBundle(bundleIn(path.join(root, `off-${i}`)), HASH);
      writePendingCaches();
      delete process.env.NODE_DISABLE_COMPILE_CACHE;
    }
    expect(cacheFiles()).toEqual([]);
    expect(fs.existsSync(path.join(root, 'off-0', '.cache'))).toBe(false);
  });

  it('keeps it next to the bundle by default', () => {
    delete process.env.POCKETMQ_COMPILE_CACHE;
    const dir = path.join(tmp.make(), 'a');
    loadBundle(bundleIn(dir), HASH);
    writePendingCaches();
    expect(fs.readdirSync(path.join(dir, '.cache'))).toHaveLength(1);
  });

  it('loads without a cache where none can be written or read', () => {
    const root = tmp.make();
    // A file where the directory would be: mkdir and reads fail (as root too).
    fs.writeFileSync(path.join(root, 'file'), 'x');
    process.env.POCKETMQ_COMPILE_CACHE = path.join(root, 'file', 'cache');
    const loaded = loadBundle(bundleIn(path.join(root, 'a')), HASH);
    expect(() => writePendingCaches()).not.toThrow();
    expect((loaded.twice as (x: number) => number)(3)).toBe(6);
    expect(fs.readdirSync(root).sort()).toEqual(['a', 'file']);
  });
});
