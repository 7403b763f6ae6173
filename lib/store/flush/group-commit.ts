/**
 * GroupCommitService (SYNC_FLUSH): every append waits until the commit log is flushed past its
 * end. Appends made while one fdatasync runs share the next one, so one fdatasync covers a whole
 * group; the fdatasync itself runs on libuv's thread pool, never on the main thread.
 *
 * Each waiter carries the offset it needs and a deadline: when the deadline passes first it
 * resolves FLUSH_DISK_TIMEOUT (the record is stored; only its durability is unconfirmed).
 * A failed fdatasync rejects every waiter: after fsync fails, nothing written can be trusted.
 *
 * Invariants: waiters are queued in offset order (appends are sequential); pending count is
 * bounded by the caller (the store option maxPendingFlushRequests); one flush in flight at a time.
 */
import type { Clock } from '../clock.js';
import type { PutStatus } from '../put-status.js';
import { OffsetWaiters } from './offset-waiters.js';

export interface Flushable {
  /** Flush everything published; resolves with the flushed offset. */
  flush(): Promise<number>;
}

export class GroupCommitService {
  private readonly waiters: OffsetWaiters;
  private flushing = false;
  private scheduled = false;
  private failure: unknown = null;
  /** Flushes completed, for stats and tests. */
  flushCount = 0;

  constructor(private readonly target: Flushable, clock: Clock, timeoutMs: number) {
    this.waiters = new OffsetWaiters(clock, timeoutMs, 'FLUSH_DISK_TIMEOUT');
  }

  get pending(): number {
    return this.waiters.pending;
  }

  /** Resolves when the log is durable past `offset`, or FLUSH_DISK_TIMEOUT at the deadline. */
  waitFor(offset: number): Promise<PutStatus> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise<PutStatus>((resolve, reject) => this.enqueue(offset, resolve, reject));
  }

  /**
   * `waitFor` that resolves with `map(result, arg)`, `result.status` set to FLUSH_DISK_TIMEOUT
   * first if the deadline came first: one promise per append instead of a chain.
   */
  waitForResult<T extends { status: string }, A, R>(offset: number, result: T,
    map: (result: T, arg: A) => R, arg: A): Promise<R> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise<R>((resolve, reject) => this.enqueue(offset, (status) => {
      if (status !== 'PUT_OK') result.status = status;
      try {
        resolve(map(result, arg));
      } catch (err) {
        reject(err);
      }
    }, reject));
  }

  private enqueue(offset: number, resolve: (status: PutStatus) => void,
    reject: (err: unknown) => void): void {
    this.waiters.add(offset, resolve, reject);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    // After the current turn: every append of this turn joins the same fdatasync.
    setImmediate(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  /**
   * Start the flush this turn's waiters wait for now, instead of in its own end-of-turn callback:
   * the store calls it at the end of the turn, once the turn's appends are in the file, so the
   * fdatasync does not also wait for the ConsumeQueue writes and arrival listeners. A no-op
   * while a flush runs (it takes the waiters when it ends) or when none wait.
   */
  flushNow(): void {
    if (this.flushing || this.pending === 0) return;
    void this.run();
  }

  private async run(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.pending > 0) {
        const flushed = await this.target.flush();
        this.flushCount++;
        this.complete(flushed);
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.flushing = false;
    }
  }

  private complete(flushed: number): void {
    this.waiters.reach(flushed);
  }

  private fail(err: unknown): void {
    this.failure = err;
    this.waiters.rejectAll(err);
  }

  /** Called at close after the final flush: nothing may be left waiting. */
  drain(flushed: number): void {
    this.complete(flushed);
  }
}
