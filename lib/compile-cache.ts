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
 * - is written once, when none was usable: at the process's exit or `limits.compileCacheWriteMs`
 *   after the import, whichever comes first, so it holds the functions the start-up ran. It is
 *   written to a temporary file and renamed into place: concurrent processes each see a whole
 *   file or none.
 * - is best effort: a directory that cannot be written (a read-only install, an asar archive)
 *   only means no cache. `NODE_DEBUG=pocketmq` prints what happened.
 *
 * A bundle is run as Node runs a CommonJS module (exports, require, module, __filename,
 * __dirname), plus `import.meta.url` of the bundle, which the build turns into a parameter, and
 * once per thread: the entry points that share a bundle get the same exports.
 *
 * The build also emits this module as CommonJS (dist/compile-cache.cjs), which the entry points
 * require: importing Node's modules from an ES module costs a millisecond or more each (Node
 * builds a facade of every export), requiring them costs next to nothing.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { debuglog } from 'node:util';
import vm from 'node:vm';
import { limits } from './limits.js';

const debug = debuglog('pocketmq');

/** The parameters a bundle's code sees, in the order `loadBundle` passes them. */
const PARAMETERS = 'exports, require, module, __filename, __dirname, __importMetaUrl';
/** Values of POCKETMQ_COMPILE_CACHE that turn the cache off. */
const OFF = new Set(['', '0', 'off', 'false', 'no']);
const CACHE_DIR_NAME = '.cache';
const SUFFIX = '.cache';

/** A bundle whose cache is still to be written. */
interface PendingWrite {
  readonly script: vm.Script;
  readonly file: string;
  /** Start of the names of the same bundle's other caches for this Node (stale ones). */
  readonly prefix: string;
}

const pending: PendingWrite[] = [];
/** Exports of the bundles run in this thread, by file: each runs once. */
const loaded = new Map<string, Record<string, unknown>>();
let writeTimer: NodeJS.Timeout | null = null;

/**
 * Runs the CommonJS bundle at `url` and returns its exports, compiled from the cache when one
 * matches. `buildHash` is the bundle's content hash, written into the entry point by the build.
 */
export function loadBundle(url: URL, buildHash: string): Record<string, unknown> {
  const filename = fileURLToPath(url);
  const known = loaded.get(filename);
  if (known !== undefined) return known;
  const source = fs.readFileSync(filename, 'utf8');
  const place = cachePlace(filename, buildHash);
  const cachedData = place === null ? undefined : readCache(place.file);
  const script = new vm.Script(`(function (${PARAMETERS}) {${source}\n})`,
    { filename, cachedData });
  if (place !== null) {
    if (cachedData !== undefined && !script.cachedDataRejected) {
      debug('compile cache: %s used', place.file);
    } else {
      if (cachedData !== undefined) debug('compile cache: %s rejected by V8', place.file);
      scheduleWrite({ script, ...place });
    }
  }
  const run = script.runInThisContext() as (...args: unknown[]) => void;
  const module = { exports: {} as Record<string, unknown> };
  run.call(module.exports, module.exports, createRequire(filename), module, filename,
    path.dirname(filename), url.href);
  // After the run: a bundle may replace module.exports, as esbuild's do.
  loaded.set(filename, module.exports);
  return module.exports;
}

/** The cache file for this bundle and this Node, or null when the cache is off. */
function cachePlace(filename: string, buildHash: string): { file: string; prefix: string } | null {
  const setting = process.env.POCKETMQ_COMPILE_CACHE;
  const nodeOff = process.env.NODE_DISABLE_COMPILE_CACHE;
  if ((setting !== undefined && OFF.has(setting.trim().toLowerCase())) ||
    (nodeOff !== undefined && nodeOff !== '' && nodeOff !== '0')) {
    return null;
  }
  const dir = setting === undefined ? path.join(path.dirname(filename), CACHE_DIR_NAME)
    : path.resolve(setting);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(filename);
  } catch {
    return null;
  }
  const prefix = `${path.basename(filename)}-${process.arch}-v8-${process.versions.v8}-`;
  const key = `${buildHash.slice(0, 16)}-${stat.size}-${Math.trunc(stat.mtimeMs)}`;
  return { file: path.join(dir, `${prefix}${key}${SUFFIX}`), prefix: path.join(dir, prefix) };
}

function readCache(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      debug('compile cache: cannot read %s: %s', file, String(err));
    }
    return undefined;
  }
}

function scheduleWrite(write: PendingWrite): void {
  pending.push(write);
  if (writeTimer !== null) return;
  process.once('exit', writePendingCaches);
  writeTimer = setTimeout(writePendingCaches, limits.compileCacheWriteMs);
  writeTimer.unref();
}

/**
 * Writes the caches of the bundles loaded without one, now: the bytecode of every function
 * compiled so far. Called at exit or after a delay (see the module's comment); safe to call
 * again.
 */
export function writePendingCaches(): void {
  if (writeTimer !== null) {
    clearTimeout(writeTimer);
    writeTimer = null;
    process.removeListener('exit', writePendingCaches);
  }
  for (const write of pending.splice(0)) writeCache(write);
}

function writeCache({ script, file, prefix }: PendingWrite): void {
  const tmp = `${file}.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`;
  try {
    const data = script.createCachedData();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
    debug('compile cache: %s written (%d bytes)', file, data.length);
  } catch (err) {
    debug('compile cache: cannot write %s: %s', file, String(err));
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // Nothing was written where nothing can be removed.
    }
    return;
  }
  removeStale(file, prefix);
}

/** The same bundle's caches for this Node under other keys: an earlier build's. */
function removeStale(file: string, prefix: string): void {
  const dir = path.dirname(file);
  const start = path.basename(prefix);
  try {
    for (const name of fs.readdirSync(dir)) {
      if (name.startsWith(start) && name.endsWith(SUFFIX) && name !== path.basename(file)) {
        fs.rmSync(path.join(dir, name), { force: true });
      }
    }
  } catch (err) {
    debug('compile cache: cannot tidy %s: %s', dir, String(err));
  }
}
