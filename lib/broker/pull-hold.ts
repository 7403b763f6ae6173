/**
 * Long polling inside the process (RocketMQ's PullRequestHoldService): a fetch that found
 * nothing waits here until the store says its queue grew past the offset, its deadline passes,
 * or its signal aborts. No polling loop: the store's arrival event wakes exactly the waiters of
 * the queue that grew.
 *
 * A consumer that keeps up waits once per message it receives, so a wait allocates little: the
 * waiters of a queue live in a set kept for the queue (found by topic, then queue id, without a
 * key string), a signal gets one abort listener for all the waits made with it, not one per
 * wait, and one timer serves every deadline (armed for the earliest; a wait with a later one, as
 * every wait of the same length is, arms nothing).
 */
import type { Clock, TimerHandle } from '../store/clock.js';

interface Waiter {
  readonly offset: number;
  readonly resolve: (arrived: boolean) => void;
  readonly queue: Set<Waiter>;
  readonly signal: AbortSignal | undefined;
  /** When the wait ends false, on the clock. */
  readonly deadline: number;
}

/** Waiting fetches at once, across all queues; beyond it a wait returns at once (LIMIT). */
export const MAX_HELD_PULLS = 100_000;
/**
 * Longest wait one timer holds: Node turns a longer (or infinite) delay into 1 ms, which would
 * end a "wait forever" at once. A longer wait ends false at this cap; the caller waits again.
 */
export const MAX_WAIT_MS = 2 ** 31 - 1;

export class PullHoldService {
  /** topic -> queue id -> the queue's waiters (a set, once made, is kept for the queue). */
  private readonly queues = new Map<string, Set<Waiter>[]>();
  /** The waits of each signal, ended together when it aborts (one listener per signal). */
  private readonly bySignal = new WeakMap<AbortSignal, Set<Waiter>>();
  private held = 0;
  /**
   * The one deadline timer, armed for `timerAt`: the earliest deadline when it was armed. A wait
   * that ends first leaves it armed; when it fires it arms for the earliest deadline left.
   */
  private timer: TimerHandle | null = null;
  private timerAt = Infinity;

  constructor(private readonly clock: Clock) {}

  /**
   * Resolves true once `topic`/`queueId` holds a message at or past `offset` (the store's max
   * offset exceeds it), false when `timeoutMs` passes or `signal` aborts first. The caller checks
   * the queue before waiting; `maxOffset` is read again here so no arrival is missed between.
   */
  wait(topic: string, queueId: number, offset: number, timeoutMs: number,
    maxOffset: () => number, signal?: AbortSignal): Promise<boolean> {
    if (maxOffset() > offset) return Promise.resolve(true);
    const waitMs = Math.min(timeoutMs, MAX_WAIT_MS);
    if (!(waitMs > 0) || signal?.aborted === true || this.held >= MAX_HELD_PULLS) {
      return Promise.resolve(false);
    }
    const queue = this.queueOf(topic, queueId);
    const deadline = this.clock.now() + waitMs;
    if (deadline < this.timerAt) this.armAt(deadline);
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = { offset, resolve, queue, signal, deadline };
      queue.add(waiter);
      this.held++;
      if (signal !== undefined) this.signalWaits(signal).add(waiter);
    });
  }

  /** The store's arrival event: wake the waiters of this queue that now have data. */
  notify(topic: string, queueId: number, maxOffset: number): void {
    const queue = this.queues.get(topic)?.[queueId];
    if (queue === undefined || queue.size === 0) return;
    for (const waiter of queue) {
      if (maxOffset > waiter.offset) this.finish(waiter, true);
    }
  }

  /** Wake every waiter (shutdown): each resolves false. */
  releaseAll(): void {
    for (const list of this.queues.values()) {
      for (const queue of list) {
        if (queue === undefined) continue;
        for (const waiter of queue) this.finish(waiter, false);
      }
    }
    this.queues.clear();
    this.disarm();
  }

  get heldCount(): number {
    return this.held;
  }

  private queueOf(topic: string, queueId: number): Set<Waiter> {
    let list = this.queues.get(topic);
    if (list === undefined) this.queues.set(topic, (list = []));
    let queue = list[queueId];
    if (queue === undefined) list[queueId] = queue = new Set();
    return queue;
  }

  private signalWaits(signal: AbortSignal): Set<Waiter> {
    let waits = this.bySignal.get(signal);
    if (waits === undefined) {
      const made = new Set<Waiter>();
      waits = made;
      this.bySignal.set(signal, made);
      signal.addEventListener('abort', () => {
        for (const waiter of made) this.finish(waiter, false);
      }, { once: true });
    }
    return waits;
  }

  private finish(waiter: Waiter, arrived: boolean): void {
    if (!waiter.queue.delete(waiter)) return;
    this.held--;
    if (waiter.signal !== undefined) this.bySignal.get(waiter.signal)?.delete(waiter);
    waiter.resolve(arrived);
  }

  private armAt(deadline: number): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timerAt = deadline;
    this.timer = this.clock.setTimeout(() => this.expire(), deadline - this.clock.now());
  }

  private disarm(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  /** The timer: end the waits whose deadline passed, and arm for the earliest left. */
  private expire(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.clock.now();
    let next = Infinity;
    for (const list of this.queues.values()) {
      for (const queue of list) {
        if (queue === undefined) continue;
        for (const waiter of queue) {
          if (waiter.deadline <= now) this.finish(waiter, false);
          else if (waiter.deadline < next) next = waiter.deadline;
        }
      }
    }
    if (next < Infinity && this.timer === null) this.armAt(next);
  }
}
