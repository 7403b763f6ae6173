/**
 * MappedFile: one file of a log (a commit-log segment or a ConsumeQueue file) of `sizeBytes`
 * logical bytes, named by the global offset of its first byte, with three positions that only
 * move forward:
 *
 *    0 ........ flushed ........ published ........ wrote ........ usable ...... size
 *    |  durable  |  in the file,  |  staged in the   |  zeros,      |  not yet
 *    |           |  not yet synced|  write window    |  allocated   |  usable
 *
 * wrote >= published >= flushed always, and wrote <= usable <= allocated: the file holds real
 * blocks for [0, allocated) (it may start short and grow, up to `sizeBytes`), and appends go
 * only where they are `usable`: allocated and known to be zeros past `wrote`. Reads past the
 * allocation see zeros, the missing part of a short file. After a crash the bytes past the
 * data are not trusted (`distrustTail`): `grow` empties them (only where they are not zeros
 * already) before appends may use them.
 *
 * Appends are either encoded straight into the mapping (`direct`: published = wrote) or staged
 * in a write window and published as one contiguous pwrite per event-loop turn (always without
 * a mapping; by choice with one, as the commit log does: pwrite then fdatasync is faster than
 * stores through a mapping then fdatasync, and reads still come from the mapping).
 */
import { setImmediate as yieldTurn } from 'node:timers/promises';
import { assert, PocketMQError } from '../errors.js';
import type { BackendFile } from './io/backend.js';
import { dataView } from './record-codec.js';

/** 20-digit zero-padded decimal, RocketMQ's segment naming. */
export function offsetToFileName(offset: number): string {
  return String(offset).padStart(20, '0');
}

export function fileNameToOffset(name: string): number | null {
  return /^\d{20}$/.test(name) ? Number(name) : null;
}

/** Where an append encodes: a buffer, its DataView, and the position in it. */
export interface AppendTarget {
  buf: Buffer;
  dv: DataView;
  at: number;
}

/** `grow` empties a distrusted tail in steps of this size, yielding to the event loop. */
const EMPTY_STEP_BYTES = 1024 * 1024;
const zeroStep = Buffer.alloc(EMPTY_STEP_BYTES);
/** `grow` allocates in steps of this size; each is usable once written. */
const ALLOCATE_STEP_BYTES = 4 * 1024 * 1024;

export class MappedFile {
  readonly fileFromOffset: number;
  /** Logical length: where the file's offsets end (a segment's size). */
  readonly sizeBytes: number;
  private wrotePos = 0;
  private publishedPos = 0;
  private flushedPos = 0;
  /** Appends may go below this: allocated, and zeros past `wrote`. */
  private usableBytes: number;
  /**
   * Reasons to sync the file even if nothing was written since the last flush: recovery emptied
   * bytes, or the file may hold what a run that crashed or failed to open wrote and never synced
   * (see `syncOnNextFlush`). Counted, not a flag: a request made while a sync runs (a growth's
   * next step) may miss it, and keeps the next flush due.
   */
  private syncRequests = 0;
  /** `syncRequests` as it was when the last successful sync started. */
  private syncedRequests = 0;
  /** The backend maps the file; `mapping` is taken from it on first use (`mappingNow()`). */
  private readonly maps: boolean;
  private mapping: Buffer | null = null;
  private mappingDv: DataView | null = null;
  private mappingScan: { readonly buf: Buffer; readonly dv: DataView } | null = null;
  /** Appends encode into the mapping itself (no window). */
  private readonly direct: boolean;
  private window: Buffer | null = null;
  private windowDv: DataView | null = null;
  private readonly windowBytes: number;
  private closed = false;
  /** Set when the owner closes: a growth under way stops at its next step. */
  private growthStopped = false;
  /**
   * The error of a window write that failed. What the file holds past `published` is unknown
   * after it, so the write is never retried: every later append or publish throws it (the store
   * stops; reopening recovers what reached the file), and reads end at `published`.
   */
  private writeFailure: unknown = null;
  /** Times `resetPositions` ran: a flush in flight across one claims nothing. */
  private resets = 0;
  /** What `target` hands out, reused until its next call: an object per append costs GC. */
  private readonly place: AppendTarget;

  /**
   * `windowBytes` 0 = encode straight into the mapping where there is one; `sizeBytes` is the
   * logical length (default: the file's), at least what the file holds.
   */
  constructor(readonly file: BackendFile, fileFromOffset: number, windowBytes: number,
    sizeBytes = file.size()) {
    assert(file.size() <= sizeBytes, `${file.path} is longer than ${sizeBytes} bytes`);
    this.fileFromOffset = fileFromOffset;
    this.sizeBytes = sizeBytes;
    this.usableBytes = file.size();
    this.maps = file.maps;
    this.direct = this.maps && windowBytes === 0;
    this.windowBytes = windowBytes === 0 ? 64 * 1024 : windowBytes;
    const buf = Buffer.alloc(0);
    this.place = { buf, dv: dataView(buf), at: 0 };
  }

  /**
   * The file's mapping, taken from the backend (which maps the file then) on first use: a file
   * that is only opened maps nothing. Null where the backend does not map.
   */
  private mappingNow(): Buffer | null {
    if (this.mapping === null && this.maps) this.useMapping();
    return this.mapping;
  }

  /** The file's mapping moved on (it grew): views of the old one stay valid. */
  private remap(): void {
    if (this.mapping !== null) this.useMapping();
  }

  private useMapping(): void {
    const mapping = this.file.mapping;
    if (mapping === null || mapping === this.mapping) return;
    this.mapping = mapping;
    this.mappingDv = dataView(mapping);
    this.mappingScan = { buf: mapping, dv: this.mappingDv };
    if (this.direct) {
      this.place.buf = mapping;
      this.place.dv = this.mappingDv;
    }
  }

  get path(): string {
    return this.file.path;
  }
  get wrote(): number {
    return this.wrotePos;
  }
  get published(): number {
    return this.publishedPos;
  }
  get flushed(): number {
    return this.flushedPos;
  }
  /** Logical bytes left: what an append may still take before the file is sealed. */
  get remaining(): number {
    return this.sizeBytes - this.wrotePos;
  }
  /** Bytes the file holds real blocks for. */
  get allocated(): number {
    return this.file.size();
  }
  get usable(): number {
    return this.usableBytes;
  }
  /** True when `length` more bytes can be appended without growing first. */
  hasRoom(length: number): boolean {
    return this.wrotePos + length <= this.usableBytes;
  }
  get isFull(): boolean {
    return this.wrotePos === this.sizeBytes;
  }
  /** Reads come from a mapping (`view` copies nothing). */
  get mapped(): boolean {
    return this.maps;
  }
  /** The file's mapping is taken already (false where the backend does not map). */
  get mappedNow(): boolean {
    return this.mapping !== null;
  }
  /**
   * Where reads of records end: every append, or only what reached the file once a window
   * write failed.
   */
  get readable(): number {
    return this.writeFailure === null ? this.wrotePos : this.publishedPos;
  }

  /**
   * Recovery sets where the data ends: wrote and published move there. Bytes past it within the
   * allocation are taken to be empty (zeros, or ConsumeQueue entries of size 0); when they may
   * hold stale data, the caller empties them (`empty`) or distrusts them (`distrustTail`).
   * Only `durable` bytes (what a checkpoint says was flushed) count as flushed: the rest may sit
   * in the page cache only (a process crash), until the next flush syncs them.
   */
  resetPositions(position: number, durable = 0): void {
    assert(position >= 0 && position <= this.sizeBytes, 'position outside the file');
    assert(this.publishedPos === this.wrotePos, 'reset with staged appends');
    this.wrotePos = this.publishedPos = position;
    this.flushedPos = Math.max(0, Math.min(durable, position));
    this.resets++;
    // A sealed short file has wrote past its allocation: it takes no more appends anyway.
    this.usableBytes = this.allocated;
  }

  /**
   * Write zeros over [from, to) of the allocation (chunks already all zeros are left alone); a
   * flush is then due even if nothing else was written. Synchronous: for a few entries.
   */
  empty(from: number, to: number): void {
    assert(from >= this.wrotePos, 'emptying bytes below the data');
    const end = Math.min(to, this.allocated);
    for (let at = from; at < end; at += EMPTY_STEP_BYTES) {
      if (this.emptyStep(at, Math.min(end, at + EMPTY_STEP_BYTES))) this.syncRequests++;
    }
  }

  /** Zeros over [from, to) unless they are zeros already; true when it wrote. */
  private emptyStep(from: number, to: number): boolean {
    const zeros = zeroStep.subarray(0, to - from);
    if (this.file.view(from, to - from).equals(zeros)) return false;
    this.file.write(from, zeros);
    return true;
  }

  /**
   * The bytes past the data may hold anything a crashed run left there (torn or stale records):
   * appends wait until `grow` has emptied them.
   */
  distrustTail(): void {
    this.usableBytes = this.wrotePos;
    // Emptying skips bytes that read as zeros, but reads see the page cache, which may hold
    // zeros a crashed run wrote there and never synced: the disk may still hold the old bytes.
    this.syncOnNextFlush();
  }

  /**
   * What the file holds may be on disk or only in the page cache: a run that crashed (kill -9)
   * or whose open failed wrote it and may never have synced it, and reads cannot tell. The next
   * flush syncs the file, whatever it writes, so that nothing durable (a checkpoint, a clean
   * close) vouches for bytes a power cut could still take back.
   */
  syncOnNextFlush(): void {
    this.syncRequests++;
  }

  /**
   * Make [0, `to`) usable: empty the distrusted part of the allocation (in steps, yielding to
   * the event loop), then allocate the rest (off the main thread; with `sync` its zeros are
   * synced too), ALLOCATE_STEP_BYTES at a time; `onStep` hears each step that made more bytes
   * usable. One growth at a time, driven by MappedFileQueue.
   */
  async grow(to: number, sync: boolean, onStep?: () => void): Promise<void> {
    const target = Math.min(to, this.sizeBytes);
    for (let at = this.usableBytes; at < Math.min(target, this.allocated);) {
      const end = Math.min(target, this.allocated, at + EMPTY_STEP_BYTES);
      this.checkOpen();
      if (this.emptyStep(at, end)) this.syncRequests++;
      this.usableBytes = at = end;
      if (at < Math.min(target, this.allocated)) await yieldTurn();
    }
    // The allocation in steps, each usable as soon as its zeros are written: a fast writer
    // that catches up with a large growth waits for one step, not for all of it.
    while (this.allocated < target) {
      this.checkOpen();
      const end = Math.min(target, this.allocated + ALLOCATE_STEP_BYTES);
      await this.file.grow(end, sync);
      this.remap();
      this.usableBytes = end;
      onStep?.();
    }
    if (target > this.usableBytes) this.usableBytes = target;
  }

  /** `grow` on the main thread, without yielding or syncing: for a few KiB. */
  growSync(to: number): void {
    const target = Math.min(to, this.sizeBytes);
    const kept = Math.min(target, this.allocated);
    if (this.usableBytes < kept) this.empty(this.usableBytes, kept);
    if (target > this.allocated) {
      this.file.growSync(target);
      this.remap();
    }
    if (target > this.usableBytes) this.usableBytes = target;
  }

  /** A growth under way stops at its next step (the file is being closed). */
  stopGrowth(): void {
    this.growthStopped = true;
  }

  private checkOpen(): void {
    if (this.closed || this.growthStopped) {
      throw new PocketMQError('STORE_CLOSED', `${this.path} is closed`);
    }
  }

  /** Bytes not known to be on disk: written past the flushed position, or a sync requested. */
  get needsFlush(): boolean {
    return this.publishedPos > this.flushedPos || this.wrotePos > this.publishedPos ||
      this.syncRequests > this.syncedRequests;
  }

  /**
   * A place to encode `length` bytes at the write position, or null when they do not fit.
   * The caller encodes there and then calls `advance(length)`. The object is reused by the
   * next call.
   */
  target(length: number): AppendTarget | null {
    if (this.writeFailure !== null) throw this.writeFailure;
    if (length > this.remaining) return null;
    assert(this.wrotePos + length <= this.usableBytes, 'append past the usable bytes');
    const place = this.place;
    if (this.direct) {
      if (this.mapping === null) this.useMapping();
      place.at = this.wrotePos;
      return place;
    }
    const staged = this.wrotePos - this.publishedPos;
    if (this.window === null || staged + length > this.window.length) {
      if (staged > 0) this.publish();
      if (this.window === null || length > this.window.length) {
        this.window = Buffer.alloc(Math.max(this.windowBytes, length));
        this.windowDv = dataView(this.window);
      }
    }
    place.buf = this.window;
    place.dv = this.windowDv!;
    place.at = this.wrotePos - this.publishedPos;
    return place;
  }

  advance(length: number): void {
    assert(length > 0 && this.wrotePos + length <= this.usableBytes, 'advance past the end');
    this.wrotePos += length;
    if (this.direct) this.publishedPos = this.wrotePos;
  }

  /** Write the staged window into the file as one contiguous run. */
  publish(): void {
    if (this.writeFailure !== null) throw this.writeFailure;
    const staged = this.wrotePos - this.publishedPos;
    if (staged === 0) return;
    assert(this.window !== null, 'staged bytes without a window');
    try {
      this.file.write(this.publishedPos, this.window.subarray(0, staged));
    } catch (err) {
      this.writeFailure = err;
      throw err;
    }
    this.publishedPos = this.wrotePos;
  }

  /**
   * Readers see what is in the file: a read past `published` publishes the staged window first
   * (the write the end of the turn would make). When that write fails the read does not report
   * it: the end-of-turn publish that every staged append scheduled throws it again and stops the
   * store. Records are then read up to `readable` only (see `view` for the staged bytes).
   */
  private publishForRead(): void {
    if (this.writeFailure !== null) return;
    try {
      this.publish();
    } catch (err) {
      if (err !== this.writeFailure) throw err;
    }
  }

  /** Commit, then fdatasync; resolves with the flushed position. */
  async flush(): Promise<number> {
    this.publish();
    const target = this.publishedPos;
    const requests = this.syncRequests;
    if (target === this.flushedPos && requests === this.syncedRequests) return this.flushedPos;
    // A closed file cannot be synced: never report its bytes flushed (a SYNC_FLUSH waiter would
    // be told SEND_OK for data that is not on disk).
    if (this.closed) throw new PocketMQError('STORE_CLOSED', `${this.path} is closed`);
    const resets = this.resets;
    await this.file.flush();
    if (requests > this.syncedRequests) this.syncedRequests = requests;
    // The positions moved back while the sync ran (a follower cut its tail): what it synced
    // past them is no longer data, and what is there now may not be synced.
    if (resets !== this.resets) return this.flushedPos;
    if (target > this.flushedPos) this.flushedPos = target;
    assert(this.wrotePos >= this.publishedPos && this.publishedPos >= this.flushedPos,
      'positions out of order');
    return this.flushedPos;
  }

  /**
   * Bytes [position, position + length) without a copy where mapped. `map` false: a file not
   * mapped yet is read (a copy) and stays unmapped.
   */
  view(position: number, length: number, map = true): Buffer {
    assert(position >= 0 && position + length <= this.sizeBytes, 'read outside the file');
    if (position + length > this.publishedPos) this.publishForRead();
    if (this.writeFailure !== null && position + length > this.publishedPos) {
      // A failed window write: the staged bytes are read from the window, never from what the
      // failed write left in the file. (A commit-log reader ends at `readable` before them: a
      // ConsumeQueue entry read here leads to a record only if the record reached its file.)
      const out = Buffer.alloc(length);
      const kept = Math.max(0, this.publishedPos - position);
      if (kept > 0) this.view(position, kept, map).copy(out);
      const from = position + kept - this.publishedPos;
      const to = Math.min(position + length, this.wrotePos) - this.publishedPos;
      if (to > from) this.window!.copy(out, kept, from, to);
      return out;
    }
    const allocated = this.allocated;
    if (position + length > allocated) {
      // The missing part of a short file reads as zeros.
      const out = Buffer.alloc(length);
      if (position < allocated) this.view(position, allocated - position, map).copy(out);
      return out;
    }
    const mapping = map ? this.mappingNow() : this.mapping;
    if (mapping !== null) return mapping.subarray(position, position + length);
    return this.file.read(position, length);
  }

  /**
   * The allocated bytes for scanning (the rest of a short file is zeros), and a DataView on
   * them. Only [0, `readable`) holds records: after a failed window write the bytes past it are
   * whatever that write left.
   */
  scanBuffer(): { buf: Buffer; dv: DataView } {
    this.publishForRead();
    if (this.mappingNow() !== null) return this.mappingScan!;
    const buf = this.file.read(0, this.allocated);
    return { buf, dv: dataView(buf) };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      // A window whose write failed is dropped: it is never written.
      if (this.writeFailure === null) this.publish();
    } finally {
      this.file.close();
    }
  }
}
