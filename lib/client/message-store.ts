/**
 * MessageStore: what an application opens (SPEC §4). One data directory, its storage engine,
 * the broker on top of it, and the producers and consumers created from it. `close` shuts the
 * consumers down (waiting for their listener calls), writes offsets and topics, then closes
 * the engine.
 */
import { PocketMQError } from '../errors.js';
import { Broker, type QueueProgress } from '../broker/broker.js';
import { DEFAULT_MESSAGE_DELAY_LEVEL, parseDelayLevels } from '../broker/delay-levels.js';
import type { MessageExt } from '../broker/message.js';
import type { TopicConfig } from '../broker/topic-config.js';
import { StoreEngine } from '../store/store-engine.js';
import type { StoreOptions } from '../store/options.js';
import type { ConsumerBase } from './consumer-base.js';
import {
  resolvePullOptions, resolvePushOptions, type PullConsumerOptions, type PushConsumerOptions,
} from './consumer-options.js';
import { Producer, type ProducerOptions } from './producer.js';
import { PullConsumer } from './pull-consumer.js';
import { PushConsumer } from './push-consumer.js';

export interface MessageStoreOptions extends StoreOptions {
  /** Delay levels (RocketMQ's string); retry backoff uses level 3 + reconsumeTimes. */
  messageDelayLevel?: string | undefined;
  /** How often consumer offsets are written to disk. @default 5000 */
  persistConsumerOffsetIntervalMs?: number | undefined;
  /** Several processes on one directory: not supported yet (NOT_SUPPORTED when true). */
  multiProcess?: boolean | undefined;
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

/** Results of one queryMessage at most. */
export const MAX_QUERY_RESULTS = 10_000;

export class MessageStore {
  /** 'owner': this process holds the lock and the files. */
  readonly role = 'owner' as const;
  private readonly clients = new Set<Producer | ConsumerBase>();
  private closing: Promise<void> | null = null;

  private constructor(readonly engine: StoreEngine, private readonly broker: Broker) {}

  /** Open (creating if missing) the store in `dir`, recovering whatever the last run left. */
  static async open(dir: string, options: MessageStoreOptions = {}): Promise<MessageStore> {
    if (options === null || typeof options !== 'object') {
      throw new PocketMQError('INVALID_OPTION', 'options must be an object',
        { property: 'options' });
    }
    const { messageDelayLevel, persistConsumerOffsetIntervalMs, multiProcess, ...storeOptions }
      = options;
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
      return new MessageStore(engine, broker);
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
    return this.broker.createTopic(topic,
      options.queueNums ?? this.engine.options.defaultTopicQueueNums);
  }

  /** Every topic and its queue count. */
  topics(): TopicConfig[] {
    this.broker.checkOpen();
    return this.broker.topics.list();
  }

  createProducer(options: ProducerOptions): Producer {
    this.broker.checkOpen();
    const producer = new Producer(this.broker, options, (p) => this.clients.delete(p));
    this.clients.add(producer);
    return producer;
  }

  createPushConsumer(options: PushConsumerOptions): PushConsumer {
    this.broker.checkOpen();
    const resolved = resolvePushOptions(options, this.engine.options.clock.now());
    const consumer = new PushConsumer(this.broker, resolved, (c) => this.clients.delete(c));
    this.clients.add(consumer);
    return consumer;
  }

  createPullConsumer(options: PullConsumerOptions): PullConsumer {
    this.broker.checkOpen();
    const resolved = resolvePullOptions(options, this.engine.options.clock.now());
    const consumer = new PullConsumer(this.broker, resolved, this.engine.options.clock,
      (c) => this.clients.delete(c));
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
      return this.broker.queryMessage(query.topic, query.key, maxNum, query.begin ?? 0,
        query.end ?? Number.MAX_SAFE_INTEGER);
    });
  }

  /** The first offset of the queue stored at or after `timestampMs`, else the max offset. */
  searchOffset(topic: string, queueId: number, timestampMs: number): Promise<number> {
    return settle(() => {
      this.broker.checkOpen();
      return this.broker.searchOffset(topic, queueId, timestampMs);
    });
  }

  minOffset(topic: string, queueId: number): Promise<number> {
    return settle(() => {
      this.broker.checkOpen();
      return this.broker.minOffset(topic, queueId);
    });
  }

  maxOffset(topic: string, queueId: number): Promise<number> {
    return settle(() => {
      this.broker.checkOpen();
      return this.broker.maxOffset(topic, queueId);
    });
  }

  /** Per queue the group consumes: brokerOffset, consumerOffset, lag. */
  consumerProgress(group: string): Promise<QueueProgress[]> {
    return settle(() => this.broker.consumerProgress(group));
  }

  /** Shut down every producer and consumer, write offsets, flush and close. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const clients = [...this.clients];
    const results = await Promise.allSettled(clients.map((c) => c.shutdown()));
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
