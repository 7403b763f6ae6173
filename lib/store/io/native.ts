/**
 * The one module that touches native addons (@riaskov/mmap-io for mmap, fs-ext for flock). Both
 * are optional dependencies: either may be missing or fail to load (no compiler on the user's
 * machine, `--ignore-scripts`, an Electron ABI mismatch, a bundle that dropped it). Callers then
 * run without it: the plain-file backend instead of mmap, the lock socket without the flock
 * layer (lock.ts). Nothing else in pocketmq imports an addon, so a bundler that drops them gets
 * the fallback, never a crash.
 *
 * Worker threads: @riaskov/mmap-io is context-aware (NAN_MODULE_WORKER_ENABLED) and loads in any
 * thread. fs-ext keeps V8 handles in C++ globals: loading it in a second thread aborts the whole
 * process (V8 "Check failed: node->IsInUse()"), so it is never loaded outside the main thread.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as WorkerThreads from 'node:worker_threads';
import { lazyBuiltin } from '../../builtins.js';

export interface MmapAddon {
  readonly PROT_READ: number;
  readonly PROT_WRITE: number;
  readonly MAP_SHARED: number;
  readonly MADV_SEQUENTIAL: number;
  readonly MADV_WILLNEED: number;
  readonly PAGESIZE: number;
  map(size: number, protection: number, flags: number, fd: number, offset?: number,
    advise?: number): Buffer;
  advise(buffer: Buffer, advise: number): void;
  sync(buffer: Buffer, offset: number, length: number, blocking: boolean): void;
}

export interface FlockAddon {
  flockSync(fd: number, flags: 'ex' | 'exnb' | 'sh' | 'shnb' | 'un'): void;
}

export interface NativeAddons {
  readonly mmap: MmapAddon | null;
  readonly flock: FlockAddon | null;
  /** Why an addon is missing, for the one log line that says so. */
  readonly problems: readonly string[];
}

export type AddonLoader = (id: string) => unknown;

/** This thread's answer (each worker thread has its own copy of this module). */
let cached: NativeAddons | undefined;

const workerThreads = lazyBuiltin<typeof WorkerThreads>('node:worker_threads');
let onMainThread: boolean | undefined;

/**
 * Is this the main thread? Node's main-thread bootstrap gives `process` a `_debugProcess`
 * method and a worker's deletes it, so its presence answers without loading
 * node:worker_threads, which brings Node's streams with it (about a millisecond of a
 * short-lived process's start, three on a slow machine). Where it is missing (a worker, or a
 * Node that stops adding it) node:worker_threads answers.
 */
export function isMainThread(): boolean {
  onMainThread ??= typeof (process as { _debugProcess?: unknown })._debugProcess === 'function' ||
    workerThreads().isMainThread;
  return onMainThread;
}

/** Why fs-ext is not loaded off the main thread, as `problems` says it. */
export const FLOCK_IN_WORKER_PROBLEM =
  'fs-ext: not loaded in a worker thread (the addon is not context-aware)';

/**
 * Load both addons once per thread; `load` is injectable so tests can simulate a failed build
 * (then nothing is cached). `mainThread` is for tests too.
 */
export function loadNative(load?: AddonLoader, mainThread = isMainThread()): NativeAddons {
  const ownThread = mainThread === isMainThread();
  if (load === undefined && cached !== undefined && ownThread) return cached;
  const req: AddonLoader = load ?? createRequire(import.meta.url);
  const problems: string[] = [];
  const attempt = <T>(id: string): T | null => {
    try {
      return req(id) as T;
    } catch (err) {
      problems.push(`${id}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      return null;
    }
  };
  let mmap = load === undefined ? mmapBinary(req) : null;
  if (mmap === null) {
    // @riaskov/mmap-io finds its binary through node-pre-gyp, which parses process.argv as its
    // own command line: an application run with `--dir <d>` (node-pre-gyp reads it as
    // --directory) sent it looking under <d>, and the store fell back to plain files. Hide the
    // arguments.
    const argv = process.argv;
    process.argv = argv.slice(0, 2);
    try {
      const mmapModule = attempt<MmapAddon & { default?: MmapAddon }>('@riaskov/mmap-io');
      mmap = mmapModule === null ? null : (mmapModule.default ?? mmapModule);
    } finally {
      process.argv = argv;
    }
  }
  const result: NativeAddons = {
    mmap,
    flock: !mainThread ? skipped(problems)
      : (load === undefined ? flockBinary(req) : null) ?? attempt<FlockAddon>('fs-ext'),
    problems,
  };
  if (load === undefined && ownThread) cached = result;
  return result;
}

/**
 * The mmap addon's binary itself, where node-pre-gyp puts it for this Node: the package's own
 * entry loads node-pre-gyp (and its logger) only to find that file, which was most of the time a
 * short-lived process spent opening a store. Null when it is not there (an Electron build, a
 * bundle): the package is loaded the usual way then. `sync` takes the package's argument order.
 */
function mmapBinary(req: AddonLoader): MmapAddon | null {
  const id = `@riaskov/mmap-io/build/binding/Release/node-v${process.versions.modules}-` +
    `${process.platform}-${process.arch}/mmap_io.node`;
  let raw: MmapAddon & { sync_lib_private__?: RawSync };
  try {
    raw = binary(req, id) as typeof raw;
  } catch {
    return null;
  }
  const rawSync = raw.sync_lib_private__;
  if (typeof raw.map !== 'function' || typeof rawSync !== 'function') return null;
  return {
    PROT_READ: raw.PROT_READ, PROT_WRITE: raw.PROT_WRITE, MAP_SHARED: raw.MAP_SHARED,
    MADV_SEQUENTIAL: raw.MADV_SEQUENTIAL, MADV_WILLNEED: raw.MADV_WILLNEED,
    PAGESIZE: raw.PAGESIZE, map: raw.map.bind(raw), advise: raw.advise.bind(raw),
    sync: (buffer, offset, length, blocking) => rawSync(buffer, offset, length, blocking, false),
  };
}

/**
 * fs-ext's binary, required without its JavaScript (which resolves and compiles one more file for
 * a function this builds from the binary's own `flock` and constants); null when the binary is not
 * where fs-ext's build puts it, and `loadNative` then requires the package.
 */
function flockBinary(req: AddonLoader): FlockAddon | null {
  let raw: { flock?: unknown; constants?: Record<string, unknown> };
  try {
    raw = binary(req, 'fs-ext/build/Release/fs_ext.node') as typeof raw;
  } catch {
    return null;
  }
  const flock = raw.flock;
  const c = raw.constants ?? {};
  const { LOCK_SH: sh, LOCK_EX: ex, LOCK_NB: nb, LOCK_UN: un } = c;
  if (typeof flock !== 'function' || typeof sh !== 'number' || typeof ex !== 'number' ||
    typeof nb !== 'number' || typeof un !== 'number') return null;
  const operations = { sh, ex, shnb: sh | nb, exnb: ex | nb, un };
  return {
    flockSync: (fd, flags) => {
      (flock as (fd: number, operation: number) => void).call(raw, fd, operations[flags]);
    },
  };
}

/**
 * The addon binary `id` (its path inside node_modules) from the first node_modules up from this
 * file that holds it, where Node's require looks too, loaded with process.dlopen: without the
 * resolver (Module._load, the realpath of every directory, the package's package.json), which
 * took 1.2-1.3 ms for the two binaries in a fresh process against 0.35 for the dlopens. Node
 * loads a binary it has loaded before (the application's own require of the package) again as
 * it does for require. Where it is not found or does not load (another ABI), `req` loads it the
 * usual way, and says why it cannot.
 */
function binary(req: AddonLoader, id: string): unknown {
  const file = findInNodeModules(id);
  if (file !== null) {
    const module = { exports: {} as unknown };
    try {
      process.dlopen(module, file);
      return module.exports;
    } catch {
      // Another ABI or a broken build: the require below reports it.
    }
  }
  return req(id);
}

function findInNodeModules(id: string): string | null {
  let dir: string;
  try {
    dir = path.dirname(fileURLToPath(import.meta.url));
  } catch {
    return null; // Not a file (a bundler's URL): the usual way.
  }
  for (;;) {
    // As Node: no node_modules/node_modules.
    if (path.basename(dir) !== 'node_modules') {
      const file = path.join(dir, 'node_modules', id);
      if (fs.statSync(file, { throwIfNoEntry: false })?.isFile() === true) return file;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

type RawSync = (buffer: Buffer, offset: number, length: number, blocking: boolean,
  invalidate: boolean) => void;

function skipped(problems: string[]): null {
  problems.push(FLOCK_IN_WORKER_PROBLEM);
  return null;
}
