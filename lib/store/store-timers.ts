/**
 * StoreTimers: what a writable store does on timers, besides appends. The commit log's
 * interval flush (ASYNC_FLUSH; SYNC_FLUSH has its group commit instead), the logics' flush with
 * its checkpoint (ConsumeQueues and index), and retention. Started once the open has recovered;
 * stopped at close and at a failed open, and retention also when the store stops.
 */
import type { CommitLog } from './commit-log.js';
import { IntervalFlushService } from './flush/flush-service.js';
import type { IoBackend } from './io/backend.js';
import type { Logics } from './logics.js';
import type { ResolvedStoreOptions } from './options.js';
import { RetentionService } from './retention.js';

export interface StoreTimersHost {
  /** A flush or a retention pass failed: the store stops. */
  readonly onError: (err: unknown) => void;
  /** Retention keeps every segment at or after this offset (see StoreEngine.holdRetention). */
  readonly heldFrom: () => number;
}

export class StoreTimers {
  readonly logFlusher: IntervalFlushService;
  readonly logicsFlusher: IntervalFlushService;
  readonly retention: RetentionService;

  constructor(o: ResolvedStoreOptions, dir: string, backend: IoBackend, commitLog: CommitLog,
    logics: Logics, host: StoreTimersHost) {
    const onError = host.onError;
    this.logFlusher = new IntervalFlushService({
      clock: o.clock, intervalMs: o.flushIntervalMs, leastPages: o.flushLeastPages,
      thoroughIntervalMs: o.flushThoroughIntervalMs, onError,
      dirtyBytes: () => commitLog.maxOffset - commitLog.flushedOffset,
      flush: () => commitLog.flush(),
    });
    this.logicsFlusher = new IntervalFlushService({
      clock: o.clock, intervalMs: o.flushConsumeQueueIntervalMs, leastPages: 0,
      thoroughIntervalMs: o.flushConsumeQueueIntervalMs, onError,
      dirtyBytes: () => logics.dirtyBytes(),
      flush: () => logics.flush(false),
    });
    this.retention = new RetentionService({
      clock: o.clock, backend, dir, commitLog,
      fileReservedTimeHours: o.fileReservedTimeHours, intervalMs: o.cleanResourceIntervalMs,
      diskMaxUsedSpaceRatio: o.diskMaxUsedSpaceRatio, diskFullRatio: o.diskFullRatio,
      durableDispatchOffset: () => logics.checkpoint.durable.logicsDispatchedOffset,
      heldFrom: host.heldFrom,
      onDeleted: (min) => logics.deleteBefore(min), onError,
    });
  }

  /** Start every timer; `flushLog`: the commit log's interval flush too (ASYNC_FLUSH). */
  start(flushLog: boolean): void {
    if (flushLog) this.logFlusher.start();
    this.logicsFlusher.start();
    this.retention.start();
  }

  stop(): void {
    this.logFlusher.stop();
    this.logicsFlusher.stop();
    this.retention.stop();
  }

  /** Settles once no periodic flush is in flight (a final flush must follow, not race, it). */
  async idle(): Promise<void> {
    await Promise.all([this.logFlusher.idle(), this.logicsFlusher.idle()]);
  }
}
