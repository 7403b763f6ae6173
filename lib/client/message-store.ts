/**
 * MessageStore: what an application opens (SPEC §4). One data directory, its storage engine,
 * the broker on top of it, and the producers and consumers created from it. `close` shuts the
 * consumers down (waiting for their listener calls), writes offsets and topics, then closes
 * the engine.
 */
import { PocketMQError } from '../errors.js';
import { Broker, type QueueProgress } from '../broker/broker.js';
import { DEFAULT_MESSAGE_DELAY_LEVEL, parseDelayLevels } from '../broker/delay-levels.js';
import { checkGroupName, checkTopicName } from '../broker/names.js';
import type { MessageExt } from '../broker/message.js';
import type { TopicConfig } from '../broker/topic-config.js';
import { StoreEngine } from '../store/store-engine.js';
import type { ReadOnlyStoreOptions } from '../store/read-only.js';
import type { EngineStats } from '../store/store-stats.js';
import {
  browse, brokerStats, resendDeadLetters, resetOffset, type BrowseResult, type GroupStats,
  type ResetTarget, type TopicStats,
} from '../broker/admin.js';
import type { StoreOptions } from '../store/options.js';
import type { ConsumerBase } from './consumer-base.js';
import {
  resolvePullOptions, resolvePushOptions, type PullConsumerOptions, type PushConsumerOptions,
} from './consumer-options.js';
import { Producer, type ProducerOptions } from './producer.js';
import { PullConsumer } from './pull-consumer.js';
import { PushConsumer } from './push-consumer.js';
import { queryTrace, Tracer, type TraceEvent } from './trace.js';

export interface MessageStoreOptions extends StoreOptions {
  /** Delay levels (RocketMQ's string); retry backoff uses level 3 + reconsumeTimes. */
  messageDelayLevel?: string | undefined;
  /** How often consumer offsets are written to disk. @default 5000 */
  persistConsumerOffsetIntervalMs?: number | undefined;
  /** Several processes on one directory: not supported yet (NOT_SUPPORTED when true). */
  multiProcess?: boolean | undefined;
  /**
   * Message trace: record each send and each consume as events in RMQ_SYS_TRACE_TOPIC, found
   * with `queryTrace(msgId)` (docs/observability.md). @default false
   */
  trace?: boolean | undefined;
}

export interface QueryOptions {
  readonly topic: string;
  readonly key: string;
  /** @default 32 */
  readonly maxNum?: number | undefined;
  /** Store-time range, ms since the epoch. @default all */
  readonly begin?: number | undefined;
  readonly end?: number | undefined;
}

export interface BrowseOptions {
  readonly topic: string;
  /** @default 0 */
  readonly queueId?: number | undefined;
  /** @default the queue's min offset */
  readonly offset?: number | undefined;
  /** @default 32 */
  readonly maxNum?: number | undefined;
}

export interface StoreStats extends EngineStats {
  readonly dir: string;
  readonly role: 'owner' | 'readonly';
  readonly topics: TopicStats[];
  readonly groups: GroupStats[];
}

/** Results of one queryMessage at most. */
export const MAX_QUERY_RESULTS = 10_000;

export class MessageStore {
  /** 'owner': this process holds the lock and the files. */
  /** 'owner': this process holds the lock and the files; 'readonly': see `openReadOnly`. */
  readonly role: 'owner' | 'readonly';
  private readonly clients = new Set<Producer | ConsumerBase>();
  private closing: Promise<void> | null = null;
  /** The message trace, when the `trace` option is on. */
  private tracer: Tracer | null = null;

  private constructor(readonly engine: StoreEngine, private readonly broker: Broker) {
    this.role = engine.readOnly ? 'readonly' : 'owner';
  }

  /**
   * Open a store that another process may own, to look inside: no lock, no file changed. It
   * sees every message the log held when it opened (all the owner flushed, and what the
   * owner's page cache already holds), and answers queries, browsing, consumer progress and
   * stats; everything that writes (producers, consumers, topics, offsets) throws
   * STORE_READ_ONLY. A snapshot: open again to see newer messages.
   */
  static async openReadOnly(dir: string, options: ReadOnlyStoreOptions = {}):
    Promise<MessageStore> {
    const engine = await StoreEngine.openReadOnly(dir, options);
    try {
      const o = engine.options;
      const broker = Broker.open(engine, {
        defaultTopicQueueNums: o.defaultTopicQueueNums, clock: o.clock, logger: o.logger,
        delayLevels: parseDelayLevels(DEFAULT_MESSAGE_DELAY_LEVEL),
      });
      return new MessageStore(engine, broker);
    } catch (err) {
      await engine.close().catch(() => undefined);
      throw err;
    }
  }

  private checkWritable(): void {
    this.broker.checkOpen();
    if (this.role === 'readonly') {
      throw new PocketMQError('STORE_READ_ONLY', `${this.dir} is open read-only`);
    }
  }

  /** Open (creating if missing) the store in `dir`, recovering whatever the last run left. */
  static async open(dir: string, options: MessageStoreOptions = {}): Promise<MessageStore> {
    if (options === null || typeof options !== 'object') {
      throw new PocketMQError('INVALID_OPTION', 'options must be an object',
        { property: 'options' });
    }
    const { messageDelayLevel, persistConsumerOffsetIntervalMs, multiProcess, trace,
      ...storeOptions } = options;
    if (trace !== undefined && typeof trace !== 'boolean') {
      throw new PocketMQError('INVALID_OPTION', 'option trace must be a boolean',
        { property: 'trace' });
    }
    if (multiProcess === true) {
      throw new PocketMQError('NOT_SUPPORTED', 'multiProcess stores are not supported yet',
        { property: 'multiProcess' });
    }
    const delayLevels = parseDelayLevels(messageDelayLevel ?? DEFAULT_MESSAGE_DELAY_LEVEL);
    const interval = persistConsumerOffsetIntervalMs ?? 5000;
    if (!Number.isInteger(interval) || interval < 1 || interval > 3_600_000) {
      throw new PocketMQError('INVALID_OPTION', 'option persistConsumerOffsetIntervalMs must ' +
        'be an integer in [1, 3600000]', { property: 'persistConsumerOffsetIntervalMs' });
    }
    const engine = await StoreEngine.open(dir, storeOptions);
    try {
      const o = engine.options;
      const broker = Broker.open(engine, {
        defaultTopicQueueNums: o.defaultTopicQueueNums, clock: o.clock, logger: o.logger,
        delayLevels, persistConsumerOffsetIntervalMs: interval,
      });
      const store = new MessageStore(engine, broker);
      if (trace === true) store.tracer = new Tracer(broker);
      const r = engine.recovery;
      if (r !== null) {
        o.logger.debug(`pocketmq: recovery checked ${r.checkedBytes} bytes, ${r.records} ` +
          `records, redispatched ${r.redispatched}, ended (${r.reason}) at ${r.endOffset}` +
          `${trace === true ? '; message trace on' : ''}`);
      }
      return store;
    } catch (err) {
      await engine.close().catch(() => undefined);
      throw err;
    }
  }

  get dir(): string {
    return this.engine.dir;
  }

  /** Create a topic with `queueNums` queues (or grow one); resolves once it is on disk. */
  async createTopic(topic: string, options: { queueNums?: number } = {}): Promise<TopicConfig> {
    if (options === null || typeof options !== 'object') {
      throw new PocketMQError('INVALID_OPTION', 'createTopic options must be an object',
        { property: 'options' });
    }
    this.checkWritable();
    return this.broker.createTopic(topic,
      options.queueNums ?? this.engine.options.defaultTopicQueueNums);
  }

  /** Every topic and its queue count. */
  topics(): TopicConfig[] {
    this.broker.checkOpen();
    return this.broker.topics.list();
  }

  createProducer(options: ProducerOptions): Producer {
    this.checkWritable();
    const producer = new Producer(this.broker, options, (p) => this.clients.delete(p),
      this.tracer);
    this.clients.add(producer);
    return producer;
  }

  createPushConsumer(options: PushConsumerOptions): PushConsumer {
    this.checkWritable();
    const resolved = resolvePushOptions(options, this.engine.options.clock.now());
    const consumer = new PushConsumer(this.broker, resolved, (c) => this.clients.delete(c),
      this.tracer);
    this.clients.add(consumer);
    return consumer;
  }

  createPullConsumer(options: PullConsumerOptions): PullConsumer {
    this.checkWritable();
    const resolved = resolvePullOptions(options, this.engine.options.clock.now());
    const consumer = new PullConsumer(this.broker, resolved, this.engine.options.clock,
      (c) => this.clients.delete(c), this.tracer);
    this.clients.add(consumer);
    return consumer;
  }

  /** The message with this id (from SendResult or MessageExt), or null. */
  viewMessage(msgId: string): Promise<MessageExt | null> {
    return settle(() => this.broker.viewMessage(msgId));
  }

  /** Messages of `topic` with `key`, newest first, at most `maxNum`. */
  queryMessage(query: QueryOptions): Promise<MessageExt[]> {
    return settle(() => {
      if (query === null || typeof query !== 'object' || typeof query.key !== 'string') {
        throw new PocketMQError('INVALID_OPTION', 'queryMessage takes { topic, key, ... }',
          { property: 'key' });
      }
      const maxNum = query.maxNum ?? 32;
      if (!Number.isInteger(maxNum) || maxNum < 1 || maxNum > MAX_QUERY_RESULTS) {
        throw new PocketMQError('INVALID_OPTION',
          `maxNum must be an integer in [1, ${MAX_QUERY_RESULTS}]`, { property: 'maxNum' });
      }
      checkTopicName(query.topic);
      return this.broker.queryMessage(query.topic, query.key, maxNum, query.begin ?? 0,
        query.end ?? Number.MAX_SAFE_INTEGER);
    });
  }

  /** The first offset of the queue stored at or after `timestampMs`, else the max offset. */
  searchOffset(topic: string, queueId: number, timestampMs: number): Promise<number> {
    return settle(() => {
      this.broker.checkOpen();
      return this.broker.searchOffset(checkTopicName(topic), queueId, timestampMs);
    });
  }

  minOffset(topic: string, queueId: number): Promise<number> {
    return settle(() => {
      this.broker.checkOpen();
      return this.broker.minOffset(checkTopicName(topic), queueId);
    });
  }

  maxOffset(topic: string, queueId: number): Promise<number> {
    return settle(() => {
      this.broker.checkOpen();
      return this.broker.maxOffset(checkTopicName(topic), queueId);
    });
  }

  /**
   * The trace events of a message (PUB, SUB, DLQ), oldest first; [] when none were recorded.
   * Events still buffered are written first. See docs/observability.md.
   */
  async queryTrace(msgId: string): Promise<TraceEvent[]> {
    this.broker.checkOpen();
    await this.tracer?.flush();
    return queryTrace(this.broker, msgId);
  }

  /** Per queue the group consumes: brokerOffset, consumerOffset, lag. */
  consumerProgress(group: string): Promise<QueueProgress[]> {
    return settle(() => this.broker.consumerProgress(checkGroupName(group)));
  }

  /**
   * Files, disk use, appends and their latencies since open, every topic's size, and every
   * group's backlog.
   */
  stats(): Promise<StoreStats> {
    return settle(() => ({
      dir: this.dir, role: this.role, ...this.engine.stats(), ...brokerStats(this.broker),
    }));
  }

  /** Up to `maxNum` (default 32) messages of one queue from `offset` (default: the oldest). */
  browse(query: BrowseOptions): Promise<BrowseResult> {
    return settle(() => {
      if (query === null || typeof query !== 'object') {
        throw new PocketMQError('INVALID_OPTION', 'browse takes { topic, queueId, offset, ' +
          'maxNum }', { property: 'query' });
      }
      return browse(this.broker, query.topic, query.queueId ?? 0, query.offset ?? 0,
        query.maxNum ?? 32);
    });
  }

  /**
   * Set a group's offsets on every queue of `topic` to the oldest message, past the newest, or
   * the first message stored at or after a time. The group must have no consumer running in
   * this process (BUSY). Resolves once the offsets are on disk.
   */
  async resetConsumerOffset(group: string, topic: string, to: ResetTarget):
    Promise<{ queueId: number; before: number; after: number }[]> {
    this.checkWritable();
    return resetOffset(this.broker, group, topic, to);
  }

  /**
   * Send the group's dead letters (`%DLQ%<group>`) again to the topics they came from, at most
   * `maxNum`, from where the last resend stopped.
   */
  async resendDeadLetters(group: string, options: { maxNum?: number } = {}):
    Promise<{ resent: number; remaining: number }> {
    this.checkWritable();
    return resendDeadLetters(this.broker, group, options?.maxNum ?? Number.MAX_SAFE_INTEGER);
  }

  /** Shut down every producer and consumer, write offsets, flush and close. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const clients = [...this.clients];
    const results = await Promise.allSettled(clients.map((c) => c.shutdown()));
    // Events of the last sends and listener calls go in before the log closes (never rejects).
    await this.tracer?.close();
    try {
      await this.broker.close();
    } finally {
      await this.engine.close();
    }
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
}

function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err as Error);
  }
}
