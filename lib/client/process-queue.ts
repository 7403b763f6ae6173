/**
 * ProcessQueue (RocketMQ's): the messages of one owned queue that were fetched and not yet
 * acknowledged, in offset order, with their count and bytes for flow control. The group's offset
 * for the queue is the lowest unacknowledged offset, or the fetch position when none is left, so
 * a committed offset never passes a message still being handled (at least once, never a skip).
 */
import { assert, failAssertion } from '../errors.js';
import type { Clock, MessageExt, MessageQueue } from '../broker/port.js';

export class ProcessQueue {
  /**
   * Unacknowledged offsets and their stored sizes; insertion order is offset order. Only numbers:
   * a long-lived table pointing at every young message object made each GC scavenge scan it
   * (push catch-up spent 40 % of its time in GC); the messages live in the listener calls.
   */
  private readonly held = new HeldOffsets();
  /** Orderly: the messages themselves, for `head` and `update` (redelivery in place). */
  private readonly messages: Map<number, MessageExt> | null;
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
  /** `committed` changed and waits for the consumer's write at the end of the turn. */
  offsetDirty = false;
  /** Offsets of held messages out of retries whose move to the DLQ failed (tried again). */
  readonly deadLetterDue = new Set<number>();
  readonly controller = new AbortController();
  private readonly waiters = new Set<() => void>();

  /** `keepMessages`: hold the messages too (orderly consumption reads them back). */
  constructor(readonly mq: MessageQueue, keepMessages = false) {
    this.messages = keepMessages ? new Map() : null;
  }

  get count(): number {
    return this.held.count;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  put(messages: readonly MessageExt[]): void {
    for (const m of messages) {
      this.held.add(m.queueOffset, m.storeSize);
      this.messages?.set(m.queueOffset, m);
      this.bytes += m.storeSize;
    }
  }

  /** Acknowledge messages; returns the offset the group may commit now. */
  remove(messages: readonly MessageExt[]): number {
    for (const m of messages) {
      const size = this.held.remove(m.queueOffset);
      if (size < 0) continue;
      this.messages?.delete(m.queueOffset);
      this.deadLetterDue.delete(m.queueOffset);
      this.bytes -= size;
    }
    this.notify();
    return this.ackOffset();
  }

  /** Lowest unacknowledged offset, or the fetch position when everything is acknowledged. */
  ackOffset(): number {
    return this.held.first() ?? this.nextOffset;
  }

  /** Orderly: replace a held message (a redelivery with reconsumeTimes counted up). */
  update(message: MessageExt): void {
    if (this.messages?.has(message.queueOffset) === true) {
      this.messages.set(message.queueOffset, message);
    }
  }

  /** Orderly: the first `max` unacknowledged messages, in offset order. */
  head(max: number): MessageExt[] {
    assert(this.messages !== null, 'head() needs a queue that keeps its messages');
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

/**
 * Held offsets in fetch order (always increasing), with their sizes: two arrays of numbers, a
 * head and an end. An acknowledgement marks its slot (binary search) and the head moves past
 * marked slots; emptied, the arrays are filled again from the start without shrinking (a
 * consumer that keeps up empties them after every fetch; shrinking and growing them again was
 * garbage per delivery), and compacted once the acknowledged prefix is most of them.
 */
class HeldOffsets {
  private offsets: number[] = [];
  private sizes: number[] = [];
  private start = 0;
  private end = 0;
  count = 0;

  add(offset: number, size: number): void {
    const last = this.end > this.start ? this.offsets[this.end - 1]! : -1;
    if (offset <= last) failAssertion(`held offsets must increase: ${offset} after ${last}`);
    if (this.end < this.offsets.length) {
      this.offsets[this.end] = offset;
      this.sizes[this.end] = size;
    } else {
      this.offsets.push(offset);
      this.sizes.push(size);
    }
    this.end++;
    this.count++;
  }

  /** Remove `offset`; its size, or -1 when it is not held. */
  remove(offset: number): number {
    let lo = this.start;
    let hi = this.end - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const at = this.offsets[mid]!;
      if (at < offset) lo = mid + 1;
      else if (at > offset) hi = mid - 1;
      else return this.take(mid);
    }
    return -1;
  }

  first(): number | undefined {
    return this.start < this.end ? this.offsets[this.start] : undefined;
  }

  private take(index: number): number {
    const size = this.sizes[index]!;
    if (size < 0) return -1;
    this.sizes[index] = -1;
    this.count--;
    while (this.start < this.end && this.sizes[this.start]! < 0) this.start++;
    if (this.start === this.end) {
      this.start = 0;
      this.end = 0;
      if (this.offsets.length > KEPT_SLOTS) {
        // A backlog's arrays go once it is acknowledged.
        this.offsets = [];
        this.sizes = [];
      }
    } else if (this.start > KEPT_SLOTS && this.start * 2 > this.end) {
      this.offsets.copyWithin(0, this.start, this.end);
      this.sizes.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    return size;
  }
}

/** Slots emptied arrays keep for reuse; larger ones are let go. */
const KEPT_SLOTS = 1024;
