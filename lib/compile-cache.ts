/**
 * Loads the package's CommonJS bundles (`npm run build` makes them: dist/core.cjs behind
 * `pocketmq`, `pocketmq/storage` and `pocketmq/internal`, dist/cli/cli.cjs behind the `pocketmq`
 * command) with a V8 code cache, so a short-lived process does not compile the library again.
 *
 * Without a cache V8 parses the whole bundle at import and compiles each function the first time
 * it runs: about half of a CLI run's or an app's first open, send and close. With one, it reads
 * the bytecode that an earlier process compiled. Node 20 has no compile cache of its own for
 * ES modules (`module.enableCompileCache` came with Node 22), hence a `vm.Script` here.
 *
 * The cache:
 * - is a file per bundle, Node build and architecture, named by the bundle's content hash (from
 *   the build), size and modification time, so an edited or replaced bundle never meets bytecode
 *   compiled from other source. V8 itself refuses a cache from another V8 version or other flags.
 * - lives in `.cache/` next to the bundle by default: written with the same rights as the code
 *   it caches, so it adds nothing that someone who can change the package could not do anyway.
 *   `POCKETMQ_COMPILE_CACHE=<dir>` puts it elsewhere; `POCKETMQ_COMPILE_CACHE=off` (or `0`,
 *   `false`, or `NODE_DISABLE_COMPILE_CACHE=1`) turns it off.
 * - holds the functions the process that wrote it had run, and says how far that process got,
 *   in its name: `.partial.cache` (it only imported: a script, `--help`), `.opened.cache` (it
 *   opened a store and sent nothing: a command that only reads) or `.cache`, full (it sent: the
 *   open, sends and close included). A process that gets further than the cache it found writes
 *   its own, which replaces the other; a full one is never replaced. A cache written by a
 *   process that only opened, taken for full, left every later process to compile the send path
 *   again (1 ms more per first send). Opens and first records are told on the
 *   `STORE_OPENED_CHANNEL` and `STORE_WRITTEN_CHANNEL` diagnostics channels (channels.ts).
 * - is written at the process's exit, or `limits.compileCacheWriteMs` after the import, the
 *   first open or the first send, whichever comes first; to a temporary file renamed into place:
 *   concurrent processes each see a whole file or none. A full cache found means nothing more to
 *   write.
 * - is best effort: a directory that cannot be written (a read-only install, an asar archive)
 *   only means no cache. `NODE_DEBUG=pocketmq` prints what happened.
 *
 * A bundle is run as Node runs a CommonJS module (exports, require, module, __filename,
 * __dirname), plus `import.meta.url` of the bundle, which the build turns into a parameter, and
 * once per thread: the entry points that share a bundle get the same exports.
 *
 * The build bundles this module alone as dist/compile-cache.mjs, which the entry points import:
 * one ES module to load, where requiring a CommonJS one costs the resolver's walk of the
 * directories and the package's package.json first (0.45 ms more here).
 */
import type * as Buffers from 'node:buffer';
import type * as DiagnosticsChannel from 'node:diagnostics_channel';
import type * as Fs from 'node:fs';
import { createRequire } from 'node:module';
import type * as Path from 'node:path';
import type * as Url from 'node:url';
import type * as Util from 'node:util';
import type * as Vm from 'node:vm';
import { STORE_OPENED_CHANNEL, STORE_WRITTEN_CHANNEL } from './channels.js';
import { limits } from './limits.js';

// Node's modules through `require`: an ES module that imports them gets a facade of each one's
// exports, made at load (about 1 ms for these seven).
const require = createRequire(import.meta.url);
const { isAscii } = require('node:buffer') as typeof Buffers;
const diagnostics_channel = require('node:diagnostics_channel') as typeof DiagnosticsChannel;
const fs = require('node:fs') as typeof Fs;
const path = require('node:path') as typeof Path;
const { fileURLToPath } = require('node:url') as typeof Url;
const { debuglog } = require('node:util') as typeof Util;
const vm = require('node:vm') as typeof Vm;

const debug = debuglog('pocketmq');

/** The parameters a bundle's code sees, in the order `loadBundle` passes them. */
const PARAMETERS = 'exports, require, module, __filename, __dirname, __importMetaUrl';
/** Values of POCKETMQ_COMPILE_CACHE that turn the cache off. */
const OFF = new Set(['', '0', 'off', 'false', 'no']);
const CACHE_DIR_NAME = '.cache';
/** How far a cache's writer got (see the module's comment), and its file name's ending. */
const enum Level { Imported = 0, Opened = 1, Full = 2 }
const SUFFIXES = ['.partial.cache', '.opened.cache', '.cache'] as const;

/** Where a bundle's caches go: one file per level, and their names' common start. */
interface Place {
  /** By Level. */
  readonly files: readonly [string, string, string];
  /** The same bundle's caches for this Node start so (for removing an earlier build's). */
  readonly prefix: string;
}

/** A bundle loaded without a full cache: one may still be written. */
interface Pending extends Place {
  readonly script: Vm.Script;
  /** The level of the cache read or written by this process, -1 for none. */
  done: number;
}

const pending: Pending[] = [];
/** Exports of the bundles run in this thread, by file: each runs once. */
const loaded = new Map<string, Record<string, unknown>>();
let writeTimer: NodeJS.Timeout | null = null;
/** How far this process got (in any copy of pocketmq). */
let reached = Level.Imported;

/**
 * Runs the CommonJS bundle at `url` and returns its exports, compiled from the cache when one
 * matches. `buildHash` is the bundle's content hash, written into the entry point by the build.
 */
export function loadBundle(url: URL, buildHash: string): Record<string, unknown> {
  const filename = fileURLToPath(url);
  const known = loaded.get(filename);
  if (known !== undefined) return known;
  // The key's size and time from the file that was read (one descriptor: no replacement between).
  const fd = fs.openSync(filename, 'r');
  let source: string;
  let stat: Fs.Stats;
  let scratch: Buffer;
  try {
    stat = fs.fstatSync(fd);
    scratch = Buffer.allocUnsafeSlow(HEAD.length + stat.size + TAIL.length);
    source = readSource(fd, stat.size, scratch);
  } finally {
    fs.closeSync(fd);
  }
  const place = cachePlace(filename, stat, buildHash);
  let level: number = Level.Full;
  let cachedData: Buffer | undefined;
  for (; place !== null && level >= Level.Imported; level--) {
    cachedData = readCache(place.files[level]!, scratch);
    if (cachedData !== undefined) break;
  }
  const script = new vm.Script(source, { filename, cachedData });
  if (place !== null) {
    const file = place.files[level];
    const usable = cachedData !== undefined && !script.cachedDataRejected;
    if (usable) debug('compile cache: %s used', file);
    if (cachedData !== undefined && !usable) {
      debug('compile cache: %s rejected by V8', file);
      removeQuietly(file!);
    }
    if (!usable || level !== Level.Full) track({ ...place, script, done: usable ? level : -1 });
  }
  const run = script.runInThisContext() as (...args: unknown[]) => void;
  const module = { exports: {} as Record<string, unknown> };
  run.call(module.exports, module.exports, createRequire(filename), module, filename,
    path.dirname(filename), url.href);
  // After the run: a bundle may replace module.exports, as esbuild's do.
  loaded.set(filename, module.exports);
  return module.exports;
}

/** The cache files for this bundle and this Node, or null when the cache is off. */
function cachePlace(filename: string, stat: Fs.Stats, buildHash: string): Place | null {
  const setting = process.env.POCKETMQ_COMPILE_CACHE;
  const nodeOff = process.env.NODE_DISABLE_COMPILE_CACHE;
  if ((setting !== undefined && OFF.has(setting.trim().toLowerCase())) ||
    (nodeOff !== undefined && nodeOff !== '' && nodeOff !== '0')) {
    return null;
  }
  const dir = setting === undefined ? path.join(path.dirname(filename), CACHE_DIR_NAME)
    : path.resolve(setting);
  const prefix = path.join(dir, `${path.basename(filename)}-${process.arch}-v8-` +
    `${process.versions.v8}-`);
  const key = `${prefix}${buildHash.slice(0, 16)}-${stat.size}-${Math.trunc(stat.mtimeMs)}`;
  return { files: [`${key}${SUFFIXES[0]}`, `${key}${SUFFIXES[1]}`, `${key}${SUFFIXES[2]}`],
    prefix };
}

/** What the bundle's text is wrapped in: a function of CommonJS's arguments, as Node's loader. */
const HEAD = `(function (${PARAMETERS}) {`;
const TAIL = '\n})';

/**
 * The bundle's text in its function (HEAD, the file, TAIL) as one string, read into `bytes`
 * (that long) and decoded once: wrapping the file's string in a template made V8 flatten a
 * second copy at compile, 1.3 MB of young large objects for a 660 KB bundle, a scavenge and a
 * few hundred page faults more in every process. esbuild writes ASCII (it escapes the rest),
 * which reads as Latin-1 a third faster than through the UTF-8 decoder (0.45 ms of a 660 KB
 * bundle here); anything else is decoded as UTF-8. The string is a copy: `bytes` is free again.
 */
function readSource(fd: number, size: number, bytes: Buffer): string {
  bytes.write(HEAD, 0, 'latin1');
  const end = HEAD.length + readInto(fd, bytes, HEAD.length, size);
  bytes.write(TAIL, end, 'latin1');
  const text = bytes.subarray(0, end + TAIL.length);
  return isAscii(text) ? text.toString('latin1') : text.toString('utf8');
}

/** Read up to `size` bytes from the start of `fd` into `buf` at `at`; the bytes read. */
function readInto(fd: number, buf: Buffer, at: number, size: number): number {
  let length = 0;
  while (length < size) {
    const n = fs.readSync(fd, buf, at + length, size - length, length);
    if (n === 0) break;
    length += n;
  }
  return length;
}

/**
 * A cache file's bytes, read into `scratch` when they fit (the buffer the bundle's text was read
 * into: V8 reads the cache only while it compiles). A new buffer of that size is as many page
 * faults as its pages on first touch, 100-odd for a 430 KB cache, at up to 11 µs each on a
 * virtual machine: a millisecond of a short process's start.
 */
function readCache(file: string, scratch: Buffer): Buffer | undefined {
  let fd = -1;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    if (size > scratch.length) return fs.readFileSync(fd);
    return scratch.subarray(0, readInto(fd, scratch, 0, size));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      debug('compile cache: cannot read %s: %s', file, String(err));
    }
    return undefined;
  } finally {
    if (fd !== -1) fs.closeSync(fd);
  }
}

function track(bundle: Pending): void {
  pending.push(bundle);
  if (pending.length > 1) return;
  process.once('exit', writePendingCaches);
  diagnostics_channel.subscribe(STORE_OPENED_CHANNEL, onStoreOpened);
  diagnostics_channel.subscribe(STORE_WRITTEN_CHANNEL, onStoreWritten);
  startTimer();
}

function startTimer(): void {
  if (writeTimer !== null) clearTimeout(writeTimer);
  writeTimer = setTimeout(writePendingCaches, limits.compileCacheWriteMs);
  writeTimer.unref();
}

function onStoreOpened(): void {
  reach(Level.Opened);
}

function onStoreWritten(): void {
  reach(Level.Full);
}

function reach(level: Level): void {
  if (reached >= level) return;
  reached = level;
  // Let the store's first sends and reads run before their code is cached.
  if (pending.length > 0) startTimer();
}

/**
 * Writes the caches still to write, now: where this process got further than the cache it found
 * (or wrote). Called at exit or after a delay (see the module's comment); safe to call again.
 */
export function writePendingCaches(): void {
  if (writeTimer !== null) {
    clearTimeout(writeTimer);
    writeTimer = null;
  }
  for (let i = pending.length - 1; i >= 0; i--) {
    const bundle = pending[i]!;
    if (reached > bundle.done) {
      writeCache(bundle.script, bundle.files[reached], bundle.prefix);
      bundle.done = reached;
    }
    if (bundle.done === Level.Full) pending.splice(i, 1);
  }
  if (pending.length === 0) {
    process.removeListener('exit', writePendingCaches);
    diagnostics_channel.unsubscribe(STORE_OPENED_CHANNEL, onStoreOpened);
    diagnostics_channel.unsubscribe(STORE_WRITTEN_CHANNEL, onStoreWritten);
  }
}

function writeCache(script: Vm.Script, file: string, prefix: string): void {
  const tmp = `${file}.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`;
  try {
    const data = script.createCachedData();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
    debug('compile cache: %s written (%d bytes)', file, data.length);
  } catch (err) {
    debug('compile cache: cannot write %s: %s', file, String(err));
    removeQuietly(tmp);
    return;
  }
  removeOthers(file, prefix);
}

/**
 * The same bundle's caches for this Node but `file`: an earlier build's, and this build's of a
 * lower level (one of a higher level, which another process wrote, stays).
 */
function removeOthers(file: string, prefix: string): void {
  const dir = path.dirname(file);
  const start = path.basename(prefix);
  const [key, level] = splitName(path.basename(file));
  try {
    for (const name of fs.readdirSync(dir)) {
      if (!name.startsWith(start) || !name.endsWith(SUFFIXES[Level.Full])) continue;
      const [otherKey, otherLevel] = splitName(name);
      if (otherKey === key && otherLevel >= level) continue;
      removeQuietly(path.join(dir, name));
    }
  } catch (err) {
    debug('compile cache: cannot tidy %s: %s', dir, String(err));
  }
}

/** A cache file's name as its build's key and its level. */
function splitName(name: string): [string, Level] {
  for (const level of [Level.Imported, Level.Opened]) {
    if (name.endsWith(SUFFIXES[level])) return [name.slice(0, -SUFFIXES[level].length), level];
  }
  return [name.slice(0, -SUFFIXES[Level.Full].length), Level.Full];
}

function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // Best effort: a file that cannot be removed is only disk.
  }
}
