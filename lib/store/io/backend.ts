/**
 * The I/O seam. Everything the store reads or writes goes through an IoBackend, so the same store
 * runs on memory-mapped files (default), on plain files (pread/pwrite/fdatasync) when the native
 * addon cannot load, and on a simulated disk in tests.
 *
 * Every byte of a file opened through the seam is allocated: `open` and `grow` write zeros over
 * the bytes they add (off the main thread), so a full disk surfaces as DISK_FULL when a file is
 * made or grown, never as SIGBUS in the middle of a write through a mapping. A file may start
 * short and grow up to the capacity it was opened with; where the backend maps files, the
 * mapping covers at least the allocated part (it is made again, wider, as the file grows) and
 * `mapping` hands out the allocated part only.
 * Nothing ever shrinks a file: `truncate(n)` empties the bytes at and beyond `n` (they read back
 * as zeros) and keeps the allocation.
 */

export type BackendKind = 'mmap' | 'file' | 'sim';

export interface OpenOptions {
  /**
   * Allocated length at least: a shorter file is grown with zeros (its missing part is empty), a
   * longer one keeps its length; 0 opens an existing file as it is.
   */
  readonly sizeBytes: number;
  /** The most the file may grow to with `grow` (default: its length once opened). */
  readonly capacityBytes?: number;
  /** Create the file if it is missing (mode 0600). */
  readonly create: boolean;
  readonly readOnly: boolean;
  /**
   * After allocating, fdatasync the zeros (off the main thread) so later fdatasyncs of the file
   * only overwrite allocated blocks. Worth it for SYNC_FLUSH; without it the zeros usually never
   * reach the disk (the log overwrites them in the page cache first).
   */
  readonly syncAllocation?: boolean;
}

export interface BackendFile {
  readonly path: string;
  /** Allocated length in bytes. */
  size(): number;
  /** The bytes of [position, position + length) copied into a new Buffer. */
  read(position: number, length: number): Buffer;
  /** The same bytes without a copy where the backend maps the file; a copy otherwise. */
  view(position: number, length: number): Buffer;
  /** Write `data` at `position`; it is durable only after `flush`. */
  write(position: number, data: Uint8Array): void;
  /** The backend maps the file: `mapping` is not null. */
  readonly maps: boolean;
  /**
   * Where the backend maps the file, the whole writable mapping: callers may encode into it in
   * place (no copy). Null where writes must go through `write`. The mapping is made on its
   * first use: a file only opened (an old segment a reader never asks for) maps nothing.
   */
  readonly mapping: Buffer | null;
  /** fdatasync off the main thread: everything written so far is durable when it resolves. */
  flush(): Promise<void>;
  /** Empty the bytes at and beyond `sizeBytes` (they read as zeros); the allocation stays. */
  truncate(sizeBytes: number): void;
  /**
   * Allocate the file up to `sizeBytes` (at most its capacity) with zeros, off the main thread;
   * with `sync`, fdatasync them before it resolves. A full disk rejects with DISK_FULL before a
   * byte is written, and the file keeps its length.
   */
  grow(sizeBytes: number, sync: boolean): Promise<void>;
  /** `grow` on the main thread, without the fdatasync: for a few KiB on the write path. */
  growSync(sizeBytes: number): void;
  close(): void;
}

export interface DiskUsage {
  /** What this process can use in all: bytes used plus bytes it may still write (as df). */
  readonly totalBytes: number;
  /** Bytes this process may still write. */
  readonly freeBytes: number;
}

export interface IoBackend {
  readonly kind: BackendKind;
  /** Open or create a file, allocating its blocks off the main thread. */
  open(path: string, options: OpenOptions): Promise<BackendFile>;
  /** The same, synchronously: for small files made on the write path. */
  openSync(path: string, options: OpenOptions): BackendFile;
  exists(path: string): boolean;
  /** Length of a file as it is on disk, or -1 when it is missing. */
  fileSize(path: string): number;
  readdir(dir: string): string[];
  /** mkdir -p with mode 0700. */
  mkdir(dir: string): void;
  unlink(path: string): void;
  /** Remove a directory that should be empty; ignores a missing one. */
  rmdir(dir: string): void;
  readFile(path: string): Buffer | null;
  /** tmp -> fsync -> rename -> fsync(dir): the file holds the old or the new bytes, never a mix. */
  writeFileAtomic(path: string, data: Uint8Array): void;
  /** `writeFileAtomic` with its fsyncs off the main thread (flush services use it). */
  writeFileAtomicAsync(path: string, data: Uint8Array): Promise<void>;
  /** Create a small file (0600) with these bytes, replacing any. Not atomic; for markers. */
  writeFile(path: string, data: Uint8Array): void;
  diskUsage(dir: string): DiskUsage;
}
