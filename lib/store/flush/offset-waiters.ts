/**
 * OffsetWaiters: appends waiting for the log to reach past their end (a flush under
 * SYNC_FLUSH, a follower's acknowledgement under SYNC_MASTER), each with a deadline. The one
 * queue behind GroupCommitService and ReplicaWaitService.
 *
 * Invariants: waiters are added in offset order (appends are sequential) and so in deadline
 * order (every wait has the same timeout), so both the reached and the expired ones are at the
 * head; one timer is armed, for the head's deadline, while any wait.
 */
import type { Clock, TimerHandle } from '../clock.js';
import type { PutStatus } from '../put-status.js';

interface Waiter {
  readonly offset: number;
  readonly deadline: number;
  resolve(status: PutStatus): void;
  reject?(err: unknown): void;
}

/** Past this many settled waiters at the head, the array is compacted once they are half. */
const COMPACT_FROM = 1024;

export class OffsetWaiters {
  private waiters: Waiter[] = [];
  private head = 0;
  private timer: TimerHandle | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly timeoutMs: number,
    /** What a waiter resolves with when its deadline passes first. */
    private readonly timeoutStatus: PutStatus,
  ) {}

  get pending(): number {
    return this.waiters.length - this.head;
  }

  /** Wait for `offset`; `resolve` hears PUT_OK or the timeout status, `reject` a failure. */
  add(offset: number, resolve: (status: PutStatus) => void,
    reject?: (err: unknown) => void): void {
    const deadline = this.clock.now() + this.timeoutMs;
    this.waiters.push({ offset, deadline, resolve, reject });
    if (this.timer === null) this.armTimer(deadline);
  }

  /** Resolve every waiter at or below `offset` with `status`. */
  reach(offset: number, status: PutStatus = 'PUT_OK'): void {
    const waiters = this.waiters;
    let i = this.head;
    while (i < waiters.length && waiters[i]!.offset <= offset) waiters[i++]!.resolve(status);
    this.head = i;
    this.compact();
  }

  /** Resolve every waiter left with `status` (at close). */
  resolveAll(status: PutStatus): void {
    this.reach(Infinity, status);
  }

  /** Reject every waiter left (a waiter without `reject` resolves with the timeout status). */
  rejectAll(err: unknown): void {
    const waiters = this.waiters;
    this.waiters = [];
    const from = this.head;
    this.head = 0;
    this.disarmTimer();
    for (let i = from; i < waiters.length; i++) {
      const w = waiters[i]!;
      if (w.reject === undefined) w.resolve(this.timeoutStatus);
      else w.reject(err);
    }
  }

  private compact(): void {
    if (this.head === this.waiters.length) {
      this.waiters = [];
      this.head = 0;
    } else if (this.head > COMPACT_FROM && this.head * 2 > this.waiters.length) {
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
      waiters[i++]!.resolve(this.timeoutStatus);
    }
    this.head = i;
    this.compact();
    const next = this.waiters[this.head];
    if (next !== undefined) this.armTimer(next.deadline);
  }
}
