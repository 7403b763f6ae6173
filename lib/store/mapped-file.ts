/**
 * MappedFile: one fixed-size file of a log (a commit-log segment or a ConsumeQueue file), named by
 * the global offset of its first byte, with three positions that only move forward:
 *
 *    0 ........ flushed ........ committed ........ wrote ........ size
 *    |  durable  |  in the file,  |  staged in the   |    empty
 *    |           |  not yet synced|  write window    |
 *
 * wrote >= committed >= flushed always. Appends are either encoded straight into the mapping
 * (`direct`: committed = wrote) or staged in a write window and committed as one contiguous
 * pwrite per event-loop turn (always without a mapping; by choice with one, as the commit log
 * does: pwrite then fdatasync is faster than stores through a mapping then fdatasync, and reads
 * still come from the mapping).
 */
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

export class MappedFile {
  readonly fileFromOffset: number;
  readonly sizeBytes: number;
  private wrotePos = 0;
  private committedPos = 0;
  private flushedPos = 0;
  /** Recovery emptied bytes of this file that no flush has synced yet. */
  private syncDue = false;
  private readonly mapping: Buffer | null;
  private readonly mappingDv: DataView | null;
  private readonly mappingScan: { readonly buf: Buffer; readonly dv: DataView } | null;
  /** Appends encode into the mapping itself (no window). */
  private readonly direct: boolean;
  private window: Buffer | null = null;
  private windowDv: DataView | null = null;
  private readonly windowBytes: number;
  private closed = false;
  /**
   * The error of a window write that failed. What the file holds past `committed` is unknown
   * after it, so the write is never retried: every later append or commit throws it (the store
   * stops; reopening recovers what reached the file), and reads end at `committed`.
   */
  private writeFailure: unknown = null;
  /** What `target` hands out, reused until its next call: an object per append costs GC. */
  private readonly place: AppendTarget;

  /** `windowBytes` 0 = encode straight into the mapping where there is one. */
  constructor(readonly file: BackendFile, fileFromOffset: number, windowBytes: number) {
    this.fileFromOffset = fileFromOffset;
    this.sizeBytes = file.size();
    this.mapping = file.mapping;
    this.mappingDv = this.mapping === null ? null : dataView(this.mapping);
    this.mappingScan = this.mapping === null ? null : { buf: this.mapping, dv: this.mappingDv! };
    this.direct = this.mapping !== null && windowBytes === 0;
    this.windowBytes = windowBytes === 0 ? 64 * 1024 : windowBytes;
    const buf = this.mapping ?? Buffer.alloc(0);
    this.place = { buf, dv: this.mappingDv ?? dataView(buf), at: 0 };
  }

  get path(): string {
    return this.file.path;
  }
  get wrote(): number {
    return this.wrotePos;
  }
  get committed(): number {
    return this.committedPos;
  }
  get flushed(): number {
    return this.flushedPos;
  }
  get remaining(): number {
    return this.sizeBytes - this.wrotePos;
  }
  get isFull(): boolean {
    return this.wrotePos === this.sizeBytes;
  }
  get mapped(): boolean {
    return this.mapping !== null;
  }
  /**
   * Where reads of records end: every append, or only what reached the file once a window
   * write failed.
   */
  get readable(): number {
    return this.writeFailure === null ? this.wrotePos : this.committedPos;
  }

  /**
   * Recovery sets where the data ends: wrote and committed move there, bytes beyond are emptied.
   * Only `durable` bytes (what a checkpoint says was flushed) count as flushed: the rest may sit
   * in the page cache only (a process crash) and the emptying is a write too, so the next flush
   * syncs them before anything claims them durable.
   */
  resetPositions(position: number, durable = 0): void {
    assert(position >= 0 && position <= this.sizeBytes, 'position outside the file');
    assert(this.committedPos === this.wrotePos, 'reset with staged appends');
    if (position < this.sizeBytes) {
      this.file.truncate(position);
      // The emptying is a write beyond `position`: a flush is due even if nothing is before.
      this.syncDue = true;
    }
    this.wrotePos = this.committedPos = position;
    this.flushedPos = Math.max(0, Math.min(durable, position));
  }

  /** Bytes not known to be on disk: written past the flushed position, or emptied by recovery. */
  get needsFlush(): boolean {
    return this.committedPos > this.flushedPos || this.wrotePos > this.committedPos ||
      this.syncDue;
  }

  /**
   * A place to encode `length` bytes at the write position, or null when they do not fit.
   * The caller encodes there and then calls `advance(length)`. The object is reused by the
   * next call.
   */
  target(length: number): AppendTarget | null {
    if (this.writeFailure !== null) throw this.writeFailure;
    if (length > this.remaining) return null;
    const place = this.place;
    if (this.direct) {
      place.at = this.wrotePos;
      return place;
    }
    const staged = this.wrotePos - this.committedPos;
    if (this.window === null || staged + length > this.window.length) {
      if (staged > 0) this.commit();
      if (this.window === null || length > this.window.length) {
        this.window = Buffer.alloc(Math.max(this.windowBytes, length));
        this.windowDv = dataView(this.window);
      }
    }
    place.buf = this.window;
    place.dv = this.windowDv!;
    place.at = this.wrotePos - this.committedPos;
    return place;
  }

  advance(length: number): void {
    assert(length > 0 && this.wrotePos + length <= this.sizeBytes, 'advance past the end');
    this.wrotePos += length;
    if (this.direct) this.committedPos = this.wrotePos;
  }

  /** Write the staged window into the file as one contiguous run. */
  commit(): void {
    if (this.writeFailure !== null) throw this.writeFailure;
    const staged = this.wrotePos - this.committedPos;
    if (staged === 0) return;
    assert(this.window !== null, 'staged bytes without a window');
    try {
      this.file.write(this.committedPos, this.window.subarray(0, staged));
    } catch (err) {
      this.writeFailure = err;
      throw err;
    }
    this.committedPos = this.wrotePos;
  }

  /**
   * Readers see what is in the file: a read past `committed` commits the staged window first
   * (the write the end of the turn would make). When that write fails the read does not report
   * it: the end-of-turn commit that every staged append scheduled throws it again and stops the
   * store. Records are then read up to `readable` only (see `view` for the staged bytes).
   */
  private commitForRead(): void {
    if (this.writeFailure !== null) return;
    try {
      this.commit();
    } catch (err) {
      if (err !== this.writeFailure) throw err;
    }
  }

  /** Commit, then fdatasync; resolves with the flushed position. */
  async flush(): Promise<number> {
    this.commit();
    const target = this.committedPos;
    if (target === this.flushedPos && !this.syncDue) return this.flushedPos;
    // A closed file cannot be synced: never report its bytes flushed (a SYNC_FLUSH waiter would
    // be told SEND_OK for data that is not on disk).
    if (this.closed) throw new PocketMQError('STORE_CLOSED', `${this.path} is closed`);
    const due = this.syncDue;
    await this.file.flush();
    if (due) this.syncDue = false;
    if (target > this.flushedPos) this.flushedPos = target;
    assert(this.wrotePos >= this.committedPos && this.committedPos >= this.flushedPos,
      'positions out of order');
    return this.flushedPos;
  }

  /** Bytes [position, position + length) without a copy where mapped. */
  view(position: number, length: number): Buffer {
    assert(position >= 0 && position + length <= this.sizeBytes, 'read outside the file');
    if (position + length > this.committedPos) this.commitForRead();
    if (this.writeFailure !== null && position + length > this.committedPos) {
      // A failed window write: the staged bytes are read from the window, never from what the
      // failed write left in the file. (A commit-log reader ends at `readable` before them: a
      // ConsumeQueue entry read here leads to a record only if the record reached its file.)
      const out = Buffer.alloc(length);
      const kept = Math.max(0, this.committedPos - position);
      if (kept > 0) this.view(position, kept).copy(out);
      const from = position + kept - this.committedPos;
      const to = Math.min(position + length, this.wrotePos) - this.committedPos;
      if (to > from) this.window!.copy(out, kept, from, to);
      return out;
    }
    if (this.mapping !== null) return this.mapping.subarray(position, position + length);
    return this.file.read(position, length);
  }

  /**
   * The whole file's bytes for scanning, and a DataView on them. Only [0, `readable`) holds
   * records: after a failed window write the bytes past it are whatever that write left.
   */
  scanBuffer(): { buf: Buffer; dv: DataView } {
    this.commitForRead();
    if (this.mappingScan !== null) return this.mappingScan;
    const buf = this.file.read(0, this.sizeBytes);
    return { buf, dv: dataView(buf) };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      // A window whose write failed is dropped: it is never written.
      if (this.writeFailure === null) this.commit();
    } finally {
      this.file.close();
    }
  }
}
