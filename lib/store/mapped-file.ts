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
import { assert } from '../errors.js';
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
  readonly buf: Buffer;
  readonly dv: DataView;
  readonly at: number;
}

export class MappedFile {
  readonly fileFromOffset: number;
  readonly sizeBytes: number;
  private wrotePos = 0;
  private committedPos = 0;
  private flushedPos = 0;
  private readonly mapping: Buffer | null;
  private readonly mappingDv: DataView | null;
  private readonly mappingScan: { readonly buf: Buffer; readonly dv: DataView } | null;
  /** Appends encode into the mapping itself (no window). */
  private readonly direct: boolean;
  private window: Buffer | null = null;
  private windowDv: DataView | null = null;
  private readonly windowBytes: number;
  private closed = false;

  /** `windowBytes` 0 = encode straight into the mapping where there is one. */
  constructor(readonly file: BackendFile, fileFromOffset: number, windowBytes: number) {
    this.fileFromOffset = fileFromOffset;
    this.sizeBytes = file.size();
    this.mapping = file.mapping;
    this.mappingDv = this.mapping === null ? null : dataView(this.mapping);
    this.mappingScan = this.mapping === null ? null : { buf: this.mapping, dv: this.mappingDv! };
    this.direct = this.mapping !== null && windowBytes === 0;
    this.windowBytes = windowBytes === 0 ? 64 * 1024 : windowBytes;
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
   * Recovery sets where the data ends; everything is on disk already, so all three positions move
   * there. Bytes beyond it are emptied.
   */
  resetPositions(position: number): void {
    assert(position >= 0 && position <= this.sizeBytes, 'position outside the file');
    assert(this.committedPos === this.wrotePos, 'reset with staged appends');
    if (position < this.sizeBytes) this.file.truncate(position);
    this.wrotePos = this.committedPos = this.flushedPos = position;
  }

  /**
   * A place to encode `length` bytes at the write position, or null when they do not fit.
   * The caller encodes there and then calls `advance(length)`.
   */
  target(length: number): AppendTarget | null {
    if (length > this.remaining) return null;
    if (this.direct) return { buf: this.mapping!, dv: this.mappingDv!, at: this.wrotePos };
    const staged = this.wrotePos - this.committedPos;
    if (this.window === null || staged + length > this.window.length) {
      if (staged > 0) this.commit();
      if (this.window === null || length > this.window.length) {
        this.window = Buffer.alloc(Math.max(this.windowBytes, length));
        this.windowDv = dataView(this.window);
      }
    }
    return { buf: this.window, dv: this.windowDv!, at: this.wrotePos - this.committedPos };
  }

  advance(length: number): void {
    assert(length > 0 && this.wrotePos + length <= this.sizeBytes, 'advance past the end');
    this.wrotePos += length;
    if (this.direct) this.committedPos = this.wrotePos;
  }

  /** Write the staged window into the file as one contiguous run. */
  commit(): void {
    const staged = this.wrotePos - this.committedPos;
    if (staged === 0) return;
    assert(this.window !== null, 'staged bytes without a window');
    this.file.write(this.committedPos, this.window.subarray(0, staged));
    this.committedPos = this.wrotePos;
  }

  /** Commit, then fdatasync; resolves with the flushed position. */
  async flush(): Promise<number> {
    this.commit();
    const target = this.committedPos;
    if (target === this.flushedPos || this.closed) return this.flushedPos;
    await this.file.flush();
    if (target > this.flushedPos) this.flushedPos = target;
    assert(this.wrotePos >= this.committedPos && this.committedPos >= this.flushedPos,
      'positions out of order');
    return this.flushedPos;
  }

  /** Bytes [position, position + length) without a copy where mapped. */
  view(position: number, length: number): Buffer {
    assert(position >= 0 && position + length <= this.sizeBytes, 'read outside the file');
    if (position + length > this.committedPos) this.commit();
    if (this.mapping !== null) return this.mapping.subarray(position, position + length);
    return this.file.read(position, length);
  }

  /** The whole file's bytes for scanning, and a DataView on them. */
  scanBuffer(): { buf: Buffer; dv: DataView } {
    this.commit();
    if (this.mappingScan !== null) return this.mappingScan;
    const buf = this.file.read(0, this.sizeBytes);
    return { buf, dv: dataView(buf) };
  }

  close(): void {
    if (this.closed) return;
    this.commit();
    this.closed = true;
    this.file.close();
  }
}
