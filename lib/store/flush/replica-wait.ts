/**
 * ReplicaWaitService (SYNC_MASTER): an append waits until a follower has acknowledged the log
 * past its end, as RocketMQ's GroupTransferService does. The replication layer reports each
 * acknowledgement (`update`); every waiter at or below the acknowledged offset resolves at once,
 * so appends in flight together share one round trip to the follower, as they share one
 * fdatasync under SYNC_FLUSH.
 *
 * Each waiter carries a deadline (the store's syncFlushTimeoutMs): past it the append resolves
 * FLUSH_SLAVE_TIMEOUT. With no follower connected, or the best one more than `maxGapBytes`
 * behind the append, it resolves SLAVE_NOT_AVAILABLE at once. In each case the record is stored
 * on this store; only its copy on a follower is unconfirmed.
 *
 * Invariants: waiters are queued in offset order (appends are sequential) and so in deadline
 * order; the acknowledged offset never moves backwards while a follower stays connected.
 */
import type { Clock, TimerHandle } from '../clock.js';
import type { PutStatus } from '../put-status.js';

interface Waiter {
  readonly offset: number;
  readonly deadline: number;
  resolve(status: PutStatus): void;
}

export class ReplicaWaitService {
  private waiters: Waiter[] = [];
  private head = 0;
  private timer: TimerHandle | null = null;
  private followers = 0;
  private acked = 0;

  constructor(
    private readonly clock: Clock,
    private readonly timeoutMs: number,
    private readonly maxGapBytes: number,
  ) {}

  get pending(): number {
    return this.waiters.length - this.head;
  }

  /** Followers in sync now, and the highest commit-log offset one of them acknowledged. */
  update(followers: number, ackedOffset: number): void {
    this.followers = followers;
    this.acked = ackedOffset;
    const waiters = this.waiters;
    let i = this.head;
    while (i < waiters.length && waiters[i]!.offset <= ackedOffset) {
      waiters[i++]!.resolve('PUT_OK');
    }
    this.head = i;
    this.compact();
  }

  /**
   * Resolves `result` once a follower acknowledged the log up to `offset`; its status becomes
   * FLUSH_SLAVE_TIMEOUT or SLAVE_NOT_AVAILABLE when that does not happen, unless an earlier
   * wait (the flush) already set a failure status, which stays.
   */
  waitForResult<T extends { status: string }>(offset: number, result: T): Promise<T> {
    return new Promise<T>((resolve) => this.enqueue(offset, (status) => {
      if (status !== 'PUT_OK' && result.status === 'PUT_OK') result.status = status;
      resolve(result);
    }));
  }

  private enqueue(offset: number, resolve: (status: PutStatus) => void): void {
    if (offset <= this.acked && this.followers > 0) {
      resolve('PUT_OK');
      return;
    }
    if (this.followers === 0 || offset - this.acked > this.maxGapBytes) {
      resolve('SLAVE_NOT_AVAILABLE');
      return;
    }
    const deadline = this.clock.now() + this.timeoutMs;
    this.waiters.push({ offset, deadline, resolve });
    if (this.timer === null) this.armTimer(deadline);
  }

  private compact(): void {
    if (this.head === this.waiters.length) {
      this.waiters = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters = this.waiters.slice(this.head);
      this.head = 0;
    }
    if (this.pending === 0) this.disarmTimer();
  }

  private armTimer(at: number): void {
    this.disarmTimer();
    this.timer = this.clock.setTimeout(() => this.expire(), Math.max(0, at - this.clock.now()));
  }

  private disarmTimer(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** Resolve every waiter whose deadline has passed; re-arm for the next one. */
  private expire(): void {
    this.timer = null;
    const now = this.clock.now();
    const waiters = this.waiters;
    let i = this.head;
    while (i < waiters.length && waiters[i]!.deadline <= now) {
      waiters[i++]!.resolve('FLUSH_SLAVE_TIMEOUT');
    }
    this.head = i;
    this.compact();
    const next = this.waiters[this.head];
    if (next !== undefined) this.armTimer(next.deadline);
  }

  /** At close: nothing may be left waiting; what no follower acknowledged timed out. */
  drain(): void {
    for (let i = this.head; i < this.waiters.length; i++) {
      this.waiters[i]!.resolve('FLUSH_SLAVE_TIMEOUT');
    }
    this.waiters = [];
    this.head = 0;
    this.disarmTimer();
  }
}
