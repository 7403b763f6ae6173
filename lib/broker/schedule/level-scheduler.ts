/**
 * Delay levels (RocketMQ's ScheduleMessageService): queue `n` of SCHEDULE_TOPIC_XXXX holds the
 * messages of level n + 1, all with one delay, so they fall due in queue order. Each queue is
 * walked from its persisted offset: due entries are delivered together, and the queue then
 * sleeps until its next entry is due (one timer, no polling) or until a message arrives in an
 * empty queue. A failed delivery is tried again after `limits.scheduleRetryMs`.
 */
import { limits } from '../../limits.js';
import type { TimerHandle } from '../../store/clock.js';
import { deliverAll, type SchedulerHost } from './deliver.js';
import { SCHEDULE_TOPIC } from './schedule-record.js';

/** Due entries delivered in one batch. */
const DELIVER_BATCH = 256;

export class LevelScheduler {
  private readonly timers = new Map<number, TimerHandle>();
  private readonly running = new Map<number, Promise<void>>();
  private closed = false;

  constructor(private readonly host: SchedulerHost, private readonly levels: number) {}

  /** Walk every level queue that holds entries. */
  start(): void {
    for (let queueId = 0; queueId < this.levels; queueId++) this.wake(queueId);
  }

  /** A message arrived in a level queue: walk it unless it waits for a due entry already. */
  arrived(queueId: number): void {
    if (!this.timers.has(queueId)) this.wake(queueId);
  }

  /**
   * The commit-log offset of the oldest entry not delivered as far as the progress file on disk
   * knows (retention keeps it).
   */
  oldestPending(): number {
    let oldest = Number.MAX_SAFE_INTEGER;
    for (let queueId = 0; queueId < this.levels; queueId++) {
      this.host.engine.visitQueueEntries(SCHEDULE_TOPIC, queueId,
        this.host.progress.levelOnDisk(queueId), 1, (_q, physicalOffset) => {
          oldest = Math.min(oldest, physicalOffset);
          return true;
        });
    }
    return oldest;
  }

  /** Stop walking; resolves once no delivery is in flight. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers.values()) this.host.clock.clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.running.values()]);
  }

  private wake(queueId: number): void {
    if (this.closed || this.running.has(queueId)) return;
    const timer = this.timers.get(queueId);
    if (timer !== undefined) this.host.clock.clearTimeout(timer);
    this.timers.delete(queueId);
    const run = this.walk(queueId).catch((err: unknown) => {
      const why = err instanceof Error ? err.message : String(err);
      this.host.logger.error(`pocketmq: delay level ${queueId + 1}: delivery failed, trying ` +
        `again in ${limits.scheduleRetryMs} ms: ${why}`);
      this.sleep(queueId, limits.scheduleRetryMs);
    }).finally(() => this.running.delete(queueId));
    this.running.set(queueId, run);
  }

  private sleep(queueId: number, ms: number): void {
    if (this.closed) return;
    this.timers.set(queueId, this.host.clock.setTimeout(() => {
      this.timers.delete(queueId);
      this.wake(queueId);
    }, Math.max(0, ms)));
  }

  private async walk(queueId: number): Promise<void> {
    const { engine, progress, clock } = this.host;
    while (!this.closed) {
      const now = clock.now();
      const due: number[] = [];
      const skipped: number[] = [];
      let nextDue = -1;
      const cancelled = progress.cancelled;
      const next = engine.visitQueueEntries(SCHEDULE_TOPIC, queueId, progress.level(queueId),
        DELIVER_BATCH, (_q, physicalOffset, _size, dueMs) => {
          if (dueMs > now) {
            nextDue = dueMs;
            return false;
          }
          (cancelled.has(physicalOffset) ? skipped : due).push(physicalOffset);
          return true;
        });
      if (next === progress.level(queueId)) {
        // Nothing due: sleep until the head is due, or until an arrival wakes an empty queue.
        if (nextDue >= 0) this.sleep(queueId, nextDue - now);
        return;
      }
      await deliverAll(this.host, due);
      // A cancel mark goes in the same change as the level that passes it: a progress write
      // in between would say neither (seed 24), and a crash then delivered the message.
      for (const physicalOffset of skipped) cancelled.delete(physicalOffset);
      if (skipped.length > 0) progress.changed();
      progress.setLevel(queueId, next);
    }
  }
}
