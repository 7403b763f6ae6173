/**
 * The logics of a store (RocketMQ's word for what is derived from the commit log): every
 * ConsumeQueue and the index, fed record by record from the log, and the checkpoint that says
 * how far they and the log were durable when it was written.
 *
 * The engine owns the lifecycle; this owns dispatch, the logics flush with its checkpoint
 * write, what recovery and retention do to ConsumeQueues and index, and the bytes a flush is
 * due for.
 *
 * Invariant: the checkpoint names a dispatched offset only once every ConsumeQueue and index
 * entry below it is flushed (queues and index flush before the checkpoint is written).
 */
import { PocketMQError } from '../errors.js';
import { Checkpoint, type CheckpointFields } from './checkpoint.js';
import type { CommitLog, DispatchPlacement, DispatchRequest } from './commit-log.js';
import type { PreparedRecord } from './record-codec.js';
import { recoverCommitLog, type RecoveryInput, type RecoveryReport } from './recovery.js';
import type { ConsumeQueueTable } from './consume-queue-table.js';
import type { IndexService } from './index-service.js';
import type { IoBackend } from './io/backend.js';
import type { Logger } from './options.js';

export class Logics {
  /** End of the last record dispatched. */
  dispatchedOffset = 0;
  /** Loaded at open (`loadCheckpoint`), before anything reads it. */
  checkpoint!: Checkpoint;
  /** The last checkpoint write failed for want of space: the next flush writes it. */
  private checkpointBehind = false;
  /** Times a follower cut the log (`cut`): a flush in flight across one writes no checkpoint. */
  private cuts = 0;

  constructor(
    readonly queues: ConsumeQueueTable,
    readonly index: IndexService,
    private readonly commitLog: CommitLog,
    private readonly logger: Logger,
  ) {
    commitLog.dispatch = (request) => this.dispatch(request);
    commitLog.dispatchRun = (records, placed) => this.dispatchRun(records, placed);
    // A queue opened on first use: appends to it continue at its end.
    queues.onLateOpen = (queue) =>
      commitLog.setQueueOffset(queue.topic, queue.queueId, queue.maxOffset);
  }

  /**
   * At open, after `loadCheckpoint`: recover the commit log (recovery.ts), opening ConsumeQueues
   * and index once it passed its check, then set each queue's next offset and the queues' start.
   * `crashed`: the last run did not close (its `abort` is there); `late`: ConsumeQueues may open
   * on first use (a writable open); `changing` is called before the open changes a file.
   */
  async recoverAtOpen(how: { readonly crashed: boolean; readonly late: boolean;
    readonly changing: () => void; readonly onProgress: RecoveryInput['onProgress'] }):
    Promise<RecoveryReport> {
    const cp = this.checkpoint;
    const clean = cp.existed && !how.crashed;
    const report = await recoverCommitLog({
      commitLog: this.commitLog,
      flushedOffset: cp.existed ? cp.commitLogFlushedOffset : 0,
      dispatchedOffset: cp.existed ? cp.logicsDispatchedOffset : 0,
      tailRecordOffset: cp.existed ? cp.tailRecordOffset : -1,
      cleanShutdown: clean,
      // Only once the commit log passed its check: a failed open leaves them as they were.
      // After a clean close every entry was flushed; after a crash none is known to be.
      loadLogics: async () => {
        // After a clean close ConsumeQueues open on first use: their entries are on disk and
        // end below the dispatched offset the checkpoint names (see ConsumeQueueTable).
        await this.open(clean && how.late ? cp.logicsDispatchedOffset : undefined);
        how.changing();
        this.recover(!how.crashed);
      },
      truncateLogics: (phy) => this.truncateFrom(phy),
      dispatch: (request) => this.dispatchRecovered(request),
      onProgress: how.onProgress,
    });
    for (const queue of this.queues.opened()) {
      this.commitLog.setQueueOffset(queue.topic, queue.queueId, queue.maxOffset);
    }
    this.dispatchedOffset = this.commitLog.maxOffset;
    // Queue minimums live in memory: derive them again from where the commit log now starts
    // (a queue opened later takes it then).
    if (this.commitLog.minOffset > 0) this.deleteBefore(this.commitLog.minOffset, false);
    return report;
  }

  loadCheckpoint(backend: IoBackend, dir: string): Checkpoint {
    this.checkpoint = Checkpoint.load(backend, dir);
    return this.checkpoint;
  }

  /**
   * Open ConsumeQueues' and index files, checking them and changing none. With `durableEnd`,
   * after a clean close, ConsumeQueues are only listed, each opened on first use (see
   * ConsumeQueueTable.open).
   */
  async open(durableEnd?: number): Promise<void> {
    this.queues.open(durableEnd);
    await this.index.open();
  }

  /**
   * After `open`: drop the entries the last run did not complete. `durable` after a clean close
   * (every entry was flushed).
   */
  recover(durable: boolean): void {
    this.queues.recover(durable);
    this.index.recover(durable);
  }

  /**
   * Recovery: drop every ConsumeQueue and index entry at or beyond `physicalOffset`, at or below
   * the checkpoint's dispatched offset: the entries kept were flushed before it was written.
   */
  truncateFrom(physicalOffset: number): void {
    this.queues.truncateFrom(physicalOffset, true);
    this.index.truncateFrom(physicalOffset);
  }

  /**
   * A follower cut its log at `offset` (the commit log already ends there): the checkpoint on
   * disk goes back first (nothing dispatched or flushed past `offset`), then ConsumeQueue and
   * index entries from there are dropped and made durable. A kill or power cut anywhere in
   * between leaves a checkpoint no later than what the files hold, and recovery drops and
   * dispatches again whatever lies past it, whether the cut records or the zeros came back.
   */
  async cut(offset: number): Promise<void> {
    this.cuts++;
    this.dispatchedOffset = Math.min(this.dispatchedOffset, offset);
    await this.flush(false, true);
    this.truncateFrom(offset);
    this.dispatchedOffset = offset;
    await this.flush(false, true);
  }

  /** One appended record reaches its ConsumeQueue and, with keys, the index. */
  dispatch(request: DispatchRequest): void {
    this.queues.dispatch(request);
    const keys = request.keys;
    if ((keys !== undefined && keys.length > 0) || request.uniqKey !== undefined) {
      this.index.buildIndex(request.topic, keys ?? [], request.uniqKey, request.physicalOffset,
        request.storeTimestamp);
    }
    this.dispatchedOffset = request.physicalOffset + request.size;
  }

  /** `dispatch` of the records of a multi-record append, all of one queue, at once. */
  dispatchRun(records: readonly PreparedRecord[], placed: readonly DispatchPlacement[]): void {
    const { topic, queueId } = records[0]!.input;
    this.queues.dispatchRun(topic, queueId, placed, records);
    for (let i = 0; i < records.length; i++) {
      const { keys, uniqKey } = records[i]!.input;
      if ((keys !== undefined && keys.length > 0) || uniqKey !== undefined) {
        this.index.buildIndex(topic, keys ?? [], uniqKey, placed[i]!.physicalOffset,
          placed[i]!.storeTimestamp);
      }
    }
    const last = placed[placed.length - 1]!;
    this.dispatchedOffset = last.physicalOffset + last.size;
  }

  /** `dispatch` of a record recovery found again: its queue offset must continue its queue. */
  dispatchRecovered(request: DispatchRequest): void {
    this.queues.checkRecovered(request);
    this.dispatch(request);
  }

  /**
   * Retention deleted the log below `minOffset`: ConsumeQueue and index files go with it
   * (`openAll`: those of queues not opened yet too, see ConsumeQueueTable.deleteBefore).
   */
  deleteBefore(minOffset: number, openAll = true): void {
    this.queues.deleteBefore(minOffset, openAll);
    this.index.deleteFilesBefore(minOffset);
    this.checkpoint.update({ commitLogMinOffset: minOffset });
  }

  /** What a logics flush would make durable, in bytes (> 0: one is due). */
  dirtyBytes(): number {
    const cp = this.checkpoint;
    return this.dispatchedOffset - cp.logicsDispatchedOffset +
      this.commitLog.flushedOffset - cp.commitLogFlushedOffset + (this.checkpointBehind ? 1 : 0);
  }

  /**
   * Flush ConsumeQueues and index, then write the checkpoint: `clean` at close; `reset` at
   * open, replacing what the file held.
   */
  async flush(clean: boolean, reset = false): Promise<void> {
    const dispatched = this.dispatchedOffset;
    const cuts = this.cuts;
    await this.queues.flush();
    await this.index.flush();
    // A cut while the queues flushed: `dispatched` may lie past it (the cut writes its own).
    if (cuts !== this.cuts) return;
    const log = this.commitLog;
    const fields = {
      logicsDispatchedOffset: dispatched,
      commitLogFlushedOffset: log.flushedOffset,
      tailRecordOffset: Math.max(0, log.flushedTailOffset),
      commitLogMinOffset: log.minOffset,
      physicMsgTimestamp: log.maxStoreTimestamp,
      logicsMsgTimestamp: log.maxStoreTimestamp,
      indexMsgTimestamp: log.maxStoreTimestamp,
      cleanShutdown: clean,
      commitLogSegmentSize: log.segmentSizeBytes,
      consumeQueueEntriesPerFile: this.queues.entriesPerFile,
    };
    if (reset) this.checkpoint.reset(fields);
    else this.checkpoint.update(fields);
    // At open after a clean close whose recovery changed nothing, the file already says all of
    // it but `cleanShutdown` (which nothing reads back: `abort` tells a crash): no write. Against
    // the last write asked for, not the last one done: a cut's reset skipped while a write that
    // says more is in flight would let that write stand over the entries the cut drops.
    if (reset && sameBut(this.checkpoint.latest, fields, 'cleanShutdown')) return;
    try {
      await this.checkpoint.persistAsync();
      this.checkpointBehind = false;
    } catch (err) {
      // Another writer filled the disk: the checkpoint on disk stays the last one written, valid
      // and only older (recovery checks more of the log), and the next flush writes it again,
      // as consumer offsets do. Stopping would refuse appends long after space is freed.
      // At open and close the caller gets the error.
      if (clean || reset || !(err instanceof PocketMQError && err.code === 'DISK_FULL')) throw err;
      this.checkpointBehind = true;
      this.logger.error(`pocketmq: checkpoint not written, will retry: ${err.message}`);
    }
  }
}

/** True when `a` and `b` hold the same value in every field of `b` but `except`. */
function sameBut(a: CheckpointFields, b: CheckpointFields, except: keyof CheckpointFields):
  boolean {
  return (Object.keys(b) as (keyof CheckpointFields)[])
    .every((k) => k === except || a[k] === b[k]);
}
