/**
 * mmap backend: each file is a shared read/write mapping, so appends encode straight into the
 * page cache and reads hand out views without a copy. fdatasync on the descriptor (libuv's
 * thread pool) flushes pages dirtied through the mapping. Mappings are released when their
 * Buffer is garbage collected.
 *
 * A file is mapped when its mapping or a view of it is first asked for, not when it is opened
 * (a copy, `read`, comes from the file until then): a store's open lists every segment and
 * ConsumeQueue file but reads only the newest few, and V8 counts each mapping's whole length as
 * external memory, so mapping all of them (a store of 0.75 GiB: 832 MiB of segments, more of
 * ConsumeQueue files) ran two full garbage collections inside the open. For the same reason a
 * file that will grow is mapped for at least its capacity's first MIN_MAP_BYTES, not all of it,
 * and mapped again, wider, when it grows past that (a young store's few mappings of their full
 * capacity, a 64 MiB segment and 6 MB ConsumeQueue files, went past V8's 64 MB external-memory
 * limit in the open of a short-lived process). Views of an older mapping stay valid (both map
 * the same shared pages) until they are collected.
 *
 * SIGBUS: a page of a mapping past the end of its file faults. The mapping may be longer than
 * the file (a file that grows keeps its mapping), but `mapping`, `read` and `view` only reach
 * its allocated part, which `grow` widens after the zeros are written; nothing shrinks a file
 * (that would turn an access past the new end into SIGBUS), so `truncate` zero-fills instead.
 */
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
  readonly maps = true;
  /** The mapping, made on first use: at least `size()` long, never touched past it. */
  private whole: Buffer | null = null;
  /** The allocated part of `whole`, once mapped. */
  private allocated: Buffer | null = null;

  constructor(path: string, fd: number, size: number, private readonly capacity: number,
    /** Map the file's first `length` bytes (again, wider, when it grew). */
    private readonly map: (length: number) => Buffer) {
    super(path, fd, size, capacity);
  }

  /** The mapping's first `size()` bytes, mapping the file now if nothing asked for it yet. */
  get mapping(): Buffer {
    if (this.allocated !== null) return this.allocated;
    let whole = this.whole;
    if (whole === null) {
      // mmap of length 0 is invalid: an empty file that cannot grow maps nothing.
      const length = Math.min(this.capacity, Math.max(this.sizeBytes, MIN_MAP_BYTES));
      whole = this.whole = length === 0 ? Buffer.alloc(0) : this.mapLength(length);
    }
    this.allocated = this.sizeBytes === whole.length ? whole : whole.subarray(0, this.sizeBytes);
    return this.allocated;
  }

  private mapLength(length: number): Buffer {
    try {
      return this.map(length);
    } catch (err) {
      throw ioError(err, `cannot map ${length} bytes`, this.path);
    }
  }

  protected override grown(sizeBytes: number): void {
    const whole = this.whole;
    if (whole !== null && sizeBytes > whole.length) {
      // Before anything changes: a failed mapping leaves the file as a failed growth does.
      this.whole = this.mapLength(Math.min(this.capacity,
        Math.max(sizeBytes, whole.length * REMAP_FACTOR)));
    }
    super.grown(sizeBytes);
    this.allocated = null;
  }

  /** A copy: from the mapping once there is one, else read from the file (mapping nothing). */
  read(position: number, length: number): Buffer {
    if (this.whole !== null) return Buffer.from(this.view(position, length));
    this.checkInside(position, length);
    return this.readFromFile(position, length);
  }

  view(position: number, length: number): Buffer {
    this.checkInside(position, length);
    return this.mapping.subarray(position, position + length);
  }

  /** Reads stop at the allocation: past it a mapping's pages fault (SIGBUS). */
  private checkInside(position: number, length: number): void {
    if (position + length > this.sizeBytes) {
      throw new RangeError(`${this.path}: [${position}, +${length}) past ${this.sizeBytes}`);
    }
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
    const { PROT_READ, PROT_WRITE, MAP_SHARED } = this.addon;
    const protection = options.readOnly ? PROT_READ : PROT_READ | PROT_WRITE;
    return new MappedBackendFile(filePath, fd, size, capacityOf(size, options),
      (length) => this.addon.map(length, protection, MAP_SHARED, fd));
  }
}
