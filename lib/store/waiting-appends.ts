/**
 * Appends that came while the commit log was blocked (a segment roll, or a segment's growth,
 * not done yet), kept in the order they came and appended in that order once it unblocks; an
 * append that comes while some wait goes behind them. One queue instead of a promise chain
 * each: a producer that fires a million sends in one turn (nothing lets the allocation behind
 * the block finish meanwhile) holds a few hundred bytes per send, not a kilobyte.
 */
import { retriableIfTransient } from '../errors.js';
import type { AppendResult } from './commit-log.js';
import type { PreparedRecord } from './record-codec.js';

/** What the queue needs of its writer. */
export interface WaitingHost {
  /** Settles once the log takes appends again; rejects when the roll's allocation failed. */
  whenUnblocked(): Promise<unknown>;
  /** Append `recs` now: their results, or null when the log is blocked again. Throws as an
   * append does (the store closed or stopped, a failed write). */
  tryAppend(recs: PreparedRecord[]): AppendResult[] | null;
}

/** A waiting append: its records, and how its promise settles once they are appended. */
interface WaitingAppend {
  readonly recs: PreparedRecord[];
  /** What the promise resolves with, from the records' results (a value or a promise). */
  readonly finish: (results: AppendResult[]) => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

export class WaitingAppends {
  private queue: WaitingAppend[] = [];
  /** The first append of `queue` not yet appended. */
  private head = 0;

  constructor(private readonly host: WaitingHost) {}

  /** Some appends wait: a new one must go behind them. */
  get any(): boolean {
    return this.head < this.queue.length;
  }

  /**
   * Append `recs` once the log unblocks, after the appends already waiting; the promise settles
   * with `finish(results)`. The roll's allocation failing is every waiting one's error.
   */
  add<R>(recs: PreparedRecord[], finish: (results: AppendResult[]) => R): Promise<Awaited<R>> {
    return new Promise((resolve, reject) => {
      const queued = this.queue.push({ recs, finish, resolve: resolve as (v: unknown) => void,
        reject });
      if (queued - this.head === 1) this.waitForRoll();
    });
  }

  private waitForRoll(): void {
    this.host.whenUnblocked().then(() => this.appendAll(), (err: unknown) => {
      const failure = retriableIfTransient(err);
      const waiting = this.queue.slice(this.head);
      this.reset();
      for (const w of waiting) w.reject(failure);
    });
  }

  /** The log unblocked: append the waiting appends in order, until it blocks again. */
  private appendAll(): void {
    const queue = this.queue;
    while (this.head < queue.length) {
      const w = queue[this.head]!;
      let results: AppendResult[] | null;
      try {
        results = this.host.tryAppend(w.recs);
      } catch (err) {
        this.head++;
        w.reject(err);
        continue;
      }
      if (results === null) {
        // Blocked again (this run filled the next segment): the rest waits for that roll.
        this.queue = queue.slice(this.head);
        this.head = 0;
        this.waitForRoll();
        return;
      }
      this.head++;
      try {
        w.resolve(w.finish(results));
      } catch (err) {
        w.reject(err);
      }
    }
    this.reset();
  }

  private reset(): void {
    this.queue = [];
    this.head = 0;
  }
}
