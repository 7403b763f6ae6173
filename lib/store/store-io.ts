/**
 * Choosing the I/O backend for a store (the `backend` store option):
 * - 'auto' (default): the mmap backend when its addon loads, except under Electron, whose V8
 *   memory cage aborts the process on external buffers such as an mmap'd segment: there the
 *   plain-file backend, said once through the logger;
 * - 'mmap': the mmap backend whenever its addon loads (under Electron too: for a build known to
 *   run without the memory cage);
 * - 'file': the plain-file backend (pread/pwrite/fdatasync);
 * - a backend object (tests: the simulated disk), as it is.
 * When the mmap addon is wanted but did not load, the store runs on the plain-file backend and
 * says so once through its logger.
 *
 * And the store's files by part (`storageOf`): where each lives and how it is written.
 */
import path from 'node:path';
import { limits } from '../limits.js';
import { CommitLog } from './commit-log.js';
import { ConsumeQueueTable } from './consume-queue-table.js';
import { IndexService } from './index-service.js';
import { FileBackend } from './io/file-backend.js';
import { MmapBackend } from './io/mmap-backend.js';
import type { IoBackend } from './io/backend.js';
import { loadNative, type NativeAddons } from './io/native.js';
import type { BackendChoice, Logger, ResolvedStoreOptions } from './options.js';

/** True inside an Electron process (main, utility or a renderer with Node integration). */
export function isElectron(versions: NodeJS.ProcessVersions = process.versions): boolean {
  return typeof (versions as { electron?: unknown }).electron === 'string';
}

export function chooseBackend(wanted: BackendChoice, logger: Logger,
  native: NativeAddons = loadNative(), electron = isElectron()): IoBackend {
  if (typeof wanted === 'object') return wanted;
  if (wanted === 'file') return new FileBackend();
  if (wanted === 'auto' && electron) {
    logger.info('pocketmq: Electron: the store runs on the plain-file backend (V8\'s memory ' +
      "cage forbids mmap'd buffers); backend: 'mmap' asks for mmap anyway");
    return new FileBackend();
  }
  if (native.mmap !== null) return new MmapBackend(native.mmap);
  logger.warn(`pocketmq: the mmap addon did not load (${native.problems.join('; ')}); ` +
    'the store runs on the plain-file backend (pread/pwrite/fdatasync)');
  return new FileBackend();
}

/** The commit log, ConsumeQueues and index of the store in `dir`, not opened yet. */
export function storageOf(dir: string, options: ResolvedStoreOptions, backend: IoBackend):
  [CommitLog, ConsumeQueueTable, IndexService] {
  const sync = options.flushDiskType === 'SYNC_FLUSH';
  return [new CommitLog({
    backend, dir: path.join(dir, 'commitlog'), segmentSizeBytes: options.commitLogSegmentSize,
    // SYNC_FLUSH: stage each turn and pwrite it (fdatasync after pwrite is faster than after
    // stores through a mapping); ASYNC_FLUSH: encode straight into the mapping (no copy).
    windowBytes: sync ? Math.min(limits.writeWindowBytes, options.commitLogSegmentSize) : 0,
    clock: options.clock,
    syncAllocation: sync,
  }), new ConsumeQueueTable(backend, path.join(dir, 'consumequeue'),
    options.consumeQueueEntriesPerFile, false),
  new IndexService(backend, path.join(dir, 'index'),
    { hashSlotCount: options.indexHashSlots, maxIndexCount: options.indexMaxEntries })];
}
