/**
 * The broker: what RocketMQ's broker adds on top of the store, inside the process. It owns the
 * topic table, consumer offsets, group membership and queue locks, and serves filtered fetches
 * with long polling. Producers and consumers (lib/client) talk to the store only through it.
 */
import { channel } from 'node:diagnostics_channel';
import path from 'node:path';
import { channels } from '../channels.js';
import { PocketMQError } from '../errors.js';
import type { Clock } from '../store/clock.js';
import type { Logger } from '../store/options.js';
import type { RecordInput } from '../store/record-codec.js';
import type { RecordCursor } from '../store/record-cursor.js';
import type { PutResult, StoreEngine } from '../store/store-engine.js';
import type { GetMessageStatus } from '../store/store-reader.js';
import { ConsumerManager } from './consumer-manager.js';
import { ConsumerOffsetManager } from './consumer-offsets.js';
import type { MessageFilter } from './filter/filter.js';
import { decodeMessageId } from './message-id.js';
import {
  cursorToMessageExt, PROPERTY_ORIGIN_MESSAGE_ID, PROPERTY_RETRY_TOPIC, toMessageExt,
  type MessageExt,
} from './message.js';
import { checkUserTopic, checkTopicName, dlqTopic } from './names.js';
import { retryDelayMs } from './delay-levels.js';
import { limits } from '../limits.js';
import { PullHoldService } from './pull-hold.js';
import { TopicConfigManager, type TopicConfig } from './topic-config.js';

export interface BrokerOptions {
  readonly defaultTopicQueueNums: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Delay levels in ms (parsed `messageDelayLevel`): retry backoff uses level 3 + n. */
  readonly delayLevels: readonly number[];
  /** How often consumer offsets are written to disk. @default 5000 */
  readonly persistConsumerOffsetIntervalMs?: number | undefined;
}

/** A fetch's outcome (RocketMQ's PullStatus, with the illegal-offset case split in two). */
export type FetchStatus =
  | 'FOUND' | 'NO_NEW_MSG' | 'NO_MATCHED_MSG' | 'OFFSET_TOO_SMALL' | 'OFFSET_TOO_BIG';

export interface FetchResult {
  readonly status: FetchStatus;
  readonly messages: MessageExt[];
  /** Where the next fetch of this queue starts (past filtered-out messages too). */
  readonly nextBeginOffset: number;
  readonly minOffset: number;
  readonly maxOffset: number;
}

export interface FetchRequest {
  readonly topic: string;
  readonly queueId: number;
  readonly offset: number;
  readonly maxMessages: number;
  readonly filter: MessageFilter;
  /** Stop once this many stored bytes are taken (at least one message is returned). */
  readonly maxBytes?: number | undefined;
}

export interface QueueProgress {
  readonly topic: string;
  readonly queueId: number;
  /** The queue's max offset: where the next message will go. */
  readonly brokerOffset: number;
  /** The group's committed offset (the next message it will consume). */
  readonly consumerOffset: number;
  readonly lag: number;
  /** When the group last committed on this queue (ms since the epoch), 0 if never. */
  readonly lastTimestamp: number;
}

const STATUS: Readonly<Record<GetMessageStatus, FetchStatus>> = {
  FOUND: 'FOUND',
  NO_MATCHED_MESSAGE: 'NO_MATCHED_MSG',
  MESSAGE_WAS_REMOVING: 'NO_MATCHED_MSG',
  NO_MATCHED_LOGIC_QUEUE: 'NO_NEW_MSG',
  NO_MESSAGE_IN_QUEUE: 'NO_NEW_MSG',
  OFFSET_OVERFLOW_ONE: 'NO_NEW_MSG',
  OFFSET_TOO_SMALL: 'OFFSET_TOO_SMALL',
  OFFSET_OVERFLOW_BADLY: 'OFFSET_TOO_BIG',
};

/** Each message moved to a dead-letter queue: DlqMessage (lib/channels.ts). */
const dlqChannel = channel(channels.dlq);

export class Broker {
  readonly topics: TopicConfigManager;
  readonly offsets: ConsumerOffsetManager;
  readonly consumers = new ConsumerManager();
  private readonly holds: PullHoldService;
  private readonly stopArrivals: () => void;
  private closed = false;

  private constructor(readonly engine: StoreEngine, readonly options: BrokerOptions) {
    const configDir = path.join(engine.dir, 'config');
    engine.backend.mkdir(configDir);
    this.topics = new TopicConfigManager({ backend: engine.backend, configDir,
      defaultQueueNums: options.defaultTopicQueueNums, logger: options.logger });
    this.offsets = new ConsumerOffsetManager({ backend: engine.backend, configDir,
      clock: options.clock, logger: options.logger,
      persistIntervalMs: options.persistConsumerOffsetIntervalMs ?? 5000,
      // An offset on disk never points past the durable end of the log: after a crash a
      // group cannot resume beyond a message that was lost and then written again.
      // A store that stopped after a fault cannot flush: its offsets are not written either.
      beforePersist: () => (engine.isOpen ? engine.flushed() : Promise.reject(
        new PocketMQError('STORE_STOPPED', 'consumer offsets are not written: the store ' +
          'cannot flush its log'))),
      beforeSnapshot: () => this.consumers.flushOffsets() });
    this.holds = new PullHoldService(options.clock);
    this.stopArrivals = engine.onMessageArrived((topic, queueId, maxOffset) =>
      this.holds.notify(topic, queueId, maxOffset));
  }

  /** Load topics and offsets from `config/` and start persisting offsets. */
  static open(engine: StoreEngine, options: BrokerOptions): Broker {
    const broker = new Broker(engine, options);
    try {
      broker.topics.load(engine.topics());
      broker.offsets.load();
    } catch (err) {
      broker.stopArrivals();
      throw err;
    }
    // A read-only store writes nothing: offsets stay as the owner last wrote them.
    if (!engine.readOnly) broker.offsets.start();
    return broker;
  }

  /** Create a topic (or grow its queues); resolves once the topic table is on disk. */
  async createTopic(topic: string, queueNums: number): Promise<TopicConfig> {
    this.checkOpen();
    checkUserTopic(topic);
    const before = this.topics.get(topic)?.queueNums ?? 0;
    const config = await this.topics.create(topic, queueNums);
    if (config.queueNums !== before) this.consumers.topicChanged(topic);
    return config;
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

  /** A system topic (retry, dead letter) with a fixed queue count, created on first use. */
  async systemTopic(topic: string, queueNums: number): Promise<TopicConfig> {
    checkTopicName(topic);
    const known = this.topics.get(topic);
    if (known !== undefined) return known;
    const config = await this.topics.create(topic, queueNums);
    this.consumers.topicChanged(topic);
    return config;
  }

  put(input: RecordInput): Promise<PutResult> {
    return this.engine.putMessage(input);
  }

  /** `put` with the result itself when the append settled at once (StoreEngine.put). */
  putNow(input: RecordInput): PutResult | Promise<PutResult> {
    return this.engine.put(input);
  }

  putBatch(inputs: readonly RecordInput[]): Promise<PutResult[]> {
    return this.engine.putMessages(inputs);
  }

  /** How long the redelivery after `reconsumeTimes` failures waits. */
  retryDelayMs(reconsumeTimes: number): number {
    return retryDelayMs(this.options.delayLevels, reconsumeTimes);
  }

  /**
   * Move a message that failed `1 + maxReconsumeTimes` times to `%DLQ%<group>` (one queue),
   * keeping its id, topic (as RETRY_TOPIC), tags, keys and properties.
   */
  async sendToDeadLetter(group: string, message: MessageExt): Promise<void> {
    const topic = dlqTopic(group);
    await this.systemTopic(topic, 1);
    await this.put({
      topic, queueId: 0, body: message.body, tags: message.tags, keys: message.keys,
      properties: { ...message.properties, [PROPERTY_ORIGIN_MESSAGE_ID]: message.msgId,
        [PROPERTY_RETRY_TOPIC]: message.topic },
      reconsumeTimes: Math.min(message.reconsumeTimes, limits.maxReconsumeTimes),
      bornTimestamp: message.bornTimestamp,
    });
    if (dlqChannel.hasSubscribers) {
      dlqChannel.publish({ group, topic: message.topic, msgId: message.msgId,
        reconsumeTimes: message.reconsumeTimes });
    }
  }

  /** Messages of one queue from `offset` that pass the filter. Never waits. */
  fetch(request: FetchRequest): FetchResult {
    this.checkOpen();
    const { topic, queueId, offset, filter } = request;
    const all = filter.type === 'TAG' && filter.expression === '*';
    const messages: MessageExt[] = [];
    const visitor = all
      ? (c: RecordCursor): void => {
        messages.push(cursorToMessageExt(c, topic));
      }
      : (c: RecordCursor): void => {
        const message = cursorToMessageExt(c, topic);
        if (filter.matches(message.tags, message.properties)) messages.push(message);
      };
    const got = this.engine.visitMessages(topic, queueId, offset, request.maxMessages, visitor, {
      tagsCode: all ? undefined : (code) => filter.matchesTagsCode(code),
      maxBytes: request.maxBytes,
    });
    let status = STATUS[got.status];
    if (status === 'FOUND' && messages.length === 0) status = 'NO_MATCHED_MSG';
    return { status, messages, nextBeginOffset: got.nextBeginOffset, minOffset: got.minOffset,
      maxOffset: got.maxOffset };
  }

  /**
   * Long polling: resolves true once the queue holds a message at `offset` or later, false
   * after `timeoutMs` or when `signal` aborts or the broker closes.
   */
  waitForMessage(topic: string, queueId: number, offset: number, timeoutMs: number,
    signal?: AbortSignal): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return this.holds.wait(topic, queueId, offset, timeoutMs,
      () => this.engine.getMaxOffsetInQueue(topic, queueId), signal);
  }

  minOffset(topic: string, queueId: number): number {
    return this.engine.getMinOffsetInQueue(topic, queueId);
  }

  maxOffset(topic: string, queueId: number): number {
    return this.engine.getMaxOffsetInQueue(topic, queueId);
  }

  searchOffset(topic: string, queueId: number, timestampMs: number): number {
    return this.engine.getOffsetInQueueByTime(topic, queueId, timestampMs);
  }

  /** The message with this id, or null for an unknown or malformed id. */
  viewMessage(msgId: unknown): MessageExt | null {
    this.checkOpen();
    const id = decodeMessageId(msgId);
    if (id === null) return null;
    if (id.offset < this.engine.commitLogMinOffset || id.offset >= this.engine.commitLogMaxOffset) {
      return null;
    }
    const record = this.engine.lookMessageByOffset(id.offset);
    if (record === null || record.checksum !== id.checksum) return null;
    return toMessageExt(record);
  }

  queryMessage(topic: string, key: string, maxNum: number, beginMs: number,
    endMs: number): MessageExt[] {
    this.checkOpen();
    return this.engine.queryMessage(topic, key, maxNum, beginMs, endMs).map(toMessageExt);
  }

  /** Per queue of every topic the group consumes: how far it is behind. */
  consumerProgress(group: string): QueueProgress[] {
    this.checkOpen();
    this.consumers.flushOffsets(group);
    const committed = new Map<string, { offset: number; lastCommitMs: number }>();
    const topics = new Set<string>();
    for (const q of this.offsets.offsetsOf(group)) {
      committed.set(`${q.topic}\u0000${q.queueId}`, q);
      topics.add(q.topic);
    }
    for (const member of this.consumers.members(group)) {
      for (const topic of member.topics()) topics.add(topic);
    }
    const out: QueueProgress[] = [];
    for (const topic of [...topics].sort()) {
      const queueNums = this.topics.get(topic)?.queueNums ?? 0;
      for (let queueId = 0; queueId < queueNums; queueId++) {
        const max = this.maxOffset(topic, queueId);
        const c = committed.get(`${topic}\u0000${queueId}`);
        const consumerOffset = c?.offset ?? this.minOffset(topic, queueId);
        out.push({ topic, queueId, brokerOffset: max, consumerOffset,
          lag: Math.max(0, max - consumerOffset), lastTimestamp: c?.lastCommitMs ?? 0 });
      }
    }
    return out;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  checkOpen(): void {
    if (this.closed) throw new PocketMQError('STORE_CLOSED', 'the store is closed');
  }

  /** Stop serving: wake waiting fetches, write offsets and topics. The engine stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopArrivals();
    this.holds.releaseAll();
    if (this.engine.readOnly) return;
    try {
      await this.offsets.stop();
    } catch (err) {
      // A stopped store keeps its last written offsets (consumers see some messages again).
      if (this.engine.isOpen) throw err;
      const why = err instanceof Error ? err.message : String(err);
      this.options.logger.warn(`pocketmq: consumer offsets not written at close: ${why}`);
    }
    await this.topics.flush();
  }
}
