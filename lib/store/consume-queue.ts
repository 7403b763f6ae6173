/**
 * ConsumeQueue: the logical queue of one topic and queue id, an array of fixed 20-byte entries
 * pointing into the commit log, in files of `entriesPerFile` entries
 * (`<dir>/consumequeue/<topic>/<queueId>/<20-digit start byte offset>`).
 *
 *    0                8        12               20
 *    +----------------+--------+----------------+
 *    | commit-log off |  size  |    tag code    |    (little-endian; tag code signed i64)
 *    +----------------+--------+----------------+
 *
 * Entry i of the queue is at byte i * 20. The tag code is Java's String.hashCode of the tag
 * (0: none), or a delivery time for the delay topic. An all-zero entry is empty (size is never 0).
 *
 * Invariants: queue offsets are consecutive; commit-log offsets increase along the queue;
 * minOffset <= maxOffset; entries before minOffset may be gone (retention).
 */
import path from 'node:path';
import { assert, failAssertion } from '../errors.js';
import type { IoBackend } from './io/backend.js';
import { offsetToFileName } from './mapped-file.js';
import { MappedFileQueue } from './mapped-file-queue.js';
import { dataView, readU64, writeU64 } from './record-codec.js';

export const CQ_ENTRY_BYTES = 20;

export interface ConsumeQueueEntry {
  readonly queueOffset: number;
  readonly physicalOffset: number;
  readonly size: number;
  readonly tagsCode: number;
}

export interface ConsumeQueueOptions {
  readonly backend: IoBackend;
  /** The `consumequeue` directory; this queue lives in `<root>/<topic>/<queueId>`. */
  readonly root: string;
  readonly topic: string;
  readonly queueId: number;
  readonly entriesPerFile: number;
  readonly readOnly?: boolean;
}

/** Entries compared at once while looking for the last one (whole pages of zeros). */
const SCAN_ENTRIES = 1024;
const zeroScan = Buffer.alloc(SCAN_ENTRIES * CQ_ENTRY_BYTES);

/**
 * Where the entries of a file's first `bytes` end: one past its last non-empty entry (0: none).
 * Runs of all-zero bytes are skipped a block at a time (a file is mostly empty while young).
 */
function lastEntryEnd(buf: Buffer, dv: DataView, bytes: number): number {
  let to = bytes - (bytes % CQ_ENTRY_BYTES);
  while (to > 0) {
    const from = Math.max(0, to - zeroScan.length);
    if (!buf.subarray(from, to).equals(zeroScan.subarray(0, to - from))) {
      for (let at = to - CQ_ENTRY_BYTES; at >= from; at -= CQ_ENTRY_BYTES) {
        if (dv.getUint32(at + 8, true) !== 0) return at + CQ_ENTRY_BYTES;
      }
    }
    to = from;
  }
  return 0;
}

/** One 20-byte entry at `at`: commit-log offset, size, tag code (64 bits, low word first). */
function writeEntry(dv: DataView, at: number, physicalOffset: number, size: number,
  tagsCode: number): void {
  writeU64(dv, at, physicalOffset);
  dv.setUint32(at + 8, size, true);
  dv.setUint32(at + 12, tagsCode >>> 0, true);
  dv.setInt32(at + 16, Math.floor(tagsCode / 4294967296), true);
}

/** The first allocation of a ConsumeQueue file: one page, 204 entries; it grows as it fills. */
const FIRST_FILE_BYTES = 4096;

const scratch = Buffer.alloc(CQ_ENTRY_BYTES);
const scratchDv = dataView(scratch);

/**
 * Raw entries (`entries`), made for every read: an instance of a class, not an object literal,
 * which V8 may decide to allocate in the old generation (see StoredMessage in
 * broker/message.ts).
 */
export class QueueEntries {
  constructor(readonly bytes: Buffer, readonly count: number) {}
}

export class ConsumeQueue {
  readonly topic: string;
  readonly queueId: number;
  private readonly files: MappedFileQueue;
  private readonly fileBytes: number;
  private minLogicOffset = 0;
  /** Largest commit-log offset + size indexed here: where this queue's dispatch got to. */
  private maxPhysicalEnd = 0;
  /** Loaded after an unclean end: what the files hold may be in the page cache only. */
  private loadedUnsynced = false;

  constructor(private readonly options: ConsumeQueueOptions) {
    this.topic = options.topic;
    this.queueId = options.queueId;
    this.fileBytes = options.entriesPerFile * CQ_ENTRY_BYTES;
    this.files = new MappedFileQueue({
      backend: options.backend,
      dir: path.join(options.root, options.topic, String(options.queueId)),
      fileSizeBytes: this.fileBytes, windowBytes: 0, preallocate: false,
      readOnly: options.readOnly ?? false, initialBytes: FIRST_FILE_BYTES,
    });
  }

  /** Open the files, changing none of them (a failed open leaves the directory as it was). */
  open(): void {
    this.files.load();
  }

  /** `open`, then `recover`. */
  load(durable = false): void {
    this.open();
    this.recover(durable);
  }

  /**
   * After `open`, find where the entries end and drop what lies past it. `durable`: the last run
   * closed cleanly, so every entry is on disk; otherwise none counts as flushed until the next
   * flush syncs it (a killed process leaves unflushed entries in the page cache, where the load
   * reads them).
   */
  recover(durable = false): void {
    this.loadedUnsynced = !durable;
    const files = this.files.files;
    if (files.length === 0) return;
    // The entries end in the newest file holding any: files after it are empty (reserved ahead,
    // or rolled onto before a crash) and must not count as entries.
    let end = files[0]!.fileFromOffset;
    for (let i = files.length - 1; i >= 0; i--) {
      const { buf, dv } = files[i]!.scanBuffer();
      const at = lastEntryEnd(buf, dv, Math.min(buf.length, this.fileBytes));
      if (at > 0) {
        end = files[i]!.fileFromOffset + at;
        break;
      }
    }
    this.files.truncateDirty(end, durable ? end : 0);
    this.minLogicOffset = this.firstNonEmpty();
    const tail = this.maxOffset - 1;
    if (tail >= this.minLogicOffset) {
      const e = this.get(tail)!;
      this.maxPhysicalEnd = e.physicalOffset + e.size;
    }
  }

  /**
   * Allocate now the files that entries [queueOffset, queueOffset + count) will need, so that
   * `put` cannot fail for want of space once their records are in the commit log.
   */
  reserve(queueOffset: number, count: number): void {
    const end = (queueOffset + count) * CQ_ENTRY_BYTES;
    const last = this.files.last;
    if (last !== undefined && !last.isFull && end > last.fileFromOffset + last.usable) {
      this.files.makeRoomSync(Math.min(end, last.fileFromOffset + this.fileBytes) -
        last.fileFromOffset - last.wrote);
    }
    let from = last === undefined ? queueOffset * CQ_ENTRY_BYTES
      : last.fileFromOffset + this.fileBytes;
    if (from >= end) return;
    from -= from % this.fileBytes;
    this.options.backend.mkdir(this.files.dir);
    for (; from < end; from += this.fileBytes) {
      // What this file must hold, in whole pages: a first file may start inside it.
      const bytes = Math.min(this.fileBytes, Math.max(FIRST_FILE_BYTES,
        Math.ceil((Math.min(end, from + this.fileBytes) - from) / 4096) * 4096));
      this.options.backend.openSync(path.join(this.files.dir, offsetToFileName(from)),
        { sizeBytes: bytes, capacityBytes: this.fileBytes, create: true, readOnly: false })
        .close();
    }
  }

  private firstNonEmpty(): number {
    const first = this.files.first;
    if (first === undefined) return 0;
    const { dv } = first.scanBuffer();
    for (let at = 0; at < first.wrote; at += CQ_ENTRY_BYTES) {
      if (dv.getUint32(at + 8, true) !== 0) return (first.fileFromOffset + at) / CQ_ENTRY_BYTES;
    }
    return this.maxOffset;
  }

  get minOffset(): number {
    return this.minLogicOffset;
  }
  /** The next queue offset: one past the last entry. */
  get maxOffset(): number {
    return this.files.wroteWhere / CQ_ENTRY_BYTES;
  }
  get maxPhysicalOffset(): number {
    return this.maxPhysicalEnd;
  }
  get fileCount(): number {
    return this.files.files.length;
  }

  /**
   * No entry was ever written in its files: none, or files made ahead of entries that never
   * came (`reserve` before a kill took the records, or a follower that started over). Such a
   * queue starts where its first entry does, as one without files.
   */
  get holdsNothing(): boolean {
    return this.files.wroteWhere === this.files.minOffset;
  }

  /** Append the entry for `queueOffset`, which must be the next one (or the first ever). */
  put(queueOffset: number, physicalOffset: number, size: number, tagsCode: number): void {
    const position = queueOffset * CQ_ENTRY_BYTES;
    if (this.files.last !== undefined && queueOffset !== this.maxOffset && this.holdsNothing) {
      this.files.removeAll();
    }
    if (this.files.last === undefined) {
      const from = position - (position % this.fileBytes);
      const first = this.files.createFirst(from);
      first.growSync(position - from);
      first.resetPositions(position - from);
      this.minLogicOffset = queueOffset;
    }
    if (queueOffset !== this.maxOffset) {
      failAssertion(`consume queue ${this.topic}/${this.queueId}: entry ${queueOffset} after ` +
        `${this.maxOffset}`);
    }
    assert(physicalOffset >= this.maxPhysicalEnd, 'consume queue entries must move forward');
    let file = this.files.last!;
    if (file.isFull) file = this.files.roll() as typeof file;
    // Appends reserved their room; recovery's re-dispatch grows the file here.
    if (!file.hasRoom(CQ_ENTRY_BYTES)) this.files.makeRoomSync(CQ_ENTRY_BYTES);
    const target = file.target(CQ_ENTRY_BYTES)!;
    writeEntry(target.dv, target.at, physicalOffset, size, tagsCode);
    file.advance(CQ_ENTRY_BYTES);
    this.maxPhysicalEnd = physicalOffset + size;
  }

  /**
   * `put` of a run of entries with consecutive queue offsets (a batch appended together): entry
   * i from `placed[i]` and `tagged[i].tagsCode`. Written in one go when they all fit the last
   * file after its end; entry by entry otherwise.
   */
  putRun(placed: readonly { readonly queueOffset: number; readonly physicalOffset: number;
    readonly size: number }[], tagged: readonly { readonly tagsCode: number }[]): void {
    const count = placed.length;
    const bytes = count * CQ_ENTRY_BYTES;
    const file = this.files.last;
    const first = placed[0]!;
    if (file === undefined || first.queueOffset !== this.maxOffset || !file.hasRoom(bytes)) {
      for (let i = 0; i < count; i++) {
        const e = placed[i]!;
        this.put(e.queueOffset, e.physicalOffset, e.size, tagged[i]!.tagsCode);
      }
      return;
    }
    assert(first.physicalOffset >= this.maxPhysicalEnd, 'consume queue entries must move forward');
    const target = file.target(bytes)!;
    for (let i = 0, at = target.at; i < count; i++, at += CQ_ENTRY_BYTES) {
      const e = placed[i]!;
      writeEntry(target.dv, at, e.physicalOffset, e.size, tagged[i]!.tagsCode);
    }
    file.advance(bytes);
    const last = placed[count - 1]!;
    this.maxPhysicalEnd = last.physicalOffset + last.size;
  }

  /** The entry at `queueOffset`, or null outside [minOffset, maxOffset). */
  get(queueOffset: number): ConsumeQueueEntry | null {
    if (queueOffset < this.minLogicOffset || queueOffset >= this.maxOffset) return null;
    const position = queueOffset * CQ_ENTRY_BYTES;
    const file = this.files.findByOffset(position);
    if (file === undefined) return null;
    const bytes = file.view(position - file.fileFromOffset, CQ_ENTRY_BYTES);
    scratch.set(bytes);
    return {
      queueOffset,
      physicalOffset: readU64(scratchDv, 0),
      size: scratchDv.getUint32(8, true),
      tagsCode: scratchDv.getInt32(16, true) * 4294967296 + scratchDv.getUint32(12, true),
    };
  }

  /**
   * Up to `max` consecutive entries from `queueOffset`, within one file: a view of the raw
   * 20-byte entries (zero-copy where mapped) for readers that walk many at once.
   */
  entries(queueOffset: number, max: number): QueueEntries {
    if (queueOffset < this.minLogicOffset || queueOffset >= this.maxOffset) {
      return new QueueEntries(Buffer.alloc(0), 0);
    }
    const position = queueOffset * CQ_ENTRY_BYTES;
    const file = this.files.findByOffset(position)!;
    const at = position - file.fileFromOffset;
    const count = Math.min(max, (file.wrote - at) / CQ_ENTRY_BYTES);
    return new QueueEntries(file.view(at, count * CQ_ENTRY_BYTES), count);
  }

  /**
   * The first queue offset whose record was stored at or after `timestampMs`, by binary search;
   * `storeTimestampAt` reads a record's store time from the commit log (null if it is gone).
   * Returns maxOffset when every record is older.
   */
  searchByTime(timestampMs: number, storeTimestampAt: (phy: number) => number | null): number {
    let lo = this.minLogicOffset;
    let hi = this.maxOffset;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const entry = this.get(mid);
      const ts = entry === null ? null : storeTimestampAt(entry.physicalOffset);
      if (ts === null || ts < timestampMs) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Recovery: drop every entry pointing at or beyond `physicalOffset`. `keptDurable`: the
   * entries kept are on disk (they point below where a checkpoint found them flushed), so no
   * flush is due for them. After an unclean end the file holding the queue's end is synced by
   * the next flush all the same: the empty entries past the end may be zeros that a run which
   * crashed or failed to open wrote over dropped entries, in the page cache only, and a power cut
   * would bring those entries back once the checkpoint has moved past them.
   */
  truncateFrom(physicalOffset: number, keptDurable = false): void {
    // Commit-log offsets increase along the queue: search the first entry to drop. After a crash
    // the unflushed entries (all at or beyond `physicalOffset`) may survive in any order, with
    // holes: an empty entry is one to drop too.
    let lo = this.minLogicOffset;
    let hi = this.maxOffset;
    // The entries to drop are the last few, if any: steps back from the end that double narrow
    // the search to the files near it (a file read is a file mapped, 2 MB of the process's
    // external memory each), then a binary search in between.
    for (let step = 1; hi - step >= lo; step *= 2) {
      const entry = this.get(hi - step)!;
      if (entry.size !== 0 && entry.physicalOffset < physicalOffset) {
        lo = hi - step + 1;
        break;
      }
      hi -= step;
    }
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const entry = this.get(mid)!;
      if (entry.size !== 0 && entry.physicalOffset < physicalOffset) lo = mid + 1;
      else hi = mid;
    }
    // Nothing kept: the queue's first entries may be among the lost ones, so start it over.
    const end = lo === this.minLogicOffset ? this.files.minOffset / CQ_ENTRY_BYTES : lo;
    const durable = keptDurable ? end * CQ_ENTRY_BYTES : 0;
    this.files.publish();
    if (end === this.maxOffset) {
      if (keptDurable) this.files.truncateDirty(end * CQ_ENTRY_BYTES, durable);
      this.syncEndIfUnsynced();
      return;
    }
    this.minLogicOffset = Math.min(this.minLogicOffset, end);
    // The dropped entries are overwritten with zeros: a later load must not see them.
    this.files.truncateDirty(end * CQ_ENTRY_BYTES, durable, 'empty');
    this.syncEndIfUnsynced();
    const tail = end - 1 >= this.minLogicOffset ? this.get(end - 1) : null;
    this.maxPhysicalEnd = tail === null ? 0 : tail.physicalOffset + tail.size;
  }

  /**
   * Files before the one holding the end hold kept entries only (durable); files after it are
   * gone: the one holding the end is all a crashed run may have left different from the disk.
   */
  private syncEndIfUnsynced(): void {
    if (this.loadedUnsynced) this.files.last?.syncOnNextFlush();
  }

  /**
   * Retention: the commit log now starts at `minPhysicalOffset`. Files whose entries all point
   * before it are deleted (never the last file); minOffset moves to the first surviving entry.
   */
  deleteBefore(minPhysicalOffset: number): number {
    let drop = 0;
    const files = this.files.files;
    for (let i = 0; i < files.length - 1; i++) {
      const lastEntry = (files[i]!.fileFromOffset + this.fileBytes) / CQ_ENTRY_BYTES - 1;
      const e = this.get(lastEntry);
      if (e !== null && e.physicalOffset + e.size > minPhysicalOffset) break;
      drop++;
    }
    this.files.deleteOldest(drop);
    let min = Math.max(this.minLogicOffset, this.files.minOffset / CQ_ENTRY_BYTES);
    while (min < this.maxOffset) {
      const e = this.get(min);
      if (e !== null && e.physicalOffset >= minPhysicalOffset) break;
      min++;
    }
    this.minLogicOffset = min;
    return drop;
  }

  publish(): void {
    this.files.publish();
  }

  flush(): Promise<number> {
    return this.files.flush();
  }

  close(): void {
    this.files.close();
  }
}
