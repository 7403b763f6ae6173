/**
 * Retention and disk guard (RocketMQ's CleanCommitLogService, for one process):
 * - every `cleanResourceIntervalMs`, commit-log segments whose newest record is older than
 *   `fileReservedTimeHours` are deleted, oldest first; ConsumeQueue and index files that only
 *   point into deleted segments go with them and consumers before the new minimum resume there;
 * - when disk use passes `diskMaxUsedSpaceRatio`, the oldest segments go before they expire;
 * - when disk use passes `diskFullRatio`, appends fail with DISK_FULL until space is freed.
 * The newest segment, any segment not yet flushed, and any segment whose ConsumeQueue and index
 * entries the checkpoint on disk does not yet call durable are never deleted. Each pass publishes
 * what it did on the `pocketmq:retention` channel (lib/channels.ts), when someone listens.
 *
 * A segment's age is the store time of the first record of the segment after it (every record of
 * a segment is older than that), or the newest store time for the segment before the last.
 */
import { channel } from 'node:diagnostics_channel';
import { channels, type RetentionMessage } from '../channels.js';
import type { Clock, TimerHandle } from './clock.js';
import type { CommitLog } from './commit-log.js';
import type { IoBackend } from './io/backend.js';

/** Segments deleted per run at most (RocketMQ's deleteFileBatchMax). */
const DELETE_BATCH_MAX = 10;

const retentionChannel = channel(channels.retention);

export interface RetentionOptions {
  readonly clock: Clock;
  readonly backend: IoBackend;
  readonly dir: string;
  readonly commitLog: CommitLog;
  readonly fileReservedTimeHours: number;
  readonly diskMaxUsedSpaceRatio: number;
  readonly diskFullRatio: number;
  readonly intervalMs: number;
  /**
   * Where ConsumeQueues and index are durable, as the checkpoint on disk says: a segment past
   * it is kept, since recovery after a crash re-dispatches from there.
   */
  readonly durableDispatchOffset: () => number;
  /** Segments holding this commit-log offset or later are kept (records still needed above). */
  readonly heldFrom: () => number;
  /** Called after segments were deleted, with the commit log's new minimum offset. */
  readonly onDeleted: (minOffset: number) => void;
  readonly onError: (err: unknown) => void;
}

export interface RetentionRun {
  readonly deletedSegments: number;
  readonly usedRatio: number;
  readonly diskFull: boolean;
}

export class RetentionService {
  private timer: TimerHandle | null = null;
  private full = false;
  private stopped = true;

  constructor(private readonly options: RetentionOptions) {}

  /** True while disk use is past the hard ratio: appends must fail with DISK_FULL. */
  get diskFull(): boolean {
    return this.full;
  }

  start(): void {
    this.stopped = false;
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.options.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = null;
      try {
        this.run();
      } catch (err) {
        this.options.onError(err);
      }
      this.arm();
    }, this.options.intervalMs);
  }

  /** Disk use as a ratio of the filesystem's size. */
  usedRatio(): number {
    const { totalBytes, freeBytes } = this.options.backend.diskUsage(this.options.dir);
    return totalBytes <= 0 ? 0 : 1 - freeBytes / totalBytes;
  }

  /** One pass: delete what is due, then re-check the disk. Also callable directly (tests, CLI). */
  run(): RetentionRun {
    const o = this.options;
    let ratio = this.usedRatio();
    const pressed = ratio > o.diskMaxUsedSpaceRatio;
    const reservedMs = o.fileReservedTimeHours * 3_600_000;
    const now = o.clock.now();
    const files = o.commitLog.queue.files;
    const flushed = Math.min(o.commitLog.flushedOffset, o.durableDispatchOffset(), o.heldFrom());
    let count = 0;
    while (count < DELETE_BATCH_MAX && count < files.length - 1) {
      const file = files[count]!;
      if (file.fileFromOffset + file.sizeBytes > flushed) break;
      const newest = this.newestTimestampOf(count);
      if (!pressed && now - newest < reservedMs) break;
      count++;
    }
    if (count > 0) {
      o.commitLog.queue.deleteOldest(count);
      o.onDeleted(o.commitLog.minOffset);
      ratio = this.usedRatio();
    }
    const wasFull = this.full;
    this.full = ratio >= o.diskFullRatio;
    if (retentionChannel.hasSubscribers) {
      const message: RetentionMessage = { deletedSegments: count, minOffset: o.commitLog.minOffset,
        usedRatio: ratio, diskFull: this.full, diskFullChanged: wasFull !== this.full };
      retentionChannel.publish(message);
    }
    return { deletedSegments: count, usedRatio: ratio, diskFull: this.full };
  }

  private newestTimestampOf(index: number): number {
    const log = this.options.commitLog;
    const next = log.queue.files[index + 1];
    if (next === undefined) return log.maxStoreTimestamp;
    // Not mapped for one record (a mapping counts its segment's length as external memory).
    const first = next.wrote > 0 ? log.readWithoutMapping(next.fileFromOffset) : null;
    return first?.storeTimestamp ?? log.maxStoreTimestamp;
  }
}
