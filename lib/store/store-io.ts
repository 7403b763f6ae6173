/**
 * Choosing the I/O backend for a store: the mmap backend when its addon loads, else the plain-file
 * backend, said once through the logger; or whatever backend object the caller passes (tests).
 */
import { FileBackend } from './io/file-backend.js';
import { MmapBackend } from './io/mmap-backend.js';
import type { IoBackend } from './io/backend.js';
import { loadNative, type NativeAddons } from './io/native.js';
import type { Logger } from './options.js';

export function chooseBackend(wanted: 'mmap' | 'file' | IoBackend, logger: Logger,
  native: NativeAddons = loadNative()): IoBackend {
  if (typeof wanted === 'object') return wanted;
  if (wanted === 'file') return new FileBackend();
  if (native.mmap !== null) return new MmapBackend(native.mmap);
  logger.warn(`pocketmq: the mmap addon did not load (${native.problems.join('; ')}); ` +
    'the store runs on the plain-file backend (pread/pwrite/fdatasync)');
  return new FileBackend();
}
