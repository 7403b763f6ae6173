/**
 * CommitLog: every record of every topic, appended to one log of fixed-size segments
 * (`<dir>/commitlog/<20-digit start offset>`). Record layout: record-codec.ts.
 *
 * It owns the physical side: where a record goes, its queue offset (the next one for its topic
 * and queue), its store timestamp (never going backwards), segment rolls with a blank marker.
 * Each appended record is handed to `dispatch` at once so ConsumeQueue and index follow the log.
 *
 * Invariants: records are contiguous within a segment and never span two; a segment that cannot
 * take the next record is sealed with a blank marker; queue offsets per queue are consecutive.
 */
import { channel } from 'node:diagnostics_channel';
import { channels } from '../channels.js';
import { assert, PocketMQError } from '../errors.js';
import type { Clock } from './clock.js';
import type { IoBackend } from './io/backend.js';
import type { AppendTarget, MappedFile } from './mapped-file.js';
import type { RecordCursor } from './record-cursor.js';
import { MappedFileQueue, type TailState } from './mapped-file-queue.js';
import { LatencyHistogram } from './latency-histogram.js';
import { limits } from '../limits.js';
import { LogReader } from './log-reader.js';
import { BLANK_BYTES, encodeBlank, encodeRecord, type PreparedRecord } from './record-codec.js';
import type { StoredRecord } from './record-decoder.js';
import type { PutStatus } from './put-status.js';
import { monotonicMs } from '../builtins.js';

/** Each fdatasync that moved the flushed offset: { log, fromOffset, toOffset, durationMs }. */
const flushChannel = channel(channels.flush);

export interface AppendResult {
  /**
   * PUT_OK from the log; the store sets FLUSH_DISK_TIMEOUT (or, SYNC_MASTER, a follower's
   * FLUSH_SLAVE_TIMEOUT / SLAVE_NOT_AVAILABLE) before handing it out if so.
   */
  status: PutStatus;
  readonly physicalOffset: number;
  readonly size: number;
  readonly queueOffset: number;
  readonly storeTimestamp: number;
  /** The record's checksum: with its offset it identifies these exact bytes. */
  readonly checksum: number;
}

/** What ConsumeQueue and index need of a record. */
export interface DispatchRequest {
  readonly topic: string;
  readonly queueId: number;
  readonly queueOffset: number;
  readonly physicalOffset: number;
  readonly size: number;
  readonly tagsCode: number;
  readonly storeTimestamp: number;
  readonly keys: readonly string[] | undefined;
  readonly uniqKey: string | undefined;
}

/** Called for every appended record, in log order. */
export type Dispatcher = (request: DispatchRequest) => void;

/** Where an appended record went: what a run's dispatch takes from each AppendResult. */
export interface DispatchPlacement {
  readonly queueOffset: number;
  readonly physicalOffset: number;
  readonly size: number;
  readonly storeTimestamp: number;
}

/**
 * Called instead of `Dispatcher` for each record of a multi-record append (one topic and queue,
 * consecutive queue offsets), once for all of them.
 */
export type RunDispatcher = (records: readonly PreparedRecord[],
  placed: readonly DispatchPlacement[]) => void;

export interface CommitLogOptions {
  readonly backend: IoBackend;
  readonly dir: string;
  readonly segmentSizeBytes: number;
  readonly windowBytes: number;
  readonly clock: Clock;
  readonly readOnly?: boolean;
  /** fdatasync new segments' zeros before use (SYNC_FLUSH latency). */
  readonly syncAllocation?: boolean;
}

/**
 * The first allocation of a log's first segment; it grows (fourfold) as it fills, so a small
 * store takes little disk and its first open writes little.
 */
export const FIRST_SEGMENT_BYTES = limits.minSegmentBytes;

export class CommitLog {
  readonly queue: MappedFileQueue;
  /** Reads of checked records (`read`, `seek`, `iterate`). */
  private readonly reader: LogReader;
  /** Next queue offset per topic and queue id. */
  private readonly queueOffsets = new Map<string, number[]>();
  /** The last topic's entry of queueOffsets: most appends go to the topic of the one before. */
  private lastTopic: string | null = null;
  private lastOffsets: number[] = [];
  private lastStoreTimestamp = 0;
  private lastRecordStart = -1;
  private flushedTail = -1;
  private rolling: Promise<MappedFile> | null = null;
  /** Allocation of the next segments starts once the last one holds this much. */
  private readonly preallocateFromBytes: number;
  /** Told of every appended record; the request object is reused: read it during the call. */
  dispatch: Dispatcher = () => undefined;
  /** A multi-record append's dispatch; null: `dispatch` for each record. */
  dispatchRun: RunDispatcher | null = null;
  private readonly request: { -readonly [K in keyof DispatchRequest]: DispatchRequest[K] } = {
    topic: '', queueId: 0, queueOffset: 0, physicalOffset: 0, size: 0, tagsCode: 0,
    storeTimestamp: 0, keys: undefined, uniqKey: undefined,
  };
  /** How long each fdatasync that moved the flushed offset took. */
  readonly flushLatency = new LatencyHistogram();

  constructor(private readonly options: CommitLogOptions) {
    this.preallocateFromBytes = options.segmentSizeBytes / 16;
    this.queue = new MappedFileQueue({
      backend: options.backend, dir: options.dir, fileSizeBytes: options.segmentSizeBytes,
      windowBytes: options.windowBytes, preallocate: !options.readOnly,
      syncAllocation: options.syncAllocation ?? false,
      readOnly: options.readOnly ?? false, initialBytes: FIRST_SEGMENT_BYTES,
    });
    this.reader = new LogReader(this.queue);
  }

  get segmentSizeBytes(): number {
    return this.options.segmentSizeBytes;
  }
  get minOffset(): number {
    return this.queue.minOffset;
  }
  /** End of the data: where the next record goes. */
  get maxOffset(): number {
    return this.queue.wroteWhere;
  }
  /** Where reads end: `maxOffset`, or what reached the file once a window write failed. */
  get readableOffset(): number {
    const last = this.queue.last;
    return last === undefined ? this.queue.minOffset : last.fileFromOffset + last.readable;
  }
  get flushedOffset(): number {
    return this.queue.flushedWhere;
  }
  /** Start of the last record known flushed, for the checkpoint (-1 if none). */
  get flushedTailOffset(): number {
    return this.flushedTail;
  }
  /** The largest store timestamp handed out so far. */
  get maxStoreTimestamp(): number {
    return this.lastStoreTimestamp;
  }

  /**
   * Recovery tells the log where its data ends and what it last held. Only `durableOffset` (the
   * checkpoint's flushed offset) counts as flushed, with `durableTail` its last record: what
   * recovery found beyond it may be in the page cache only, until the next flush.
   */
  setRecovered(endOffset: number, lastRecordStart: number, lastStoreTimestamp: number,
    durableOffset: number, durableTail: number, tail: TailState): void {
    this.queue.truncateDirty(endOffset, durableOffset, tail);
    this.lastRecordStart = lastRecordStart;
    this.flushedTail = durableOffset >= endOffset ? lastRecordStart
      : Math.min(durableTail, lastRecordStart);
    this.lastStoreTimestamp = Math.max(this.lastStoreTimestamp, lastStoreTimestamp);
  }

  nextQueueOffset(topic: string, queueId: number): number {
    return this.offsetsOf(topic)[queueId] ?? 0;
  }

  setQueueOffset(topic: string, queueId: number, next: number): void {
    this.offsetsOf(topic)[queueId] = next;
  }

  /** Next queue offsets of `topic`'s queues, by queue id (made empty for a new topic). */
  private offsetsOf(topic: string): number[] {
    if (topic === this.lastTopic) return this.lastOffsets;
    let offsets = this.queueOffsets.get(topic);
    if (offsets === undefined) this.queueOffsets.set(topic, (offsets = []));
    this.lastTopic = topic;
    this.lastOffsets = offsets;
    return offsets;
  }

  /** True while a roll waits for its segment (or the segment to grow): appends queue behind. */
  get blocked(): boolean {
    return this.rolling !== null;
  }

  /** A promise that settles when the pending roll does (rejecting with its error). */
  whenUnblocked(): Promise<unknown> {
    return this.rolling ?? Promise.resolve();
  }

  /**
   * Append records as one contiguous run in one segment, all or nothing. Returns null when the
   * segment had to be sealed and the next one is not allocated yet: wait on `whenUnblocked()`
   * and call again.
   */
  append(records: readonly PreparedRecord[]): AppendResult[] | null {
    let total = 0;
    for (const r of records) total += r.size;
    const file = this.fileFor(total);
    if (file === null) return null;
    const target = file.target(total)!;
    const storeTimestamp = this.storeTimestamp();
    const results: AppendResult[] = [];
    let at = target.at;
    const last = records.length - 1;
    for (let i = 0; i <= last; i++) {
      const rec = records[i]!;
      results.push(this.writeOne(target, at, file.fileFromOffset + file.wrote + at - target.at,
        rec, storeTimestamp, i < last));
      at += rec.size;
    }
    file.advance(total);
    if (this.dispatchRun !== null && records.length > 1) this.dispatchRun(records, results);
    else for (let i = 0; i < records.length; i++) this.dispatchOne(records[i]!, results[i]!);
    return results;
  }

  /** `append` of a single record, without the arrays. */
  appendOne(rec: PreparedRecord): AppendResult | null {
    const file = this.fileFor(rec.size);
    if (file === null) return null;
    const target = file.target(rec.size)!;
    const result = this.writeOne(target, target.at, file.fileFromOffset + file.wrote, rec,
      this.storeTimestamp());
    file.advance(rec.size);
    this.dispatchOne(rec, result);
    return result;
  }

  /** The segment that takes `total` more bytes, rolling if needed; null while a roll waits. */
  private fileFor(total: number): MappedFile | null {
    assert(this.rolling === null, 'append while a roll is pending');
    if (total + BLANK_BYTES > this.segmentSizeBytes) {
      throw new PocketMQError('MESSAGE_TOO_LARGE', `an append of ${total} bytes (records ` +
        `encoded) does not fit in a segment of ${this.segmentSizeBytes} bytes (option ` +
        'commitLogSegmentSize)', { limit: this.segmentSizeBytes - BLANK_BYTES, actual: total });
    }
    const file = this.queue.last ?? this.queue.createFirst(0);
    if (file.wrote >= this.preallocateFromBytes) this.queue.startPreallocation();
    const fits = file.remaining >= total + BLANK_BYTES;
    // The common case, kept small for the JIT: a file allocated in full with room.
    if (fits && file.usable === file.sizeBytes) return file;
    return this.fileForSlow(file, total, fits);
  }

  /** Room for the record and a blank marker after it, or for the marker that seals the file. */
  private fileForSlow(file: MappedFile, total: number, fits: boolean): MappedFile | null {
    const growing = this.queue.makeRoom(fits ? total + BLANK_BYTES
      : Math.min(BLANK_BYTES, file.remaining));
    if (growing !== null) {
      this.block(growing.then(() => file));
      return null;
    }
    return fits ? file : this.rollFrom(file);
  }

  /** Appends wait for `next` (a roll or a growth); it settles before they go on. */
  private block(next: Promise<MappedFile>): void {
    const pending = next.finally(() => {
      if (this.rolling === pending) this.rolling = null;
    });
    pending.catch(() => undefined);
    this.rolling = pending;
  }

  /**
   * The clock, read for every append (a batch shares one time): appends of one busy turn may
   * lie milliseconds apart, and searchOffset, CONSUME_FROM_TIMESTAMP and time-bounded queries
   * rely on each message's own time. Never below the last time handed out.
   */
  private storeTimestamp(): number {
    const now = this.options.clock.now();
    if (now > this.lastStoreTimestamp) this.lastStoreTimestamp = now;
    return this.lastStoreTimestamp;
  }

  private writeOne(target: AppendTarget, at: number, physicalOffset: number, rec: PreparedRecord,
    storeTimestamp: number, more = false): AppendResult {
    const { topic, queueId } = rec.input;
    const offsets = this.offsetsOf(topic);
    const queueOffset = offsets[queueId] ?? 0;
    offsets[queueId] = queueOffset + 1;
    const checksum = encodeRecord(target.buf, target.dv, at, rec, queueOffset, physicalOffset,
      storeTimestamp, more);
    this.lastRecordStart = physicalOffset;
    return { status: 'PUT_OK', physicalOffset, size: rec.size, queueOffset, storeTimestamp,
      checksum };
  }

  private dispatchOne(rec: PreparedRecord, res: AppendResult): void {
    const req = this.request;
    req.topic = rec.input.topic;
    req.queueId = rec.input.queueId;
    req.queueOffset = res.queueOffset;
    req.physicalOffset = res.physicalOffset;
    req.size = rec.size;
    req.tagsCode = rec.tagsCode;
    req.storeTimestamp = res.storeTimestamp;
    req.keys = rec.input.keys;
    req.uniqKey = rec.input.uniqKey;
    this.dispatch(req);
  }

  private rollFrom(file: MappedFile): MappedFile | null {
    if (!file.isFull) {
      const target = file.target(file.remaining)!;
      encodeBlank(target.buf, target.dv, target.at, file.remaining);
      file.advance(file.remaining);
    }
    const next = this.queue.roll();
    if (!(next instanceof Promise)) return next;
    this.block(next);
    return null;
  }

  /**
   * A follower (ReplicaLog): place whole frames, checked by the caller, at the end of the log,
   * which is `offset`; a blank marker last stands for `sealedBytes` (the rest of its segment).
   * Rolls to the next segment first when the last one is full.
   */
  async placeReplicated(offset: number, frames: Buffer, sealedBytes: number): Promise<void> {
    assert(this.rolling === null, 'replicated frames while a roll is pending');
    let file = this.queue.last ?? this.queue.createFirst(offset);
    if (file.isFull) {
      const next = this.queue.roll();
      file = next instanceof Promise ? await next : next;
    }
    assert(file.fileFromOffset + file.wrote === offset, 'replicated frames not at the log end');
    const length = sealedBytes > 0 ? frames.length - BLANK_BYTES + sealedBytes : frames.length;
    // Segments start small and grow as they fill: wait for the room the frames take.
    for (let growing = this.queue.makeRoom(length); growing !== null;
      growing = this.queue.makeRoom(length)) {
      await growing;
    }
    const target = file.target(length);
    assert(target !== null, 'replicated frames do not fit the segment');
    target.buf.set(frames, target.at);
    file.advance(length);
    if (file.wrote >= this.preallocateFromBytes) this.queue.startPreallocation();
  }

  /** A follower placed records, the last at `lastRecordStart`, stored at `storeTimestamp`. */
  noteReplicated(lastRecordStart: number, storeTimestamp: number): void {
    this.lastRecordStart = lastRecordStart;
    if (storeTimestamp > this.lastStoreTimestamp) this.lastStoreTimestamp = storeTimestamp;
  }

  /**
   * A follower's diverged tail: the log ends at `offset` (the end of the record at
   * `lastRecordStart`, -1 when none is left). Queue offsets are the caller's to reset.
   */
  truncateTo(offset: number, lastRecordStart: number): void {
    assert(this.rolling === null, 'truncation while a roll is pending');
    this.queue.publish();
    this.queue.truncateDirty(offset, Math.min(this.flushedOffset, offset));
    this.lastRecordStart = lastRecordStart;
    this.flushedTail = Math.min(this.flushedTail, lastRecordStart);
  }

  /** A follower's empty log starts over at `offset` (a segment start). */
  async restartAt(offset: number): Promise<void> {
    assert(this.rolling === null && this.maxOffset === this.minOffset, 'restart of a used log');
    this.queue.removeAll();
    this.queue.createFirst(offset);
    this.lastRecordStart = -1;
    this.flushedTail = -1;
  }

  /** Commit staged appends (end of an event-loop turn). */
  publish(): void {
    this.queue.publish();
  }

  /** fdatasync what is published; resolves with the flushed offset. */
  async flush(): Promise<number> {
    this.queue.publish();
    const tail = this.lastRecordStart;
    const from = this.queue.flushedWhere;
    const startedMs = monotonicMs();
    const flushed = await this.queue.flush();
    if (tail >= 0 && tail < flushed && tail > this.flushedTail) this.flushedTail = tail;
    if (flushed > from) this.flushLatency.record((monotonicMs() - startedMs) * 1000);
    if (flushChannel.hasSubscribers && flushed > from) {
      flushChannel.publish({ log: 'commitlog', fromOffset: from, toOffset: flushed,
        durationMs: monotonicMs() - startedMs });
    }
    return flushed;
  }

  /** See LogReader.read. */
  read(offset: number, zeroCopy = false): StoredRecord | null {
    return this.reader.read(offset, zeroCopy);
  }

  /** See LogReader.readWithoutMapping. */
  readWithoutMapping(offset: number): StoredRecord | null {
    return this.reader.readWithoutMapping(offset);
  }

  /** See LogReader.seek. */
  seek(offset: number, cursor: RecordCursor): boolean {
    return this.reader.seek(offset, cursor);
  }

  /** See LogReader.iterate. */
  iterate(offset: number, zeroCopy = false): Generator<StoredRecord> {
    return this.reader.iterate(offset, zeroCopy);
  }

  close(): void {
    this.queue.close();
  }
}
