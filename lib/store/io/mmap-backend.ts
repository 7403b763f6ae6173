/**
 * mmap backend: each file is a shared read/write mapping, so appends encode straight into the
 * page cache and reads hand out views without a copy. fdatasync on the descriptor (libuv's
 * thread pool) flushes pages dirtied through the mapping. Mappings are released when their
 * Buffer is garbage collected.
 *
 * A file that will grow is mapped for at least its capacity's first MIN_MAP_BYTES, not all of
 * it, and mapped again, wider, when it grows past that: V8 counts a mapping's whole length as
 * external memory, and a young store's few mappings of their full capacity (a 64 MiB segment,
 * 6 MB ConsumeQueue files) went past V8's 64 MB external-memory limit and forced full garbage
 * collections in the open of a short-lived process. Views of an older mapping stay valid (both
 * map the same shared pages) until they are collected.
 *
 * SIGBUS: a page of a mapping past the end of its file faults. The mapping may be longer than
 * the file (a file that grows keeps its mapping), but `mapping`, `read` and `view` only reach
 * its allocated part, which `grow` widens after the zeros are written; nothing shrinks a file
 * (that would turn an access past the new end into SIGBUS), so `truncate` zero-fills instead.
 */
import fs from 'node:fs';
import { ioError } from '../../errors.js';
import type { BackendFile, BackendKind, OpenOptions } from './backend.js';
import {
  allocate, AllocatedFile, allocateSync, capacityOf, pwriteAll,
} from './allocated-file.js';
import { NodeFsBackend } from './file-backend.js';
import type { MmapAddon } from './native.js';

/** A growing file's first mapping covers at least this much of its capacity. */
const MIN_MAP_BYTES = 1 << 20;
/** A mapping made again for a grown file is this many times the allocation (fewer remaps). */
const REMAP_FACTOR = 4;

class MappedBackendFile extends AllocatedFile implements BackendFile {
  /** The allocated part of `whole`. */
  private allocated: Buffer;

  constructor(path: string, fd: number, size: number, private readonly capacity: number,
    /** The mapping: at least `size()` long, never touched past it. */
    private whole: Buffer,
    /** Map `length` bytes of the file again (a wider mapping, as `whole` was made). */
    private readonly remap: (length: number) => Buffer) {
    super(path, fd, size, capacity);
    this.allocated = this.part(size);
  }

  /** The mapping's first `size` bytes: the mapping itself when that is all of it. */
  private part(size: number): Buffer {
    return size === this.whole.length ? this.whole : this.whole.subarray(0, size);
  }

  get mapping(): Buffer {
    return this.allocated;
  }

  protected override grown(sizeBytes: number): void {
    if (sizeBytes > this.whole.length) {
      // Before anything changes: a failed mapping leaves the file as a failed growth does.
      const length = Math.min(this.capacity,
        Math.max(sizeBytes, this.whole.length * REMAP_FACTOR));
      try {
        this.whole = this.remap(length);
      } catch (err) {
        throw ioError(err, `cannot map ${length} bytes`, this.path);
      }
    }
    super.grown(sizeBytes);
    this.allocated = this.part(sizeBytes);
  }

  read(position: number, length: number): Buffer {
    return Buffer.from(this.view(position, length));
  }

  view(position: number, length: number): Buffer {
    if (position + length > this.allocated.length) {
      throw new RangeError(`${this.path}: [${position}, +${length}) past ${this.allocated.length}`);
    }
    return this.allocated.subarray(position, position + length);
  }

  /**
   * A real pwrite, not a copy into the mapping: the page cache is shared, so the mapping sees it,
   * and a pwrite into a clean page costs no write-protect fault (which makes fdatasync after
   * writes through a mapping about a third slower).
   */
  write(position: number, data: Uint8Array): void {
    pwriteAll(this.fd, position, data, this.path);
  }
}

export class MmapBackend extends NodeFsBackend {
  override readonly kind: BackendKind = 'mmap';

  constructor(private readonly addon: MmapAddon) {
    super();
  }

  override async open(filePath: string, options: OpenOptions): Promise<BackendFile> {
    const { fd, size } = await allocate(filePath, options);
    return this.mapFile(filePath, fd, size, options);
  }

  override openSync(filePath: string, options: OpenOptions): BackendFile {
    const { fd, size } = allocateSync(filePath, options);
    return this.mapFile(filePath, fd, size, options);
  }

  private mapFile(filePath: string, fd: number, size: number, options: OpenOptions): BackendFile {
    const capacity = capacityOf(size, options);
    const { PROT_READ, PROT_WRITE, MAP_SHARED } = this.addon;
    const protection = options.readOnly ? PROT_READ : PROT_READ | PROT_WRITE;
    const map = (length: number): Buffer => this.addon.map(length, protection, MAP_SHARED, fd);
    try {
      const length = Math.min(capacity, Math.max(size, MIN_MAP_BYTES));
      // mmap of length 0 is invalid: an empty file that cannot grow maps nothing.
      const whole = length === 0 ? Buffer.alloc(0) : map(length);
      return new MappedBackendFile(filePath, fd, size, capacity, whole, map);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }
}
