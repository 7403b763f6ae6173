/**
 * mmap backend: each file is one shared read/write mapping of its whole capacity, made once, so
 * appends encode straight into the page cache and reads hand out views without a copy.
 * fdatasync on the descriptor (libuv's thread pool) flushes pages dirtied through the mapping.
 * Mappings are released when their Buffer is garbage collected.
 *
 * SIGBUS: a page of a mapping past the end of its file faults. The mapping may be longer than
 * the file (a file that grows keeps its mapping), but `mapping`, `read` and `view` only reach
 * its allocated part, which `grow` widens after the zeros are written; nothing shrinks a file
 * (that would turn an access past the new end into SIGBUS), so `truncate` zero-fills instead.
 */
import fs from 'node:fs';
import type { BackendFile, BackendKind, OpenOptions } from './backend.js';
import {
  allocate, AllocatedFile, allocateSync, capacityOf, NodeFsBackend, pwriteAll,
} from './file-backend.js';
import type { MmapAddon } from './native.js';

class MappedBackendFile extends AllocatedFile implements BackendFile {
  /** The allocated part of `whole`. */
  private allocated: Buffer;

  constructor(path: string, fd: number, size: number, capacity: number,
    /** The mapping of the whole capacity: never touched past `size()`. */
    private readonly whole: Buffer) {
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
    try {
      // mmap of length 0 is invalid: an empty file that cannot grow maps nothing.
      const whole = capacity === 0 ? Buffer.alloc(0)
        : this.addon.map(capacity, protection, MAP_SHARED, fd);
      return new MappedBackendFile(filePath, fd, size, capacity, whole);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }
}
