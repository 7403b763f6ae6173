/**
 * Which I/O backend the messaging tests run on: the vitest projects of vitest.config.ts run
 * test/client, test/broker and test/observability once on each backend (mmap, the plain-file
 * backend, the simulated disk), as the store conformance suite does, by setting
 * PMQ_TEST_BACKEND in the worker (a test setting only; the product reads no environment).
 *
 * The simulated disk lives in memory: one disk per data directory, kept for the test file's
 * life, so a test that closes and reopens a directory finds its files again.
 */
import path from 'node:path';
import type { MessageStoreOptions } from '../../lib/message-store.js';
import type { IoBackend } from '../../lib/store/io/backend.js';
import { FileBackend } from '../../lib/store/io/file-backend.js';
import { SimBackend } from './sim-backend.js';

export type TestBackend = 'mmap' | 'file' | 'sim';

const disks = new Map<string, IoBackend>();

/** The backend of this test run (PMQ_TEST_BACKEND; the store's default when unset). */
export function testBackend(): TestBackend {
  const name = process.env.PMQ_TEST_BACKEND ?? 'mmap';
  if (name !== 'mmap' && name !== 'file' && name !== 'sim') {
    throw new Error(`PMQ_TEST_BACKEND must be mmap, file or sim, got ${name}`);
  }
  return name;
}

/** Store options that put a test's store for `dir` on this run's backend. */
export function backendOptions(dir: string): Pick<MessageStoreOptions, 'backend'> {
  switch (testBackend()) {
    case 'file':
      return { backend: 'file' };
    case 'sim': {
      let disk = disks.get(dir);
      if (disk === undefined) {
        disk = new SimBackend({ seed: 7 });
        disks.set(dir, disk);
      }
      return { backend: disk };
    }
    default:
      return {};
  }
}

/** The files of a test's store, on this run's backend (the simulated disk or the real one). */
export function storeFiles(dir: string): {
  readFile(relative: string): Buffer | null; exists(relative: string): boolean;
  unlink(relative: string): void; writeFile(relative: string, bytes: Buffer): void;
} {
  const backend = testBackend() === 'sim' ? backendOptions(dir).backend as IoBackend
    : new FileBackend();
  const at = (relative: string): string => path.join(dir, relative);
  return {
    readFile: (relative) => backend.readFile(at(relative)),
    exists: (relative) => backend.exists(at(relative)),
    unlink: (relative) => backend.unlink(at(relative)),
    writeFile: (relative, bytes) => backend.writeFileAtomic(at(relative), bytes),
  };
}
