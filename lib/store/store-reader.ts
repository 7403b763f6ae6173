/**
 * Reading a store: records of a queue by queue offset (through the ConsumeQueue), by key
 * (through the index), and queue offsets by time. Reads never change anything.
 */
import { CorruptDataError, PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import type { CommitLog } from './commit-log.js';
import type { ConsumeQueueTable } from './consume-queue-table.js';
import type { IndexService } from './index-service.js';
import { RecordCursor } from './record-cursor.js';
import type { StoredRecord } from './record-decoder.js';

export type GetMessageStatus =
  | 'FOUND'
  | 'NO_MATCHED_LOGIC_QUEUE'
  | 'NO_MESSAGE_IN_QUEUE'
  | 'OFFSET_TOO_SMALL'
  | 'OFFSET_OVERFLOW_ONE'
  | 'OFFSET_OVERFLOW_BADLY'
  | 'MESSAGE_WAS_REMOVING'
  | 'NO_MATCHED_MESSAGE';

export interface GetMessageResult {
  readonly status: GetMessageStatus;
  readonly records: StoredRecord[];
  /** Where the next read of this queue should start. */
  readonly nextBeginOffset: number;
  readonly minOffset: number;
  readonly maxOffset: number;
}

/** What a visit did: like GetMessageResult, with a count instead of the records. */
export interface VisitResult {
  readonly status: GetMessageStatus;
  readonly count: number;
  readonly nextBeginOffset: number;
  readonly minOffset: number;
  readonly maxOffset: number;
}

/**
 * What a read may skip without reading the record: entries whose tag code `tagsCode` rejects
 * (RocketMQ's isMatchedByConsumeQueue), and anything past `maxBytes` of records (at least one
 * record is always returned). Skipped entries still advance `nextBeginOffset`, up to
 * `maxScanEntries` of them per read.
 */
export interface ReadFilter {
  readonly tagsCode?: ((code: number) => boolean) | undefined;
  readonly maxBytes?: number | undefined;
  readonly maxScanEntries?: number | undefined;
}

/** What was given, for an argument's error message. */
function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : String(value);
}

function badArgument(name: string, rule: string, value: unknown): PocketMQError {
  const message = value === undefined ? `${name} is missing: ${rule}`
    : `${name} must be ${rule}, got ${shown(value)}`;
  return new PocketMQError('INVALID_OPTION', message, { property: name });
}

/**
 * The topic and queue arguments of a query (offsets, search by time, query by key): a topic
 * string and a queue id in [0, limits.maxQueuesPerTopic). INVALID_TOPIC / INVALID_OPTION
 * naming the argument.
 */
export function checkQueueArguments(topic: unknown, queueId: unknown): void {
  if (typeof topic !== 'string') {
    throw new PocketMQError('INVALID_TOPIC', topic === undefined ? 'topic is missing'
      : `topic must be a string, got ${shown(topic)}`);
  }
  if (!Number.isInteger(queueId) || (queueId as number) < 0 ||
    (queueId as number) >= limits.maxQueuesPerTopic) {
    throw badArgument('queueId', `an integer in [0, ${limits.maxQueuesPerTopic - 1}] (a topic ` +
      `has at most ${limits.maxQueuesPerTopic} queues)`, queueId);
  }
}

/** A time argument (ms since the epoch): a finite number. */
export function checkTimeArgument(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw badArgument(name, 'a time in ms since the epoch (a finite number)', value);
  }
}

/** The arguments of queryMessage: a topic, a key, maxNum >= 1 and a time range. */
export function checkQueryArguments(topic: unknown, key: unknown, maxNum: unknown,
  beginMs: unknown, endMs: unknown): void {
  checkQueueArguments(topic, 0);
  if (typeof key !== 'string' || key === '') {
    throw badArgument('key', 'a non-empty string (a key or a message\'s unique key)', key);
  }
  if (!Number.isSafeInteger(maxNum) || (maxNum as number) < 1) {
    throw badArgument('maxNum', 'an integer >= 1', maxNum);
  }
  checkTimeArgument('begin', beginMs);
  checkTimeArgument('end', endMs);
}

/**
 * A read's VisitResult, made for every fetch: an instance of a class, not an object literal,
 * which V8 may decide to allocate in the old generation (see StoredMessage in
 * broker/message.ts).
 */
class Visited implements VisitResult {
  constructor(readonly status: GetMessageStatus, readonly count: number,
    readonly nextBeginOffset: number, readonly minOffset: number, readonly maxOffset: number) {}
}

/** Entries a filtered read looks at before it returns what it has (RocketMQ: 16,000). */
const DEFAULT_MAX_SCAN_ENTRIES = 16_000;

export class StoreReader {
  constructor(
    private readonly commitLog: CommitLog,
    private readonly queues: ConsumeQueueTable,
    private readonly index: IndexService,
  ) {}

  getMessage(topic: string, queueId: number, offset: number, maxCount: number,
    zeroCopy: boolean, filter: ReadFilter = {}): GetMessageResult {
    const records: StoredRecord[] = [];
    const walked = this.walk(topic, queueId, offset, maxCount, (physicalOffset) => {
      const record = this.commitLog.read(physicalOffset, zeroCopy);
      if (record === null) return false;
      records.push(record);
      return true;
    }, filter);
    return { ...walked, records };
  }

  /**
   * The zero-copy read: hand each record of the queue from `offset` to `visitor` through one
   * reused cursor, without decoding it into an object. Stops after `maxCount` records.
   */
  visit(topic: string, queueId: number, offset: number, maxCount: number,
    visitor: (record: RecordCursor) => void, filter: ReadFilter = {}): VisitResult {
    const cursor = new RecordCursor(); // one per visit: a visitor may start another visit
    return this.walk(topic, queueId, offset, maxCount, (physicalOffset) => {
      if (!this.commitLog.seek(physicalOffset, cursor)) return false;
      visitor(cursor);
      return true;
    }, filter);
  }

  /**
   * ConsumeQueue entries of a queue from `offset`, without reading records: `fn` gets each
   * entry's queue offset, commit-log offset, size and tag code, and returns false to stop.
   * Returns where it stopped: the entry `fn` refused, or after the last of `maxCount` entries
   * (or the queue's end).
   */
  visitEntries(topic: string, queueId: number, offset: number, maxCount: number,
    fn: (queueOffset: number, physicalOffset: number, size: number, tagsCode: number) => boolean):
    number {
    const queue = this.queues.get(topic, queueId);
    if (queue === undefined) return offset;
    let at = Math.max(offset, queue.minOffset);
    const end = Math.min(queue.maxOffset, at + maxCount);
    while (at < end) {
      const { bytes, count } = queue.entries(at, Math.min(end - at, 1024));
      if (count === 0) break;
      const entries = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < count; i++) {
        const e = i * 20;
        const size = entries.getUint32(e + 8, true);
        if (size === 0) return at;
        const physicalOffset = entries.getUint32(e + 4, true) * 2 ** 32 +
          entries.getUint32(e, true);
        const tagsCode = entries.getInt32(e + 16, true) * 2 ** 32 + entries.getUint32(e + 12, true);
        if (!fn(at, physicalOffset, size, tagsCode)) return at;
        at++;
      }
    }
    return at;
  }

  /** Walk ConsumeQueue entries, giving each commit-log offset to `take` (false: no record). */
  private walk(topic: string, queueId: number, offset: number, maxCount: number,
    take: (physicalOffset: number) => boolean, filter: ReadFilter = {}): VisitResult {
    const queue = this.queues.get(topic, queueId);
    if (queue === undefined) {
      return { status: offset > 0 ? 'OFFSET_OVERFLOW_BADLY' : 'NO_MATCHED_LOGIC_QUEUE', count: 0,
        nextBeginOffset: 0, minOffset: 0, maxOffset: 0 };
    }
    const min = queue.minOffset;
    const max = queue.maxOffset;
    const result = (status: GetMessageStatus, next: number, count = 0): VisitResult =>
      new Visited(status, count, next, min, max);
    // An offset past the end (a consumer ahead of a queue whose tail a crash cut) is corrected
    // to the max, as RocketMQ does, so the consumer does not wait beyond messages it missed.
    if (offset > max) return result('OFFSET_OVERFLOW_BADLY', max);
    if (max === min) return result('NO_MESSAGE_IN_QUEUE', offset < min ? min : offset);
    if (offset < min) return result('OFFSET_TOO_SMALL', min);
    if (offset === max) return result('OFFSET_OVERFLOW_ONE', offset);
    const tagsCode = filter.tagsCode;
    const maxBytes = filter.maxBytes ?? Infinity;
    const scanEnd = Math.min(max, offset + (filter.maxScanEntries ?? DEFAULT_MAX_SCAN_ENTRIES));
    let at = offset;
    let taken = 0;
    let bytesTaken = 0;
    // Where reads of the log end: its max offset, unless a window write failed (see below).
    let readableEnd = this.commitLog.readableOffset;
    while (taken < maxCount && at < scanEnd && bytesTaken < maxBytes) {
      const { bytes, count } = queue.entries(at, Math.min(scanEnd - at, 1024));
      if (count === 0) break;
      const entries = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < count && taken < maxCount && bytesTaken < maxBytes; i++) {
        const entry = i * 20;
        const physicalOffset = entries.getUint32(entry + 4, true) * 2 ** 32 +
          entries.getUint32(entry, true);
        // An empty entry, or one past where reads of the log end: a window write failed (the
        // store stops). Readers see only what reached the files, and that ends here.
        if (entries.getUint32(entry + 8, true) === 0 || physicalOffset >= readableEnd) {
          return result(taken > 0 ? 'FOUND' : 'NO_MATCHED_MESSAGE', at, taken);
        }
        if (tagsCode !== undefined && !tagsCode(entries.getInt32(entry + 16, true) * 2 ** 32 +
          entries.getUint32(entry + 12, true))) {
          at++;
          continue;
        }
        if (!take(physicalOffset)) {
          // This read's own publish of the log's window failed.
          readableEnd = this.commitLog.readableOffset;
          if (physicalOffset >= readableEnd) {
            return result(taken > 0 ? 'FOUND' : 'NO_MATCHED_MESSAGE', at, taken);
          }
          if (physicalOffset >= this.commitLog.minOffset) {
            throw new CorruptDataError(`record at commit-log offset ${physicalOffset} (${topic}/` +
              `${queueId} offset ${at}) fails its checks`, { offset: physicalOffset, topic });
          }
          // Retention removed the segment under this entry: resume past it.
          return taken > 0 ? result('FOUND', at, taken)
            : result('MESSAGE_WAS_REMOVING', at + 1);
        }
        bytesTaken += entries.getUint32(entry + 8, true);
        taken++;
        at++;
      }
    }
    return result(taken > 0 ? 'FOUND' : 'NO_MATCHED_MESSAGE', at, taken);
  }

  /**
   * Records of `topic` stored under `key` (a key or unique key) in [beginMs, endMs], newest
   * first, at most `maxNum`. maxNum counts exact matches: the index's candidates (same hash,
   * same second) are checked first, reading at most maxNum + limits.queryExtraScanRecords.
   */
  queryMessage(topic: string, key: string, maxNum: number, beginMs: number,
    endMs: number): StoredRecord[] {
    const offsets = this.index.queryOffsets(topic, key, maxNum + limits.queryExtraScanRecords,
      beginMs, endMs);
    const out: StoredRecord[] = [];
    for (let i = 0; i < offsets.length && out.length < maxNum; i++) {
      const record = this.commitLog.read(offsets[i]!);
      if (record === null || record.topic !== topic) continue;
      if (record.storeTimestamp < beginMs || record.storeTimestamp > endMs) continue;
      if (record.uniqKey !== key && !record.keys.includes(key)) continue;
      out.push(record);
    }
    return out;
  }

  searchOffset(topic: string, queueId: number, timestampMs: number): number {
    const queue = this.queues.get(topic, queueId);
    if (queue === undefined) return 0;
    return queue.searchByTime(timestampMs,
      (phy) => this.commitLog.read(phy)?.storeTimestamp ?? null);
  }
}
