/**
 * Periodic flushing, on an injected clock:
 * - `IntervalFlushService` (ASYNC_FLUSH's commit-log flusher, RocketMQ's FlushRealTimeService):
 *   every `intervalMs`, flush when at least `leastPages` pages are dirty, or whatever is dirty
 *   once `thoroughIntervalMs` has passed since the last full flush.
 * - The same class, with its own cadence, flushes ConsumeQueues and the index and writes the
 *   checkpoint (the store passes that work as the `flush` function).
 * A flush that fails stops the service and reports through `onError`; it is never retried
 * silently (after a failed fsync the page cache state is unknown).
 */
import type { Clock, TimerHandle } from '../clock.js';

export const PAGE_BYTES = 4096;

export interface IntervalFlushOptions {
  readonly clock: Clock;
  readonly intervalMs: number;
  readonly leastPages: number;
  readonly thoroughIntervalMs: number;
  /** Bytes written but not yet flushed. */
  readonly dirtyBytes: () => number;
  readonly flush: () => Promise<unknown>;
  readonly onError: (err: unknown) => void;
}

export class IntervalFlushService {
  private timer: TimerHandle | null = null;
  private running: Promise<void> | null = null;
  private lastThorough: number;
  private stopped = true;

  constructor(private readonly options: IntervalFlushOptions) {
    this.lastThorough = options.clock.now();
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.arm();
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = this.options.clock.setTimeout(() => this.tick(), this.options.intervalMs);
  }

  private tick(): void {
    this.timer = null;
    const { clock, leastPages, thoroughIntervalMs, dirtyBytes } = this.options;
    const now = clock.now();
    const dirty = dirtyBytes();
    const thorough = now - this.lastThorough >= thoroughIntervalMs;
    if (dirty > 0 && (thorough || dirty >= leastPages * PAGE_BYTES)) {
      if (thorough) this.lastThorough = now;
      this.runFlush().then(() => this.arm(), () => undefined);
    } else {
      if (thorough) this.lastThorough = now;
      this.arm();
    }
  }

  /** Flush now (also used by close and by `store.flushed()`). */
  runFlush(): Promise<void> {
    if (this.running !== null) {
      // Chain: a flush requested during another must cover what was written since.
      return this.running.then(() => this.runFlush());
    }
    const run = this.options.flush().then(() => undefined, (err: unknown) => {
      this.stop();
      this.options.onError(err);
      throw err;
    });
    this.running = run.finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Settles once a flush in flight (if any) is over, whatever its outcome. */
  idle(): Promise<void> {
    return this.running === null ? Promise.resolve() : this.running.catch(() => undefined);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.options.clock.clearTimeout(this.timer);
    this.timer = null;
  }
}
