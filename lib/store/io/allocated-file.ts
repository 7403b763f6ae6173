/**
 * Files whose blocks exist: what the plain-file and mmap backends' files share. A file is
 * allocated with zeros (checked against the disk's room first, written off the main thread in
 * 4 MiB writes) and grows the same way, so a full disk shows as DISK_FULL when a file is made or
 * grown, never as SIGBUS in a write through a mapping.
 */
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ioError } from '../../errors.js';
import { limits } from '../../limits.js';
import type { OpenOptions } from './backend.js';

/** Files are the owner's alone. */
export const FILE_MODE = 0o600;
/**
 * Zero-fill in writes of 4 MiB, one at a time: one libuv thread does the fill while the other
 * core stays with the main thread (two writes in flight took both cores of a 2-core machine and
 * stretched producer -> consumer latency). A write is one step of a growth (MappedFile), so a
 * step costs one round trip through the event loop: a writer that runs without yielding (sends
 * that settle at once) lets the growth move only when it waits for room, and with 2 MiB writes
 * it waited for two writes at every step, 15-35 % of a 1 KiB send run on a new store.
 * The size matters to whoever writes through a mapping of the file afterwards: on a 6.x kernel
 * with large page-cache folios, a 64 MiB file filled by 2-4 MiB writes took 70-700 page faults
 * to be written through a shared mapping (13-16 ms for 64 MiB of 196-byte records, the same for
 * both sizes), filled by one 64 MiB write (or a writev of the same) about 16,000 (40-43 ms): the
 * page cache ends up in small pages. Smaller writes also read a smaller, cache-warm source
 * buffer (4 MiB writes filled 64 MiB in 15 ms, one write in 104 ms).
 */
const ZERO_CHUNK_BYTES = 4 * 1024 * 1024;
const ZERO_WRITES_IN_FLIGHT = 1;
/**
 * The zeros written, shared by the whole process and never written to: made on first use as
 * long as the largest write asked for so far (at most a chunk), not at load. V8 counts a
 * Buffer's bytes as external memory, and 64 MiB of it at startup made V8 run full collections
 * in a short process that never zero-fills more than a few KiB.
 */
let zeroBuffer = Buffer.alloc(0);

/** At least `min(bytes, ZERO_CHUNK_BYTES)` zeros. */
function zeros(bytes: number): Buffer {
  const want = Math.min(bytes, ZERO_CHUNK_BYTES);
  if (zeroBuffer.length < want) zeroBuffer = Buffer.alloc(want);
  return zeroBuffer;
}
/** `truncate` compares and writes in chunks of this size. */
const TRUNCATE_CHUNK_BYTES = 64 * 1024;

// Callbacks made promises, not node:fs/promises: that module loads Node's streams, a millisecond
// of a short-lived process's start.
const openAsync = promisify(fs.open);
const writeAsync = promisify(fs.write);
export const fdatasyncAsync = promisify(fs.fdatasync);
const fstatAsync = promisify(fs.fstat);
const statfsAsync = promisify(fs.statfs);

/**
 * Refuse to allocate `needed` more bytes that the filesystem cannot hold, before writing a byte:
 * zero-filling until ENOSPC would fill the disk to its last block while it ran, and the
 * checkpoint and config files written meanwhile would fail (and with them the store), only for
 * the allocation to fail too. A new file or a file growing on the write path also leaves
 * `limits.allocationReserveBytes` free for them; an existing short file grown at open needs only
 * the room itself. A filesystem that reports no size (0 blocks) is not checked, as retention
 * does not.
 */
function checkRoom(filePath: string, needed: number, reserve: boolean, s: fs.StatsFs): void {
  if (s.blocks <= 0) return;
  const free = s.bavail * s.bsize;
  const kept = reserve ? limits.allocationReserveBytes : 0;
  if (free >= needed + kept) return;
  throw Object.assign(new Error(`ENOSPC: ${needed} bytes to allocate, ${free} free and ` +
    `${kept} kept for metadata, '${filePath}'`),
  { code: 'ENOSPC', errno: -28, syscall: 'statfs', path: filePath });
}

function openFlags(options: OpenOptions): number {
  const { O_RDONLY, O_RDWR, O_CREAT } = fs.constants;
  if (options.readOnly) return O_RDONLY;
  return options.create ? O_RDWR | O_CREAT : O_RDWR;
}

/** Write zeros over [from, to), a few chunks at a time; short writes are continued. */
async function zeroFill(fd: number, from: number, to: number): Promise<void> {
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < to) {
      let at = next;
      const end = Math.min(to, at + ZERO_CHUNK_BYTES);
      next = end;
      while (at < end) {
        const { bytesWritten } = await writeAsync(fd, zeros(end - at), 0, end - at, at);
        if (bytesWritten <= 0) throw new Error(`zero-fill wrote ${bytesWritten} bytes at ${at}`);
        at += bytesWritten;
      }
    }
  };
  await Promise.all(Array.from({ length: ZERO_WRITES_IN_FLIGHT }, worker));
}

/**
 * Grow the file behind `fd` from `from` to `to` bytes with zeros, so the blocks really exist
 * (the caller checked the room: checkRoom). With `sync` they are written out too, off the main
 * thread, so later fdatasyncs of the file only overwrite allocated blocks (no journal work) and
 * do not carry the zeros with them: a chunk at a time, each synced before the next is written.
 * One fdatasync after all of a 64 MiB segment's zeros put 64 MiB of write-back in the disk's
 * queue at once, and every group commit's fdatasync meanwhile waited behind it (SYNC_FLUSH sends
 * on a new store, p99.9 45-60 ms); with a chunk at a time they wait behind 4 MiB at most.
 */
async function growFd(fd: number, from: number, to: number, sync: boolean): Promise<void> {
  if (!sync) return zeroFill(fd, from, to);
  for (let at = from; at < to; at += ZERO_CHUNK_BYTES) {
    await zeroFill(fd, at, Math.min(to, at + ZERO_CHUNK_BYTES));
    await fdatasyncAsync(fd);
  }
}

function growFdSync(fd: number, filePath: string, from: number, to: number,
  reserve: boolean): void {
  if (to <= from) return;
  checkRoom(filePath, to - from, reserve, fs.statfsSync(path.dirname(filePath)));
  for (let at = from; at < to; at += ZERO_CHUNK_BYTES) {
    let done = 0;
    const length = Math.min(ZERO_CHUNK_BYTES, to - at);
    const zero = zeros(length);
    while (done < length) done += fs.writeSync(fd, zero, 0, length - done, at + done);
  }
}

/** An open descriptor and the file's allocated length. */
export interface Allocated {
  readonly fd: number;
  readonly size: number;
}

/** Open (creating if asked) and grow to `sizeBytes` with zeros, so the blocks really exist. */
export async function allocate(filePath: string, options: OpenOptions): Promise<Allocated> {
  let fd = -1;
  try {
    fd = await openAsync(filePath, openFlags(options), FILE_MODE);
    const { size } = await fstatAsync(fd);
    if (options.readOnly) return { fd, size };
    if (options.sizeBytes > size) {
      checkRoom(filePath, options.sizeBytes - size, options.create,
        await statfsAsync(path.dirname(filePath)));
    }
    await growFd(fd, size, options.sizeBytes, options.syncAllocation === true);
    return { fd, size: Math.max(size, options.sizeBytes) };
  } catch (err) {
    if (fd >= 0) fs.closeSync(fd);
    throw ioError(err, `cannot open or allocate ${options.sizeBytes} bytes`, filePath);
  }
}

export function allocateSync(filePath: string, options: OpenOptions): Allocated {
  let fd = -1;
  try {
    fd = fs.openSync(filePath, openFlags(options), FILE_MODE);
    const size = fs.fstatSync(fd).size;
    if (options.readOnly) return { fd, size };
    growFdSync(fd, filePath, size, options.sizeBytes, options.create);
    return { fd, size: Math.max(size, options.sizeBytes) };
  } catch (err) {
    if (fd >= 0) fs.closeSync(fd);
    throw ioError(err, `cannot open or allocate ${options.sizeBytes} bytes`, filePath);
  }
}

/**
 * What files of both backends share: their descriptor, allocated length and capacity, growth
 * (one at a time), and `truncate` that writes zeros only where a chunk is not already all
 * zeros (recovery empties regions that are mostly zeros already: writing them would dirty
 * every page for the next fdatasync to carry).
 */
export abstract class AllocatedFile {
  private closed = false;
  private growing = false;
  /**
   * The disk had room for the file's whole capacity when a growth began: the growth's later
   * steps (MappedFile grows a few MiB at a time) are not checked again.
   */
  private roomCheckedTo = 0;

  constructor(readonly path: string, protected readonly fd: number, protected sizeBytes: number,
    private readonly capacityBytes: number) {}

  size(): number {
    return this.sizeBytes;
  }

  abstract read(position: number, length: number): Buffer;
  abstract write(position: number, data: Uint8Array): void;

  /** Bytes [position, position + length) read from the file (pread), zeros past its end. */
  protected readFromFile(position: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, out, done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    if (done < length) out.fill(0, done);
    return out;
  }

  /** The allocation moved to `sizeBytes` (the mmap file widens its view). */
  protected grown(sizeBytes: number): void {
    this.sizeBytes = sizeBytes;
  }

  async grow(sizeBytes: number, sync: boolean): Promise<void> {
    const to = this.checkGrowth(sizeBytes);
    if (to <= this.sizeBytes) return;
    this.growing = true;
    try {
      await this.checkRoomFor(to);
      await growFd(this.fd, this.sizeBytes, to, sync);
    } catch (err) {
      throw ioError(err, `cannot grow to ${to} bytes`, this.path);
    } finally {
      this.growing = false;
    }
    this.grown(to);
  }

  /**
   * Refuse a growth to `to` the disk has no room for (checkRoom). One statfs per growth, not per
   * step: when the disk has room for all the rest of the file's capacity, steps up to it skip
   * the check; when it has room only for this step, every step is checked.
   */
  private async checkRoomFor(to: number): Promise<void> {
    if (to <= this.roomCheckedTo) return;
    const s = await statfsAsync(path.dirname(this.path));
    checkRoom(this.path, to - this.sizeBytes, true, s);
    const whole = this.capacityBytes - this.sizeBytes;
    if (s.blocks <= 0 || s.bavail * s.bsize >= whole + limits.allocationReserveBytes) {
      this.roomCheckedTo = this.capacityBytes;
    }
  }

  growSync(sizeBytes: number): void {
    const to = this.checkGrowth(sizeBytes);
    if (to <= this.sizeBytes) return;
    try {
      growFdSync(this.fd, this.path, this.sizeBytes, to, true);
    } catch (err) {
      throw ioError(err, `cannot grow to ${to} bytes`, this.path);
    }
    this.grown(to);
  }

  private checkGrowth(sizeBytes: number): number {
    if (this.growing) throw new Error(`${this.path}: a growth is already under way`);
    if (!(sizeBytes <= this.capacityBytes)) {
      throw new RangeError(`${this.path}: cannot grow to ${sizeBytes}, capacity ` +
        `${this.capacityBytes}`);
    }
    return sizeBytes;
  }

  truncate(sizeBytes: number): void {
    for (let at = sizeBytes; at < this.sizeBytes; at += TRUNCATE_CHUNK_BYTES) {
      const length = Math.min(TRUNCATE_CHUNK_BYTES, this.sizeBytes - at);
      const zero = zeros(length).subarray(0, length);
      if (!this.read(at, length).equals(zero)) this.write(at, zero);
    }
  }

  flush(): Promise<void> {
    return fdFlush(this.fd, this.path);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}

/** pwrite all of `data` at `position` (a short write continues where it stopped). */
export function pwriteAll(fd: number, position: number, data: Uint8Array, filePath: string): void {
  try {
    let done = 0;
    while (done < data.length) {
      done += fs.writeSync(fd, data, done, data.length - done, position + done);
    }
  } catch (err) {
    throw ioError(err, 'write failed', filePath);
  }
}

function fdFlush(fd: number, filePath: string): Promise<void> {
  return fdatasyncAsync(fd).catch((err: unknown) => {
    throw ioError(err, 'fdatasync failed', filePath);
  });
}

/** How far a file of `size` bytes opened with `options` may grow: never for a read-only one. */
export function capacityOf(size: number, options: OpenOptions): number {
  return options.readOnly ? size : Math.max(size, options.capacityBytes ?? 0);
}
