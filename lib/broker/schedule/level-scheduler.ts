/**
 * Delay levels (RocketMQ's ScheduleMessageService): queue `n` of SCHEDULE_TOPIC_XXXX holds the
 * messages of level n + 1, all with one delay, so they fall due in queue order. Each queue is
 * walked from its persisted offset: due entries are delivered together, and the queue then
 * sleeps until its next entry is due (one timer, no polling) or until a message arrives in an
 * empty queue. A failed delivery is tried again after `limits.scheduleRetryMs`.
 */
import { limits } from '../../limits.js';
import type { TimerHandle } from '../../store/clock.js';
import { deliverAll, firstFailure, type Delivery, type SchedulerHost } from './deliver.js';
import { SCHEDULE_TOPIC } from './schedule-record.js';

/** Due entries delivered in one batch. */
const DELIVER_BATCH = 256;

/** What one step of a walk met: entries as [queue offset, commit-log offset]. */
interface Walked {
  /** Entries given to delivery, and what became of each. */
  readonly due: readonly [number, number][];
  readonly outcomes: readonly Delivery[];
  /** Entries cancelled (skipped). */
  readonly skipped: readonly [number, number][];
}

export class LevelScheduler {
  private readonly timers = new Map<number, TimerHandle>();
  private readonly running = new Map<number, Promise<void>>();
  /** Commit-log offsets of the entries being delivered now (too late to cancel). */
  private readonly delivering = new Set<number>();
  private closed = false;

  constructor(private readonly host: SchedulerHost, private readonly levels: number) {}

  /**
   * Walk every level queue that holds entries past its progress; an empty one waits for an
   * arrival (`arrived`), as after a walk that found it empty.
   */
  start(): void {
    const { engine, progress } = this.host;
    for (let queueId = 0; queueId < this.levels; queueId++) {
      if (engine.getMaxOffsetInQueue(SCHEDULE_TOPIC, queueId) > progress.level(queueId)) {
        this.wake(queueId);
      }
    }
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

  /** Whether the entry whose record is at `physicalOffset` is being delivered now. */
  isDelivering(physicalOffset: number): boolean {
    return this.delivering.has(physicalOffset);
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
      // Due entries (queue offset, commit-log offset): to deliver, and cancelled ones.
      const due: [number, number][] = [];
      const skipped: [number, number][] = [];
      let nextDue = -1;
      const next = engine.visitQueueEntries(SCHEDULE_TOPIC, queueId, progress.level(queueId),
        DELIVER_BATCH, (q, physicalOffset, _size, dueMs) => {
          if (dueMs > now) {
            nextDue = dueMs;
            return false;
          }
          (progress.cancelled.has(physicalOffset) ? skipped : due).push([q, physicalOffset]);
          return true;
        });
      if (next === progress.level(queueId)) {
        // Nothing due: sleep until the head is due, or until an arrival wakes an empty queue.
        if (nextDue >= 0) this.sleep(queueId, nextDue - now);
        return;
      }
      const offsets = due.map(([, p]) => p);
      for (const p of offsets) this.delivering.add(p);
      let outcomes: Delivery[];
      try {
        outcomes = await deliverAll(this.host, offsets);
      } finally {
        for (const p of offsets) this.delivering.delete(p);
      }
      const failure = firstFailure(outcomes);
      const failedAt = failure === null ? -1 : outcomes.indexOf(failure);
      this.pass(queueId, failedAt < 0 ? next : due[failedAt]![0], { due, outcomes, skipped });
      if (failure !== null) throw failure.error;
    }
  }

  /**
   * Move the level to `end` (past what a walk delivered or skipped, up to its first failure).
   * A cancel mark goes in the same change as the level that passes it: a progress write in
   * between would say neither (seed 24), and a crash then delivered the message. An entry
   * delivered past a failed one is marked as a cancelled one is, so that the next walk, which
   * starts at the failed one, does not deliver it again.
   */
  private pass(queueId: number, end: number, walked: Walked): void {
    const { progress } = this.host;
    const marks = progress.cancelled;
    let changed = false;
    for (const [q, p] of walked.skipped) {
      if (q < end) changed = marks.delete(p) || changed;
    }
    for (const [i, [q, p]] of walked.due.entries()) {
      if (q < end || walked.outcomes[i] !== 'delivered' || marks.has(p)) continue;
      marks.add(p);
      changed = true;
    }
    if (changed) progress.changed();
    progress.setLevel(queueId, end);
  }
}
