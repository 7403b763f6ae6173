/**
 * Long polling inside the process (RocketMQ's PullRequestHoldService): a fetch that found
 * nothing waits here until the store says its queue grew past the offset, its deadline passes,
 * or its signal aborts. No polling loop: the store's arrival event wakes exactly the waiters of
 * the queue that grew.
 */
import type { Clock, TimerHandle } from '../store/clock.js';

interface Waiter {
  readonly offset: number;
  readonly resolve: (arrived: boolean) => void;
  timer: TimerHandle | null;
  onAbort: (() => void) | null;
  signal: AbortSignal | undefined;
}

/** Waiting fetches at once, across all queues; beyond it a wait returns at once (LIMIT). */
export const MAX_HELD_PULLS = 100_000;
/**
 * Longest wait one timer holds: Node turns a longer (or infinite) delay into 1 ms, which would
 * end a "wait forever" at once. A longer wait ends false at this cap; the caller waits again.
 */
export const MAX_WAIT_MS = 2 ** 31 - 1;

export class PullHoldService {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private held = 0;

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
    const key = queueKey(topic, queueId);
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = { offset, resolve, timer: null, onAbort: null, signal };
      let set = this.waiters.get(key);
      if (set === undefined) {
        set = new Set();
        this.waiters.set(key, set);
      }
      set.add(waiter);
      this.held++;
      waiter.timer = this.clock.setTimeout(() => this.finish(key, waiter, false), waitMs);
      if (signal !== undefined) {
        waiter.onAbort = () => this.finish(key, waiter, false);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
    });
  }

  /** The store's arrival event: wake the waiters of this queue that now have data. */
  notify(topic: string, queueId: number, maxOffset: number): void {
    const key = queueKey(topic, queueId);
    const set = this.waiters.get(key);
    if (set === undefined) return;
    for (const waiter of set) {
      if (maxOffset > waiter.offset) this.finish(key, waiter, true);
    }
  }

  /** Wake every waiter (shutdown): each resolves false. */
  releaseAll(): void {
    for (const [key, set] of this.waiters) {
      for (const waiter of set) this.finish(key, waiter, false);
    }
  }

  get heldCount(): number {
    return this.held;
  }

  private finish(key: string, waiter: Waiter, arrived: boolean): void {
    const set = this.waiters.get(key);
    if (set === undefined || !set.delete(waiter)) return;
    if (set.size === 0) this.waiters.delete(key);
    this.held--;
    if (waiter.timer !== null) this.clock.clearTimeout(waiter.timer);
    if (waiter.onAbort !== null) waiter.signal?.removeEventListener('abort', waiter.onAbort);
    waiter.resolve(arrived);
  }
}

function queueKey(topic: string, queueId: number): string {
  return `${topic}\u0000${queueId}`;
}
