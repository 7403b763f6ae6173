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
 */
import { FileBackend } from './io/file-backend.js';
import { MmapBackend } from './io/mmap-backend.js';
import type { IoBackend } from './io/backend.js';
import { loadNative, type NativeAddons } from './io/native.js';
import type { BackendChoice, Logger } from './options.js';

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
