/**
 * Timer messages (`deliverAt`, RocketMQ 5's timer messages): SCHEDULE_TOPIC_TIMER holds them in
 * the order they were sent, each due at its own time (its ConsumeQueue tag code).
 *
 * Only the entries due within `limits.timerWindowMs` are held in memory, in a heap of numbers;
 * every half window a scan of the queue's entries (not its records) takes in those that came
 * into the window, so a million pending timers cost a scan, not a million objects. Entries that
 * arrive meanwhile are looked at as they arrive. A timer fires at the earliest due time; due
 * entries are delivered together and marked done in a bitmap (delivered or cancelled entries),
 * whose watermark is the first entry not done: what retention keeps and where a restart scans.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { limits } from '../../limits.js';
import type { TimerHandle } from '../../store/clock.js';
import { deliverAll, firstFailure, type Delivery, type SchedulerHost } from './deliver.js';
import type { DoneBits } from './done-bits.js';
import { DueHeap } from './due-heap.js';
import { TIMER_TOPIC } from './schedule-record.js';

const QUEUE_ID = 0;
const DELIVER_BATCH = 256;

export class TimerScheduler {
  private readonly heap = new DueHeap();
  /** Entries before this queue offset were looked at for the window ending `windowEnd`. */
  private scanned = 0;
  private windowEnd = -Infinity;
  private scanning: Promise<void> | null = null;
  private delivering: Promise<void> | null = null;
  private deliveryTimer: TimerHandle | null = null;
  private scanTimer: TimerHandle | null = null;
  private closed = false;
  /** After a failed delivery, the next attempt waits until then. */
  private retryAt = 0;
  /** Queue offsets of the entries being delivered now (too late to cancel). */
  private readonly inFlight = new Set<number>();

  constructor(private readonly host: SchedulerHost) {}

  private get done(): DoneBits {
    return this.host.progress.timerDone;
  }

  /** Take in what is due soon, and scan again every half window. */
  start(): void {
    this.scanned = this.done.base;
    this.rescan();
  }

  /** Entries arrived in the timer queue: take in those due within the window. */
  arrived(): void {
    if (this.scanning !== null || this.closed) return;
    this.scanned = this.host.engine.visitQueueEntries(TIMER_TOPIC, QUEUE_ID, this.scanned,
      Number.MAX_SAFE_INTEGER, (q, physicalOffset, _size, dueMs) => {
        if (dueMs <= this.windowEnd && !this.done.has(q)) this.heap.push(dueMs, q, physicalOffset);
        return true;
      });
    this.armDelivery();
  }

  /**
   * Cancel the entry at `queueOffset`; false when it was delivered (or cancelled) already, or
   * is being delivered now.
   */
  cancel(queueOffset: number): boolean {
    if (this.inFlight.has(queueOffset) || !this.done.set(queueOffset)) return false;
    this.host.progress.changed();
    return true;
  }

  /** Whether the entry at `queueOffset` is delivered or cancelled. */
  isDone(queueOffset: number): boolean {
    return this.done.has(queueOffset);
  }

  /**
   * The commit-log offset of the oldest entry not done as far as the progress file on disk
   * knows (retention keeps it).
   */
  oldestPending(): number {
    let oldest = Number.MAX_SAFE_INTEGER;
    const from = this.host.progress.timerBaseOnDisk;
    this.host.engine.visitQueueEntries(TIMER_TOPIC, QUEUE_ID, from, 1, (_q, physicalOffset) => {
      oldest = physicalOffset;
      return false;
    });
    return oldest;
  }

  /** Held in memory now (for stats and the bench). */
  get held(): number {
    return this.heap.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of [this.deliveryTimer, this.scanTimer]) {
      if (timer !== null) this.host.clock.clearTimeout(timer);
    }
    this.deliveryTimer = null;
    this.scanTimer = null;
    await Promise.allSettled([this.scanning, this.delivering]);
  }

  private rescan(): void {
    if (this.closed || this.scanning !== null) return;
    this.scanning = this.scan().catch((err: unknown) => {
      const why = err instanceof Error ? err.message : String(err);
      this.host.logger.error(`pocketmq: timer messages: scan failed: ${why}`);
    }).finally(() => {
      this.scanning = null;
      this.armDelivery();
      if (this.closed) return;
      this.scanTimer = this.host.clock.setTimeout(() => {
        this.scanTimer = null;
        this.rescan();
      }, limits.timerWindowMs / 2);
    });
  }

  /**
   * Move the window on: entries already looked at that now fall in it, then every entry not
   * yet looked at, in chunks that yield to the event loop.
   */
  private async scan(): Promise<void> {
    const engine = this.host.engine;
    const from = this.windowEnd;
    const to = this.host.clock.now() + limits.timerWindowMs;
    let at = this.done.base;
    while (at < this.scanned && !this.closed) {
      const end = Math.min(this.scanned, at + limits.timerScanChunk);
      at = engine.visitQueueEntries(TIMER_TOPIC, QUEUE_ID, at, end - at,
        (q, physicalOffset, _size, dueMs) => {
          if (dueMs > from && dueMs <= to && !this.done.has(q)) {
            this.heap.push(dueMs, q, physicalOffset);
          }
          return true;
        });
      if (at < end) break;
      await yieldToLoop();
    }
    this.windowEnd = to;
    for (;;) {
      const before = this.scanned;
      this.scanned = engine.visitQueueEntries(TIMER_TOPIC, QUEUE_ID, before,
        limits.timerScanChunk, (q, physicalOffset, _size, dueMs) => {
          if (dueMs <= to && !this.done.has(q)) this.heap.push(dueMs, q, physicalOffset);
          return true;
        });
      if (this.scanned === before || this.closed) return;
      await yieldToLoop();
    }
  }

  private armDelivery(): void {
    if (this.closed || this.delivering !== null) return;
    if (this.deliveryTimer !== null) this.host.clock.clearTimeout(this.deliveryTimer);
    this.deliveryTimer = null;
    if (this.heap.size === 0) return;
    const wait = Math.max(this.heap.nextDue, this.retryAt) - this.host.clock.now();
    if (wait <= 0) {
      this.deliverDue();
      return;
    }
    this.deliveryTimer = this.host.clock.setTimeout(() => {
      this.deliveryTimer = null;
      this.deliverDue();
    }, wait);
  }

  private deliverDue(): void {
    this.delivering = this.deliverLoop().catch((err: unknown) => {
      const why = err instanceof Error ? err.message : String(err);
      this.host.logger.error(`pocketmq: timer messages: delivery failed, trying again in ` +
        `${limits.scheduleRetryMs} ms: ${why}`);
      this.retryAt = this.host.clock.now() + limits.scheduleRetryMs;
    }).finally(() => {
      this.delivering = null;
      this.armDelivery();
    });
  }

  private async deliverLoop(): Promise<void> {
    while (!this.closed && this.heap.size > 0 && this.heap.nextDue <= this.host.clock.now()) {
      const batch: [number, number][] = [];
      while (batch.length < DELIVER_BATCH && this.heap.size > 0 &&
        this.heap.nextDue <= this.host.clock.now()) {
        const [q, physicalOffset] = this.heap.pop();
        if (!this.done.has(q)) batch.push([q, physicalOffset]);
      }
      for (const [q] of batch) this.inFlight.add(q);
      let outcomes: Delivery[];
      try {
        outcomes = await deliverAll(this.host, batch.map(([, p]) => p));
      } finally {
        this.inFlight.clear();
      }
      for (const [i, [q, p]] of batch.entries()) {
        // Not stored: back in the heap, due now, for the next attempt. A stored one is done
        // even if a flush fails later: another attempt would store another copy.
        if (typeof outcomes[i] === 'object') this.heap.push(this.host.clock.now(), q, p);
        else this.done.set(q);
      }
      this.host.progress.changed();
      const failure = firstFailure(outcomes);
      if (failure !== null) throw failure.error;
    }
  }
}
