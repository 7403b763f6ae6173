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
import type { Clock } from '../clock.js';
import { OffsetWaiters } from './offset-waiters.js';

export class ReplicaWaitService {
  private readonly waiters: OffsetWaiters;
  private followers = 0;
  private acked = 0;

  constructor(clock: Clock, timeoutMs: number, private readonly maxGapBytes: number) {
    this.waiters = new OffsetWaiters(clock, timeoutMs, 'FLUSH_SLAVE_TIMEOUT');
  }

  get pending(): number {
    return this.waiters.pending;
  }

  /** Followers in sync now, and the highest commit-log offset one of them acknowledged. */
  update(followers: number, ackedOffset: number): void {
    this.followers = followers;
    this.acked = ackedOffset;
    this.waiters.reach(ackedOffset);
  }

  /**
   * Resolves `result` once a follower acknowledged the log up to `offset`; its status becomes
   * FLUSH_SLAVE_TIMEOUT or SLAVE_NOT_AVAILABLE when that does not happen, unless an earlier
   * wait (the flush) already set a failure status, which stays.
   */
  waitForResult<T extends { status: string }>(offset: number, result: T): Promise<T> {
    return new Promise<T>((resolve) => {
      const settle = (status: string): void => {
        if (status !== 'PUT_OK' && result.status === 'PUT_OK') result.status = status;
        resolve(result);
      };
      if (offset <= this.acked && this.followers > 0) settle('PUT_OK');
      else if (this.followers === 0 || offset - this.acked > this.maxGapBytes) {
        settle('SLAVE_NOT_AVAILABLE');
      } else this.waiters.add(offset, settle);
    });
  }

  /** At close: nothing may be left waiting; what no follower acknowledged timed out. */
  drain(): void {
    this.waiters.resolveAll('FLUSH_SLAVE_TIMEOUT');
  }
}
