/**
 * The broker's parts, private to lib/broker: the store engine it runs on, the topic table,
 * consumer offsets and group membership. The Broker (broker.ts) owns them and serves the port;
 * the admin operations (admin.ts) and the dead-letter moves (retry/dead-letter.ts) work on them.
 */
import path from 'node:path';
import { PocketMQError } from '../errors.js';
import type { Clock } from '../store/clock.js';
import type { Logger } from '../store/options.js';
import type { StoreEngine } from '../store/store-engine.js';
import { ConsumerManager } from './consumer-manager.js';
import { ConsumerOffsetManager } from './consumer-offsets.js';
import { checkTopicName, checkUserTopic } from './names.js';
import { TopicConfigManager, type TopicConfig } from './topic-config.js';

export interface BrokerOptions {
  readonly defaultTopicQueueNums: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Delay levels in ms (parsed `messageDelayLevel`): retry backoff uses level 3 + n. */
  readonly delayLevels: readonly number[];
  /** How often consumer offsets are written to disk. */
  readonly persistConsumerOffsetIntervalMs: number;
  /** Record the message trace (RMQ_SYS_TRACE_TOPIC). */
  readonly trace: boolean;
  /** Latest `deliverAt`, as a distance from now. */
  readonly timerMaxDelayMs: number;
  /** A half message is checked back once it was stored this long ago. */
  readonly transactionTimeoutMs: number;
  /** How often the transaction check-back runs. */
  readonly transactionCheckIntervalMs: number;
  /** Check-backs of one half message before it goes to the check-max topic. */
  readonly transactionCheckMax: number;
}

export class BrokerCore {
  readonly topics: TopicConfigManager;
  readonly offsets: ConsumerOffsetManager;
  readonly consumers = new ConsumerManager();
  private closed = false;

  constructor(readonly engine: StoreEngine, readonly options: BrokerOptions) {
    const configDir = path.join(engine.dir, 'config');
    engine.backend.mkdir(configDir);
    this.topics = new TopicConfigManager({ backend: engine.backend, configDir,
      defaultQueueNums: options.defaultTopicQueueNums, logger: options.logger });
    this.offsets = new ConsumerOffsetManager({ backend: engine.backend, configDir,
      clock: options.clock, logger: options.logger,
      persistIntervalMs: options.persistConsumerOffsetIntervalMs,
      // An offset on disk never points past the durable end of the log: after a crash a
      // group cannot resume beyond a message that was lost and then written again.
      // A store that stopped after a fault cannot flush: its offsets are not written either.
      beforePersist: () => (engine.isOpen ? engine.flushed() : Promise.reject(
        new PocketMQError('STORE_STOPPED', 'consumer offsets are not written: the store ' +
          'cannot flush its log'))),
      beforeSnapshot: () => this.consumers.flushOffsets() });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  markClosed(): void {
    this.closed = true;
  }

  checkOpen(): void {
    if (this.closed) throw new PocketMQError('STORE_CLOSED', 'the store is closed');
  }

  /** STORE_READ_ONLY on a read-only store. */
  checkWritable(): void {
    this.checkOpen();
    if (this.engine.readOnly) {
      throw new PocketMQError('STORE_READ_ONLY', `${this.engine.dir} is open read-only`);
    }
  }

  /** The topic a producer sends to, created on first use with the default queue count. */
  topicForSend(topic: string): TopicConfig {
    checkUserTopic(topic);
    const known = this.topics.get(topic);
    if (known !== undefined) return known;
    const config = this.topics.getOrCreate(topic);
    this.consumers.topicChanged(topic);
    return config;
  }

  /** A system topic (retry, dead letter, trace) with a fixed queue count, made on first use. */
  async systemTopic(topic: string, queueNums: number): Promise<TopicConfig> {
    checkTopicName(topic);
    const known = this.topics.get(topic);
    if (known !== undefined) return known;
    const config = await this.topics.create(topic, queueNums);
    this.consumers.topicChanged(topic);
    return config;
  }
}
