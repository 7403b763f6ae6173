/**
 * ReplicaLog: the commit log seen by replication (lib/replication), byte for byte and at the
 * same offsets on both sides, so message ids hold on master and follower.
 *
 * Master side: `readChunk` hands out whole frames from an offset (records, and the blank marker
 * that seals a segment, never the zeros after it); `frameMatches` and `tailMatches` tell whether
 * a follower's records are the master's.
 *
 * Follower side: `append` takes frames received from a master and writes them at the end of the
 * log only after checking every one of them: each frame is a whole record with a valid frame,
 * checksum, topic name and its own offset, that leaves room for a blank marker in its segment,
 * and whose queue offset continues its queue; a blank marker only last, sealing the segment
 * exactly. Nothing a master sends can place bytes anywhere but at the end of this log. The
 * records then reach ConsumeQueues and index by the normal dispatch, and arrival listeners at
 * the end of the turn. `truncateTo` cuts a diverged tail; `restartAt` moves an empty log.
 *
 * Frames on the wire (a DATA payload) are the log's own bytes: record-codec.ts layout; a blank
 * marker travels as its 12 bytes and stands for the rest of its segment.
 */
import { assert, CorruptDataError, PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import type { CommitLog } from './commit-log.js';
import type { ConsumeQueueTable } from './consume-queue-table.js';
import type { IndexService } from './index-service.js';
import type { Logics } from './logics.js';
import type { MappedFile } from './mapped-file.js';
import { BLANK_BYTES, BLANK_MAGIC, dataView, RECORD_MAGIC } from './record-codec.js';
import {
  checkFrame, frameKind, FRAME_BLANK, readHead, type FrameReason,
} from './record-decoder.js';
import { dispatchOf } from './recovery.js';

/** A record's place and identity: enough for a peer to check it holds the same bytes. */
export interface FrameId {
  readonly offset: number;
  readonly checksum: number;
  readonly size: number;
}

/** Where a log stands: its first and end offsets and its last record (null when empty). */
export interface LogTail {
  readonly minOffset: number;
  readonly maxOffset: number;
  readonly lastRecord: FrameId | null;
}

export interface ReplicaLogHost {
  readonly commitLog: CommitLog;
  readonly queues: ConsumeQueueTable;
  readonly index: IndexService;
  readonly logics: Logics;
  /** Throws unless the store follows a master and may take replicated records now. */
  checkFollowing(): void;
  /** Records were appended: publish and tell arrival listeners at the end of the turn. */
  appended(records: number, bytes: number): void;
}

/** A change of a follower's log: one runs at a time (ReplicaLog.exclusive). */
interface Change {
  readonly what: 'an append' | 'a cut' | 'a restart';
  readonly offset: number;
}

export class ReplicaLog {
  /** The change of the log under way, if any. */
  private changing: Change | null = null;

  constructor(private readonly host: ReplicaLogHost) {}

  private get log(): CommitLog {
    return this.host.commitLog;
  }

  /** Where this log stands; its last record is found by walking its newest segment with data. */
  tail(): LogTail {
    const log = this.log;
    const files = log.queue.files;
    let lastRecord: FrameId | null = null;
    for (let i = files.length - 1; i >= 0 && lastRecord === null; i--) {
      lastRecord = this.lastRecordIn(files[i]!);
    }
    return { minOffset: log.minOffset, maxOffset: log.readableOffset, lastRecord };
  }

  private lastRecordIn(file: MappedFile): FrameId | null {
    if (file.readable === 0) return null;
    const { dv } = file.scanBuffer();
    let last: FrameId | null = null;
    for (let at = 0; at + 12 <= file.readable;) {
      if (dv.getUint32(at + 8, true) !== RECORD_MAGIC) break;
      const size = dv.getUint32(at + 4, true);
      last = { offset: file.fileFromOffset + at, checksum: dv.getUint32(at, true), size };
      at += size;
    }
    return last;
  }

  // ---- master side ----

  /**
   * Whole frames from `from` (a frame start), in one segment, about `maxBytes` (at least one
   * frame): a copy, safe to queue on a socket while retention deletes segments; and where the
   * next chunk starts (the segment's end after a blank marker). Empty when nothing is readable
   * past `from`.
   */
  readChunk(from: number, maxBytes: number): { frames: Buffer; next: number } {
    const log = this.log;
    const none = { frames: Buffer.alloc(0), next: from };
    if (from >= log.readableOffset) return none;
    const file = log.queue.findByOffset(from);
    if (file === undefined) {
      throw new PocketMQError('INVALID_STATE', `the commit log no longer holds offset ${from} ` +
        `(it starts at ${log.minOffset})`, { offset: from });
    }
    const at = from - file.fileFromOffset;
    const readable = file.readable - at;
    if (readable <= 0) return none;
    let view = file.view(at, Math.min(readable, maxBytes));
    let whole = wholeFrames(view, from);
    if (whole.end === 0 && view.length >= 8) {
      // The first record is larger than maxBytes: hand out that one record.
      view = file.view(at, Math.min(readable, view.readUInt32LE(4)));
      whole = wholeFrames(view, from);
    }
    const frames = Buffer.from(view.subarray(0, whole.end));
    return { frames, next: whole.sealed ? file.fileFromOffset + file.sizeBytes
      : from + whole.end };
  }

  /** This log holds the record `id` (same offset, size and checksum). */
  frameMatches(id: FrameId): boolean {
    const log = this.log;
    if (id.offset < log.minOffset || id.offset >= log.readableOffset) return false;
    const record = log.read(id.offset, true);
    if (record === null) this.checkNotDamaged(id.offset);
    return record !== null && record.checksum === id.checksum && record.size === id.size;
  }

  /**
   * A record of this log at `offset` that fails its checksum is a failed read here (a damaged
   * sector, a bit flipped in memory), not a sign that the follower diverged: CORRUPT_DATA, so
   * the follower is not told to cut records it holds right.
   */
  private checkNotDamaged(offset: number): void {
    const file = this.log.queue.findByOffset(offset);
    const at = offset - (file?.fileFromOffset ?? 0);
    if (file === undefined || file.readable - at < 12) return;
    const head = file.view(at, 8);
    const length = Math.min(head.readUInt32LE(4), file.readable - at);
    if (length < 12) return;
    const view = file.view(at, length);
    const { reason } = checkFrame(view, dataView(view), 0, length, offset);
    if (reason === 'checksum') {
      throw new CorruptDataError(`the record at commit-log offset ${offset} fails its checksum ` +
        'on this master: it cannot tell whether the follower holds it', { offset });
    }
  }

  /**
   * A follower whose log ends at `maxOffset` after its record `last` holds a prefix of this
   * log: this log has that record, and from its end to `maxOffset` nothing, or the blank
   * marker that seals the segment there.
   */
  tailMatches(last: FrameId, maxOffset: number): boolean {
    if (maxOffset > this.log.readableOffset || !this.frameMatches(last)) return false;
    const end = last.offset + last.size;
    if (maxOffset === end) return true;
    const file = this.log.queue.findByOffset(end);
    if (file === undefined || maxOffset !== file.fileFromOffset + file.sizeBytes) return false;
    const head = file.view(end - file.fileFromOffset, BLANK_BYTES);
    return head.readUInt32LE(8) === BLANK_MAGIC;
  }

  // ---- follower side ----

  /**
   * Write `frames` received from a master at `offset`, which must be the end of this log,
   * after checking each of them (see the file comment); then dispatch their records. Throws
   * CORRUPT_DATA for frames that fail a check (nothing is written then).
   */
  append(offset: number, frames: Buffer): Promise<number> {
    return this.exclusive({ what: 'an append', offset }, () => this.appendFrames(offset, frames));
  }

  /**
   * Run `run` (the change `change` names) alone: an append, a cut or a restart that began
   * while another had not ended (each waits for the log's files on the way) would write inside
   * it (a cut zeroes what an append placed after its offset and sets the queue offsets back).
   * The replication layer never starts one while another runs; this refuses it, INVALID_STATE,
   * should it ever.
   */
  private async exclusive<T>(change: Change, run: () => Promise<T>): Promise<T> {
    const running = this.changing;
    if (running !== null) {
      throw new PocketMQError('INVALID_STATE', `${change.what} at offset ${change.offset} of ` +
        `the replicated log while ${running.what} at ${running.offset} runs: one change at a ` +
        'time', { offset: change.offset });
    }
    this.changing = change;
    try {
      return await run();
    } finally {
      this.changing = null;
    }
  }

  private async appendFrames(offset: number, frames: Buffer): Promise<number> {
    this.host.checkFollowing();
    const log = this.log;
    if (offset !== log.maxOffset) {
      throw new CorruptDataError(`replicated frames at offset ${offset}, but this log ends at ` +
        `${log.maxOffset}`, { offset });
    }
    const checked = this.check(offset, frames);
    for (const r of checked.records) {
      this.host.queues.reserve(r.topic, r.queueId, r.queueOffset, 1);
      if (r.indexEntries > 0) this.host.index.reserve(r.indexEntries);
    }
    await log.placeReplicated(offset, frames, checked.sealedBytes);
    const dv = dataView(frames);
    let last = -1;
    let lastTimestamp = 0;
    for (const r of checked.records) {
      const at = r.offset - offset;
      const request = dispatchOf(frames, readHead(frames, dv, at), r.offset, r.size);
      log.setQueueOffset(request.topic, request.queueId, request.queueOffset + 1);
      this.host.logics.dispatch(request);
      last = r.offset;
      lastTimestamp = request.storeTimestamp;
    }
    if (last >= 0) log.noteReplicated(last, lastTimestamp);
    this.host.appended(checked.records.length, frames.length);
    return log.maxOffset;
  }

  /** Every frame of `frames` (at `offset`) checked; the records, and the bytes a blank seals. */
  private check(offset: number, frames: Buffer): Checked {
    const log = this.log;
    const segment = log.segmentSizeBytes;
    const segmentEnd = offset - (offset % segment) + segment;
    const bad = (at: number, why: string): CorruptDataError => new CorruptDataError(
      `replicated frame at offset ${offset + at} is invalid: ${why}`, { offset: offset + at });
    if (frames.length === 0 || offset + frames.length > segmentEnd) {
      throw bad(0, `${frames.length} bytes do not fit the segment`);
    }
    const dv = dataView(frames);
    const records: CheckedRecord[] = [];
    const next = new Map<string, number>();
    let sealedBytes = 0;
    const why: FrameReason = { reason: '' };
    for (let at = 0; at < frames.length;) {
      if (frames.length - at >= 12 && dv.getUint32(at + 8, true) === BLANK_MAGIC) {
        const rest = segmentEnd - (offset + at);
        if (at + BLANK_BYTES !== frames.length || dv.getUint32(at + 4, true) !== rest ||
          frameKind(frames, dv, at, at + rest, offset + at) !== FRAME_BLANK) {
          throw bad(at, 'a blank marker that does not seal the segment');
        }
        sealedBytes = rest;
        break;
      }
      const size = frameKind(frames, dv, at, frames.length, offset + at, true, why);
      if (size <= 0) throw bad(at, why.reason);
      if (offset + at + size + BLANK_BYTES > segmentEnd) throw bad(at, 'no room for the blank');
      const head = readHead(frames, dv, at);
      if (head.queueId >= limits.maxQueuesPerTopic) throw bad(at, `queue id ${head.queueId}`);
      const key = `${head.topic}\u0000${head.queueId}`;
      const expected = next.get(key) ?? this.nextQueueOffset(head.topic, head.queueId);
      if (expected !== null && head.queueOffset !== expected) {
        throw bad(at, `queue offset ${head.queueOffset} of ${head.topic}/${head.queueId}, ` +
          `which continues at ${expected}`);
      }
      next.set(key, head.queueOffset + 1);
      const request = dispatchOf(frames, head, offset + at, size);
      records.push({ offset: offset + at, size, topic: head.topic, queueId: head.queueId,
        queueOffset: head.queueOffset,
        indexEntries: (request.keys?.length ?? 0) + (request.uniqKey === undefined ? 0 : 1) });
      at += size;
    }
    return { records, sealedBytes };
  }

  /** The next queue offset of a queue, or null for a queue that holds nothing yet. */
  private nextQueueOffset(topic: string, queueId: number): number | null {
    const queue = this.host.queues.get(topic, queueId);
    if (queue === undefined || queue.holdsNothing) return null;
    return queue.maxOffset;
  }

  /**
   * A diverged tail: cut the log at `offset` (the end of a record both sides hold, found by
   * the replication layer), drop ConsumeQueue and index entries from there, and make the cut
   * durable (checkpoint, logics, then the log's zeros) before anything is appended after it.
   */
  truncateTo(offset: number): Promise<{ removedBytes: number }> {
    return this.exclusive({ what: 'a cut', offset }, () => this.cut(offset));
  }

  private async cut(offset: number): Promise<{ removedBytes: number }> {
    this.host.checkFollowing();
    const log = this.log;
    const before = log.maxOffset;
    assert(offset >= log.minOffset && offset <= before, 'truncation outside the log');
    let lastRecord = -1;
    if (offset > log.minOffset) {
      const file = log.queue.findByOffset(offset - 1);
      // At a segment start the segment before ends with a blank marker after its last record.
      const start = file === undefined ? null : offset % log.segmentSizeBytes === 0
        ? this.lastRecordIn(file)?.offset ?? null : this.recordEndingAt(file, offset);
      assert(start !== null, `truncation at ${offset}, which is not the end of a record`);
      lastRecord = start;
    }
    log.truncateTo(offset, lastRecord);
    // The checkpoint goes back first (its flushed and dispatched offsets lowered), then the
    // queues and index drop their entries, then the cut bytes become zeros on disk: a kill or
    // power cut in between finds the old records past the checkpoint (a tail recovery keeps
    // and dispatches again), never zeros before its flushed offset nor queues without them.
    await this.host.logics.cut(offset);
    for (const queue of this.host.queues.all()) {
      log.setQueueOffset(queue.topic, queue.queueId, queue.maxOffset);
    }
    const file = log.queue.findByOffset(offset);
    if (file !== undefined) {
      const from = file.fileFromOffset;
      file.empty(offset - from, Math.min(before, from + file.sizeBytes) - from);
    }
    await log.flush();
    return { removedBytes: before - offset };
  }

  /** The start of the record of `file` that ends exactly at `end`, if there is one. */
  private recordEndingAt(file: MappedFile, end: number): number | null {
    const { dv } = file.scanBuffer();
    for (let at = 0; at + 12 <= file.readable;) {
      if (dv.getUint32(at + 8, true) !== RECORD_MAGIC) return null;
      const next = at + dv.getUint32(at + 4, true);
      if (file.fileFromOffset + next === end) return file.fileFromOffset + at;
      if (file.fileFromOffset + next > end) return null;
      at = next;
    }
    return null;
  }

  /** An empty log starts over at `offset` (a segment start): a new follower of an old master. */
  restartAt(offset: number): Promise<void> {
    return this.exclusive({ what: 'a restart', offset }, () => this.restart(offset));
  }

  private async restart(offset: number): Promise<void> {
    this.host.checkFollowing();
    const log = this.log;
    if (log.maxOffset !== log.minOffset) {
      throw new PocketMQError('INVALID_STATE', `the log holds records (${log.minOffset} to ` +
        `${log.maxOffset}); only an empty log starts over`, { offset });
    }
    if (offset % log.segmentSizeBytes !== 0) {
      throw new CorruptDataError(`a log cannot start at ${offset}: not a segment start`,
        { offset });
    }
    await log.restartAt(offset);
    this.host.logics.deleteBefore(offset);
    this.host.logics.dispatchedOffset = offset;
  }

  /**
   * Record starts in (after, before), at most `max`, spread evenly: segment starts when the
   * range spans segments, else the records of one segment (a walk of its headers). The
   * follower's side of the search for the last record both logs hold.
   */
  candidates(after: number, before: number, max: number): FrameId[] {
    const log = this.log;
    const segment = log.segmentSizeBytes;
    const firstSegment = after < log.minOffset ? log.minOffset
      : after - (after % segment) + segment;
    const found: FrameId[] = [];
    if (firstSegment < before) {
      for (let s = firstSegment; s < before; s += segment) {
        const id = this.recordAt(s);
        if (id !== null) found.push(id);
      }
    }
    if (found.length === 0) {
      const from = Math.max(after, log.minOffset);
      const file = log.queue.findByOffset(from);
      if (file !== undefined) {
        const { dv } = file.scanBuffer();
        for (let at = 0; at + 12 <= file.readable;) {
          if (dv.getUint32(at + 8, true) !== RECORD_MAGIC) break;
          const size = dv.getUint32(at + 4, true);
          const offset = file.fileFromOffset + at;
          if (offset >= before) break;
          if (offset > after) found.push({ offset, checksum: dv.getUint32(at, true), size });
          at += size;
        }
      }
    }
    return spread(found, max);
  }

  private recordAt(offset: number): FrameId | null {
    const record = this.log.read(offset, true);
    return record === null ? null
      : { offset, checksum: record.checksum, size: record.size };
  }
}

interface CheckedRecord {
  readonly offset: number;
  readonly size: number;
  readonly topic: string;
  readonly queueId: number;
  readonly queueOffset: number;
  readonly indexEntries: number;
}

interface Checked {
  readonly records: CheckedRecord[];
  /** A blank marker last: the bytes of the segment it seals (0: none). */
  readonly sealedBytes: number;
}

/**
 * Bytes of `view` (at `offset` of the log) that are whole frames; `sealed` when a blank marker
 * ends them.
 */
function wholeFrames(view: Buffer, offset: number): { end: number; sealed: boolean } {
  let at = 0;
  while (at + 12 <= view.length) {
    const magic = view.readUInt32LE(at + 8);
    if (magic === BLANK_MAGIC) return { end: at + BLANK_BYTES, sealed: true };
    const size = view.readUInt32LE(at + 4);
    assert(magic === RECORD_MAGIC && size > 0, `no frame at commit-log offset ${offset + at}`);
    if (at + size > view.length) break;
    at += size;
  }
  return { end: at, sealed: false };
}

/** At most `max` of `items`, evenly spread, the last always included. */
function spread<T>(items: T[], max: number): T[] {
  if (items.length <= max) return items;
  const out: T[] = [];
  for (let i = 1; i <= max; i++) out.push(items[Math.floor((i * items.length) / max) - 1]!);
  return out;
}
