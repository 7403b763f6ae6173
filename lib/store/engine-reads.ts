/**
 * The read side of a StoreEngine: records and ConsumeQueue entries of a queue, lookups by
 * offset, key and time, queue bounds and the topics present. Every read checks first that the
 * store is open (`checkOpen`, the engine's lifecycle).
 */
import type { CommitLog } from './commit-log.js';
import type { ConsumeQueueTable } from './consume-queue-table.js';
import type { IndexService } from './index-service.js';
import type { RecordCursor } from './record-cursor.js';
import type { StoredRecord } from './record-decoder.js';
import {
  checkQueryArguments, checkQueueArguments, checkTimeArgument, StoreReader,
  type GetMessageResult, type ReadFilter, type VisitResult,
} from './store-reader.js';

export abstract class EngineReads {
  protected readonly reader: StoreReader;

  protected constructor(protected readonly commitLog: CommitLog,
    protected readonly queues: ConsumeQueueTable, protected readonly index: IndexService) {
    this.reader = new StoreReader(commitLog, queues, index);
  }

  /** STORE_CLOSED before the store opened and once it closed (a stopped store still reads). */
  protected abstract checkOpen(): void;

  /** Records of one queue from `offset`: RocketMQ's getMessage, without filters. */
  getMessage(topic: string, queueId: number, offset: number, maxCount: number,
    zeroCopy = false, filter?: ReadFilter): GetMessageResult {
    this.checkOpen();
    return this.reader.getMessage(topic, queueId, offset, maxCount, zeroCopy, filter);
  }

  /**
   * The zero-copy read: each record of the queue from `offset` goes to `visitor` through one
   * reused cursor over the segment's bytes, valid only during the call (see RecordCursor).
   */
  visitMessages(topic: string, queueId: number, offset: number, maxCount: number,
    visitor: (record: RecordCursor) => void, filter?: ReadFilter): VisitResult {
    this.checkOpen();
    return this.reader.visit(topic, queueId, offset, maxCount, visitor, filter);
  }

  /** ConsumeQueue entries without their records (StoreReader.visitEntries). */
  visitQueueEntries(topic: string, queueId: number, offset: number, maxCount: number,
    fn: (queueOffset: number, physicalOffset: number, size: number, tagsCode: number) => boolean):
    number {
    this.checkOpen();
    return this.reader.visitEntries(topic, queueId, offset, maxCount, fn);
  }

  /** The record at a commit-log offset, or null. */
  lookMessageByOffset(physicalOffset: number, zeroCopy = false): StoredRecord | null {
    this.checkOpen();
    return this.commitLog.read(physicalOffset, zeroCopy);
  }

  /**
   * Records of `topic` indexed under `key` (a key or unique key) stored in [beginMs, endMs],
   * newest first, at most `maxNum` (exact matches; see StoreReader.queryMessage).
   */
  queryMessage(topic: string, key: string, maxNum = 32, beginMs = 0,
    endMs = Number.MAX_SAFE_INTEGER): StoredRecord[] {
    this.checkOpen();
    checkQueryArguments(topic, key, maxNum, beginMs, endMs);
    return this.reader.queryMessage(topic, key, maxNum, beginMs, endMs);
  }

  getMinOffsetInQueue(topic: string, queueId: number): number {
    this.checkOpen();
    checkQueueArguments(topic, queueId);
    return this.queues.get(topic, queueId)?.minOffset ?? 0;
  }

  getMaxOffsetInQueue(topic: string, queueId: number): number {
    this.checkOpen();
    checkQueueArguments(topic, queueId);
    return this.queues.get(topic, queueId)?.maxOffset ?? 0;
  }

  /** The first queue offset stored at or after `timestampMs`, or the max offset. */
  getOffsetInQueueByTime(topic: string, queueId: number, timestampMs: number): number {
    this.checkOpen();
    checkQueueArguments(topic, queueId);
    checkTimeArgument('timestampMs', timestampMs);
    return this.reader.searchOffset(topic, queueId, timestampMs);
  }

  /** Topics with at least one queue, and their queues. */
  topics(): { topic: string; queueIds: number[] }[] {
    this.checkOpen();
    return this.queues.topics().map((topic) => ({
      topic, queueIds: this.queues.queueIdsOf(topic),
    }));
  }

  /** The storage objects, for tools that want the log itself. */
  get storage(): { commitLog: CommitLog; consumeQueues: ConsumeQueueTable; index: IndexService } {
    return { commitLog: this.commitLog, consumeQueues: this.queues, index: this.index };
  }

  get commitLogMinOffset(): number { return this.commitLog.minOffset; }
  get commitLogMaxOffset(): number { return this.commitLog.maxOffset; }
  get commitLogFlushedOffset(): number { return this.commitLog.flushedOffset; }
}
