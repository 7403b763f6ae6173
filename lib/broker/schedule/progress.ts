/**
 * How far scheduled messages are delivered (RocketMQ's delayOffset.json), in
 * `<dataDir>/config/delayOffset.json`:
 *
 *   { "levels": { "<queueId>": <next queue offset>, ... },
 *     "timer": { "origin": <queue offset>, "bits": "<base64>" },
 *     "cancelled": [<commit-log offset>, ...] }
 *
 * - `levels`: per queue of SCHEDULE_TOPIC_XXXX, the first entry not yet delivered.
 * - `timer`: the timer queue's done entries (DoneBits: delivered or cancelled).
 * - `cancelled`: level messages skipped when reached: cancelled before they were due, or
 *   delivered already past one whose delivery failed (the walk goes back to that one).
 *
 * Written like consumer offsets: every interval and at close, each time after the commit log is
 * flushed, so the file never says a message was delivered when its delivery is not on disk. A
 * crash repeats at most the deliveries since the last write (at least once). Retention keeps
 * what the file on disk calls pending (not what memory does): a delivery not yet flushed may
 * still be lost, and then only its scheduled record can bring it back.
 */
import path from 'node:path';
import type { Clock, TimerHandle } from '../../store/clock.js';
import type { IoBackend } from '../../store/io/backend.js';
import type { Logger } from '../../store/options.js';
import { JsonConfigFile, parseCountMap, PersistTracker } from '../config-file.js';
import { DoneBits, doneBitsToJson, parseDoneBits } from './done-bits.js';

export const DELAY_OFFSET_FILE_NAME = 'delayOffset.json';

interface Data {
  readonly levels: Map<number, number>;
  readonly timer: DoneBits;
  readonly cancelled: Set<number>;
}

export interface ProgressOptions {
  readonly backend: IoBackend;
  readonly configDir: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly intervalMs: number;
  /** Resolves once the commit log is flushed (before each write). */
  readonly beforePersist: () => Promise<void>;
}

export class ScheduleProgress {
  private readonly file: JsonConfigFile<Data>;
  private readonly tracker = new PersistTracker();
  private data: Data = { levels: new Map(), timer: new DoneBits(0), cancelled: new Set() };
  /** What the file on disk says (loaded, or last written). */
  private onDisk: Data = this.data;
  private timer: TimerHandle | null = null;
  private started = false;
  /** The last write, settled (the next one starts after it). */
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly options: ProgressOptions) {
    this.file = new JsonConfigFile<Data>({ backend: options.backend,
      path: path.join(options.configDir, DELAY_OFFSET_FILE_NAME), name: 'delay offsets',
      parse: parseProgress, serialize: serializeProgress });
  }

  /** Read the file (CORRUPT_DATA when it is damaged); a missing file is a fresh start. */
  load(): void {
    this.data = this.file.load() ?? this.data;
    this.onDisk = cloneData(this.data);
    this.tracker.markPersisted();
  }

  /**
   * A follower: take its master's delayOffset.json (`bytes`) as it is (a follower delivers
   * nothing itself; once promoted it continues from there).
   */
  applyReplicated(bytes: Buffer): void {
    this.data = this.file.decode(bytes);
    // The master wrote it after its flush; a follower keeps what its master would.
    this.onDisk = cloneData(this.data);
    this.tracker.changed();
  }

  /** The first entry of a level queue not yet delivered. */
  level(queueId: number): number {
    return this.data.levels.get(queueId) ?? 0;
  }

  setLevel(queueId: number, offset: number): void {
    if (this.data.levels.get(queueId) === offset) return;
    this.data.levels.set(queueId, offset);
    this.tracker.changed();
  }

  /** `level(queueId)` as the file on disk says (what retention keeps). */
  levelOnDisk(queueId: number): number {
    return this.onDisk.levels.get(queueId) ?? 0;
  }

  /** The timer queue's first entry not done, as the file on disk says. */
  get timerBaseOnDisk(): number {
    return this.onDisk.timer.base;
  }

  /** The timer queue's done entries; call `changed` after marking some. */
  get timerDone(): DoneBits {
    return this.data.timer;
  }

  get cancelled(): Set<number> {
    return this.data.cancelled;
  }

  changed(): void {
    this.tracker.changed();
  }

  /**
   * Write what changed since the last write (after the log is flushed). One write at a time:
   * two overlapping ones could reach the file in the wrong order (the flush of the later one
   * can settle first), and the older would undo a cancel the newer had reported on disk.
   */
  persist(): Promise<void> {
    const run = this.writing.then(() => this.tracker.persist(async () => {
      const snapshot = cloneData(this.data);
      await this.options.beforePersist();
      await this.file.save(snapshot);
      this.onDisk = snapshot;
    }));
    this.writing = run.catch(() => undefined);
    return run;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.arm();
  }

  /** Stop the timer and write a last time. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer !== null) this.options.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.persist();
  }

  private arm(): void {
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = null;
      this.persist().catch((err: unknown) => {
        const why = err instanceof Error ? err.message : String(err);
        this.options.logger.error(`pocketmq: delay offsets not written, will retry: ${why}`);
      }).finally(() => {
        if (this.started && this.timer === null) this.arm();
      });
    }, this.options.intervalMs);
  }
}

function cloneData(data: Data): Data {
  return { levels: new Map(data.levels), timer: data.timer.clone(),
    cancelled: new Set(data.cancelled) };
}

function serializeProgress(data: Data): unknown {
  return {
    levels: Object.fromEntries([...data.levels].sort((a, b) => a[0] - b[0])),
    timer: doneBitsToJson(data.timer),
    cancelled: [...data.cancelled].sort((a, b) => a - b),
  };
}

function isOffset(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

function parseProgress(raw: unknown): Data {
  const { levels, timer, cancelled } = (raw ?? {}) as Record<string, unknown>;
  const levelMap = parseCountMap(levels, 'levels', 'queueId>: <offset');
  const timerDone = parseDoneBits(timer, 'timer');
  if (!Array.isArray(cancelled) || !cancelled.every(isOffset)) {
    throw new Error('cancelled: expected an array of commit-log offsets');
  }
  return { levels: levelMap, timer: timerDone, cancelled: new Set(cancelled) };
}
