/**
 * ProcessQueue (RocketMQ's): the messages of one owned queue that were fetched and not yet
 * acknowledged, in offset order, with their count and bytes for flow control. The group's offset
 * for the queue is the lowest unacknowledged offset, or the fetch position when none is left, so
 * a committed offset never passes a message still being handled (at least once, never a skip).
 */
import type { MessageExt } from '../broker/message.js';
import type { Clock } from '../store/clock.js';
import type { MessageQueue } from './allocate.js';

export class ProcessQueue {
  /** Unacknowledged messages by queue offset; insertion order is offset order. */
  readonly messages = new Map<number, MessageExt>();
  bytes = 0;
  /** Next offset to fetch. */
  nextOffset = 0;
  /** The fetch loop holds the queue (lock taken, start offset read). */
  started = false;
  /** Set when the queue is given up: fetching stops, pending work is dropped. */
  dropped = false;
  /** Listener calls in flight for this queue. */
  inFlight = 0;
  /** Orderly: the serial consume loop is running. */
  consuming = false;
  /** The offset last committed from here (-1: none). */
  committed = -1;
  /** Offsets of held messages out of retries whose move to the DLQ failed (tried again). */
  readonly deadLetterDue = new Set<number>();
  readonly controller = new AbortController();
  private readonly waiters = new Set<() => void>();

  constructor(readonly mq: MessageQueue) {}

  get count(): number {
    return this.messages.size;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  put(messages: readonly MessageExt[]): void {
    for (const m of messages) {
      this.messages.set(m.queueOffset, m);
      this.bytes += m.storeSize;
    }
  }

  /** Acknowledge messages; returns the offset the group may commit now. */
  remove(messages: readonly MessageExt[]): number {
    for (const m of messages) {
      const held = this.messages.get(m.queueOffset);
      if (held === undefined) continue;
      this.messages.delete(m.queueOffset);
      this.deadLetterDue.delete(m.queueOffset);
      this.bytes -= held.storeSize;
    }
    this.notify();
    return this.ackOffset();
  }

  /** Lowest unacknowledged offset, or the fetch position when everything is acknowledged. */
  ackOffset(): number {
    for (const offset of this.messages.keys()) return offset;
    return this.nextOffset;
  }

  /** Replace a held message (a redelivery with reconsumeTimes counted up). */
  update(message: MessageExt): void {
    if (this.messages.has(message.queueOffset)) this.messages.set(message.queueOffset, message);
  }

  /** Orderly: the first `max` unacknowledged messages, in offset order. */
  head(max: number): MessageExt[] {
    const out: MessageExt[] = [];
    for (const m of this.messages.values()) {
      if (out.length >= max) break;
      out.push(m);
    }
    return out;
  }

  /** Resolves at the next acknowledgement, end of a listener call, or drop. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.add(resolve));
  }

  /** Resolves after `ms` on `clock`, or at once when the queue is dropped. */
  pause(clock: Clock, ms: number): Promise<void> {
    const signal = this.signal;
    if (ms <= 0 || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clock.clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = clock.setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  drop(): void {
    this.dropped = true;
    this.controller.abort();
    this.notify();
  }

  notify(): void {
    if (this.waiters.size === 0) return;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const resolve of waiters) resolve();
  }
}
