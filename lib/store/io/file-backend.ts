/**
 * Plain-file backend: pread/pwrite/fdatasync. The fallback when the mmap addon cannot load, and the
 * base of the mmap backend for everything that is not a mapping (directories, atomic files,
 * disk use).
 */
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ioError } from '../../errors.js';
import {
  allocate, AllocatedFile, allocateSync, capacityOf, fdatasyncAsync, FILE_MODE, pwriteAll,
} from './allocated-file.js';
import type { BackendFile, BackendKind, DiskUsage, IoBackend, OpenOptions } from './backend.js';

const DIR_MODE = 0o700;
const fsyncAsync = promisify(fs.fsync);

/** A file reached through pread/pwrite. */
class PlainFile extends AllocatedFile implements BackendFile {
  readonly maps = false;
  readonly mapping = null;

  read(position: number, length: number): Buffer {
    return this.readFromFile(position, length);
  }

  view(position: number, length: number): Buffer {
    return this.read(position, length);
  }

  write(position: number, data: Uint8Array): void {
    pwriteAll(this.fd, position, data, this.path);
  }
}

/** Filesystem operations shared by the plain-file and mmap backends. */
export class NodeFsBackend implements IoBackend {
  readonly kind: BackendKind = 'file';

  async open(filePath: string, options: OpenOptions): Promise<BackendFile> {
    const { fd, size } = await allocate(filePath, options);
    return new PlainFile(filePath, fd, size, capacityOf(size, options));
  }

  openSync(filePath: string, options: OpenOptions): BackendFile {
    const { fd, size } = allocateSync(filePath, options);
    return new PlainFile(filePath, fd, size, capacityOf(size, options));
  }

  exists(filePath: string): boolean {
    return fs.existsSync(filePath);
  }

  fileSize(filePath: string): number {
    try {
      return fs.statSync(filePath).size;
    } catch {
      return -1;
    }
  }

  readdir(dir: string): string[] {
    try {
      return fs.readdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioError(err, 'cannot list directory', dir);
    }
  }

  mkdir(dir: string): void {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    } catch (err) {
      throw ioError(err, 'cannot create directory', dir);
    }
  }

  unlink(filePath: string): void {
    try {
      fs.unlinkSync(filePath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw ioError(err, 'cannot delete', filePath);
      }
    }
  }

  rmdir(dir: string): void {
    try {
      fs.rmdirSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTEMPTY') throw ioError(err, 'cannot remove', dir);
    }
  }

  readFile(filePath: string): Buffer | null {
    try {
      return fs.readFileSync(filePath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw ioError(err, 'cannot read', filePath);
    }
  }

  writeFileAtomic(filePath: string, data: Uint8Array): void {
    const tmp = `${filePath}.tmp`;
    try {
      const fd = fs.openSync(tmp, 'w', FILE_MODE);
      try {
        fs.writeSync(fd, data);
        fs.fdatasyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, filePath);
      const dirFd = fs.openSync(path.dirname(filePath), 'r');
      try {
        fs.fsyncSync(dirFd);
      } finally {
        fs.closeSync(dirFd);
      }
    } catch (err) {
      throw ioError(err, 'cannot write atomically', filePath);
    }
  }

  /**
   * `writeFileAtomic` with its two syncs on the thread pool. The steps between them (open,
   * write, close and rename of a small file, open and close of its directory) take microseconds
   * each and run here: as a thread-pool job each would cost a turn of the event loop, six of the
   * eight that a checkpoint or config write at close otherwise waits for.
   */
  async writeFileAtomicAsync(filePath: string, data: Uint8Array): Promise<void> {
    const tmp = `${filePath}.tmp`;
    try {
      const fd = fs.openSync(tmp, 'w', FILE_MODE);
      try {
        for (let done = 0; done < data.length;) done += fs.writeSync(fd, data, done);
        await fdatasyncAsync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, filePath);
      const dirFd = fs.openSync(path.dirname(filePath), 'r');
      try {
        await fsyncAsync(dirFd);
      } finally {
        fs.closeSync(dirFd);
      }
    } catch (err) {
      throw ioError(err, 'cannot write atomically', filePath);
    }
  }

  writeFile(filePath: string, data: Uint8Array): void {
    try {
      fs.writeFileSync(filePath, data, { mode: FILE_MODE });
    } catch (err) {
      throw ioError(err, 'cannot write', filePath);
    }
  }

  diskUsage(dir: string): DiskUsage {
    try {
      const s = fs.statfsSync(dir);
      // As df counts: blocks reserved for root (bfree - bavail) are neither ours nor used, so
      // the capacity is what is used plus what this process may still write. Counting them as
      // used made a disk with a large reserve look 70 % full with a quarter of it written.
      const usedBytes = (s.blocks - s.bfree) * s.bsize;
      const freeBytes = s.bavail * s.bsize;
      return { totalBytes: usedBytes + freeBytes, freeBytes };
    } catch (err) {
      throw ioError(err, 'cannot read disk usage', dir);
    }
  }
}

/** The plain-file backend. */
export class FileBackend extends NodeFsBackend {}
