/**
 * Long polling inside the process (RocketMQ's PullRequestHoldService): a fetch that found
 * nothing waits here until the store says its queue grew past the offset, its deadline passes,
 * or its signal aborts. No polling loop: the store's arrival event wakes exactly the waiters of
 * the queue that grew.
 *
 * A consumer that keeps up waits once per message it receives, so a wait allocates little
 * besides its promise: the waiters of a queue live in an array kept for the queue (found by
 * topic, then queue id, without a key string; a Set would allocate as waiters come and go),
 * a signal gets one abort listener for all the waits made with it, not one per wait, and one
 * timer serves every deadline (armed for the earliest; a wait with a later one, as every wait
 * of the same length is, arms nothing).
 */
import type { Clock, TimerHandle } from '../store/clock.js';

interface Waiter {
  readonly offset: number;
  readonly resolve: (arrived: boolean) => void;
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
  /** topic -> queue id -> the queue's waiters, in arrival order (kept for the queue). */
  private readonly queues = new Map<string, Waiter[][]>();
  /** The waiter arrays each signal has waits in (one listener per signal ends them). */
  private readonly bySignal = new WeakMap<AbortSignal, Waiter[][]>();
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
    if (signal !== undefined) this.watch(signal, queue);
    return new Promise<boolean>((resolve) => {
      queue.push({ offset, resolve, signal, deadline });
      this.held++;
    });
  }

  /** The store's arrival event: wake the waiters of this queue that now have data. */
  notify(topic: string, queueId: number, maxOffset: number): void {
    const queue = this.queues.get(topic)?.[queueId];
    if (queue === undefined || queue.length === 0) return;
    this.endWhere(queue, (waiter) => maxOffset > waiter.offset, true);
  }

  /** Wake every waiter (shutdown): each resolves false. */
  releaseAll(): void {
    for (const list of this.queues.values()) {
      for (const queue of list) {
        if (queue !== undefined) this.endWhere(queue, () => true, false);
      }
    }
    this.queues.clear();
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  get heldCount(): number {
    return this.held;
  }

  private queueOf(topic: string, queueId: number): Waiter[] {
    let list = this.queues.get(topic);
    if (list === undefined) this.queues.set(topic, (list = []));
    let queue = list[queueId];
    if (queue === undefined) list[queueId] = queue = [];
    return queue;
  }

  /** Give `signal` its one abort listener, and note that it has waits in `queue`. */
  private watch(signal: AbortSignal, queue: Waiter[]): void {
    let queues = this.bySignal.get(signal);
    if (queues === undefined) {
      const made: Waiter[][] = [];
      queues = made;
      this.bySignal.set(signal, made);
      signal.addEventListener('abort', () => {
        for (const q of made) this.endWhere(q, (waiter) => waiter.signal === signal, false);
      }, { once: true });
    }
    if (!queues.includes(queue)) queues.push(queue);
  }

  /**
   * End the waits of `queue` that `ends` picks, resolving them with `arrived`; the others keep
   * their order. The array is compacted in place (pop, which never shrinks it).
   */
  private endWhere(queue: Waiter[], ends: (waiter: Waiter) => boolean, arrived: boolean): void {
    let kept = 0;
    for (let i = 0; i < queue.length; i++) {
      const waiter = queue[i]!;
      if (ends(waiter)) {
        this.held--;
        waiter.resolve(arrived);
      } else {
        queue[kept++] = waiter;
      }
    }
    while (queue.length > kept) queue.pop();
  }

  private armAt(deadline: number): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timerAt = deadline;
    this.timer = this.clock.setTimeout(() => this.expire(), deadline - this.clock.now());
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
        this.endWhere(queue, (waiter) => waiter.deadline <= now, false);
        for (const waiter of queue) next = Math.min(next, waiter.deadline);
      }
    }
    if (next < Infinity) this.armAt(next);
  }
}
