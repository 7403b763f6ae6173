/**
 * Delayed and scheduled delivery: the broker's side of `delayTimeLevel`, `deliverAt`, retries
 * (level 3 + reconsumeTimes) and `cancelScheduled`. It turns a message into its scheduled
 * record (schedule-record.ts), runs the level and timer schedulers that store due messages in
 * their topics, keeps their progress (progress.ts), and tells retention which records are still
 * needed.
 */
import path from 'node:path';
import { PocketMQError } from '../../errors.js';
import type { RecordInput } from '../../store/record-codec.js';
import type { BrokerCore } from '../core.js';
import { decodeMessageId } from '../message-id.js';
import {
  PROPERTY_ORIGIN_MESSAGE_ID, PROPERTY_RETRY_TOPIC, type MessageExt, type NormalizedMessage,
} from '../message.js';
import { retryTopic, RETRY_TOPIC_PREFIX } from '../names.js';
import type { SchedulerHost } from './deliver.js';
import { LevelScheduler } from './level-scheduler.js';
import { ScheduleProgress } from './progress.js';
import {
  PROPERTY_DELAY, PROPERTY_TIMER_DELIVER_MS, SCHEDULE_TOPIC, scheduledRecord, TIMER_TOPIC,
  type Schedule,
} from './schedule-record.js';
import { TimerScheduler } from './timer-scheduler.js';

export interface SchedulerOptions {
  /** Delay of each level in ms (parsed `messageDelayLevel`). */
  readonly delayLevels: readonly number[];
  /** Latest `deliverAt`, as a distance from now. */
  readonly timerMaxDelayMs: number;
  /** How often progress is written. */
  readonly persistIntervalMs: number;
}

export class Scheduler {
  private readonly progress: ScheduleProgress;
  private readonly levels: LevelScheduler;
  private readonly timer: TimerScheduler;
  private started = false;

  constructor(private readonly core: BrokerCore, private readonly options: SchedulerOptions) {
    const { engine } = core;
    const { clock, logger } = core.options;
    this.progress = new ScheduleProgress({ backend: engine.backend, clock, logger,
      configDir: path.join(engine.dir, 'config'), intervalMs: options.persistIntervalMs,
      beforePersist: () => engine.flushed() });
    const host: SchedulerHost = { engine, clock, logger, progress: this.progress,
      ensureTopic: (topic) => this.ensureTopic(topic) };
    this.levels = new LevelScheduler(host, options.delayLevels.length);
    this.timer = new TimerScheduler(host);
  }

  /** Read the progress file (CORRUPT_DATA when damaged). */
  load(): void {
    this.progress.load();
  }

  /** A follower copies its master's delivery progress (delayOffset.json bytes). */
  applyReplicated(bytes: Buffer): void {
    this.progress.applyReplicated(bytes);
  }

  /** Start delivering (an owner's store; a read-only one or a follower does not). */
  start(): void {
    this.started = true;
    this.progress.start();
    this.levels.start();
    this.timer.start();
  }

  /** A message was stored in a queue: wake the scheduler of a schedule queue. */
  arrived(topic: string, queueId: number): void {
    if (!this.started) return;
    if (topic === SCHEDULE_TOPIC) this.levels.arrived(queueId);
    else if (topic === TIMER_TOPIC) this.timer.arrived();
  }

  /** The oldest commit-log offset a scheduled message not yet delivered needs. */
  oldestPending(): number {
    return Math.min(this.levels.oldestPending(), this.timer.oldestPending());
  }

  /**
   * Where a message sent with `delayTimeLevel` or `deliverAt` is held until due: null when it
   * is due now (no delay, or a time not in the future). INVALID_MESSAGE for a time too far
   * ahead.
   */
  scheduleOf(message: NormalizedMessage): Schedule | null {
    const now = this.core.options.clock.now();
    const level = message.delayTimeLevel ?? 0;
    if (level > 0) {
      const levels = this.options.delayLevels;
      const clamped = Math.min(level, levels.length);
      return { topic: SCHEDULE_TOPIC, queueId: clamped - 1, dueMs: now + levels[clamped - 1]!,
        mark: [PROPERTY_DELAY, String(clamped)] };
    }
    const at = message.deliverAt;
    if (at === undefined || at <= now) return null;
    const max = this.options.timerMaxDelayMs;
    if (at - now > max) {
      throw new PocketMQError('INVALID_MESSAGE', `deliverAt is ${at - now} ms ahead; at most ` +
        `${max} (store option timerMaxDelayMs)`, { property: 'deliverAt', limit: max,
        actual: at - now, topic: message.topic });
    }
    return { topic: TIMER_TOPIC, queueId: 0, dueMs: Math.floor(at),
      mark: [PROPERTY_TIMER_DELIVER_MS, String(Math.floor(at))] };
  }

  /** The schedule queue's topic, made (or grown) when missing. */
  ensureScheduleTopic(schedule: Schedule): Promise<unknown> | null {
    const need = schedule.topic === SCHEDULE_TOPIC ? this.options.delayLevels.length : 1;
    if ((this.core.topics.get(schedule.topic)?.queueNums ?? 0) >= need) return null;
    return this.core.topics.create(schedule.topic, need);
  }

  /**
   * The record that brings a failed message back to `%RETRY%<group>` after the backoff of
   * level 3 + its reconsumeTimes: the same body, tags, keys and properties, its original topic
   * (RETRY_TOPIC) and id (ORIGIN_MESSAGE_ID), reconsumeTimes counted up.
   */
  retryRecord(group: string, message: MessageExt): { schedule: Schedule; input: RecordInput } {
    const schedule = this.scheduleOf({ topic: retryTopic(group), body: message.body,
      tags: message.tags, keys: undefined, properties: undefined,
      delayTimeLevel: 3 + message.reconsumeTimes })!;
    const extra = { [PROPERTY_RETRY_TOPIC]: message.topic,
      [PROPERTY_ORIGIN_MESSAGE_ID]: message.msgId };
    const input = scheduledRecord({ topic: retryTopic(group), body: message.body,
      tags: message.tags, keys: message.keys.length > 0 ? message.keys : undefined,
      properties: message.properties }, 0, message.body, 0, schedule, extra);
    return { schedule, input: { ...input, reconsumeTimes: message.reconsumeTimes + 1,
      bornTimestamp: message.bornTimestamp } };
  }

  /**
   * Cancel a delayed or timer message that is not yet due, by the id its send returned.
   * Resolves true once the cancellation is on disk; false for an id that is not a scheduled
   * message, or one delivered (or cancelled) already.
   */
  async cancel(msgId: unknown): Promise<boolean> {
    this.core.checkWritable();
    const id = decodeMessageId(msgId);
    const engine = this.core.engine;
    if (id === null || id.offset < engine.commitLogMinOffset ||
      id.offset >= engine.commitLogMaxOffset) return false;
    const record = engine.lookMessageByOffset(id.offset);
    if (record === null || record.checksum !== id.checksum) return false;
    let cancelled = false;
    if (record.topic === TIMER_TOPIC) {
      cancelled = this.timer.cancel(record.queueOffset);
    } else if (record.topic === SCHEDULE_TOPIC &&
      record.queueOffset >= this.progress.level(record.queueId) &&
      !this.progress.cancelled.has(record.physicalOffset) &&
      !this.levels.isDelivering(record.physicalOffset)) {
      this.progress.cancelled.add(record.physicalOffset);
      this.progress.changed();
      cancelled = true;
    }
    if (cancelled) await this.progress.persist();
    return cancelled;
  }

  /** Timer messages held in memory now. */
  get timersHeld(): number {
    return this.timer.held;
  }

  /** Stop delivering and write progress a last time. */
  async close(): Promise<void> {
    await Promise.all([this.levels.close(), this.timer.close()]);
    if (this.started) await this.progress.stop();
  }

  private async ensureTopic(topic: string): Promise<number> {
    const known = this.core.topics.get(topic);
    if (known !== undefined) return known.queueNums;
    const system = topic.startsWith(RETRY_TOPIC_PREFIX);
    return system ? (await this.core.systemTopic(topic, 1)).queueNums
      : this.core.topicForSend(topic).queueNums;
  }
}
