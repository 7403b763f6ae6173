/**
 * The producer of a JetStreamStore: the embedded Producer's API (`send`, `sendOneway`, the
 * queue choice by round robin, sharding key or selector) over a topic's stream.
 *
 * Each send gets a message id of its own (`Nats-Msg-Id`, random per producer plus a counter);
 * a retriable failure (a timeout, a leader election) is tried again with the same id, on the
 * same queue, until `sendTimeoutMs` passes, and the stream stores it once. `SEND_OK` means the
 * stream's quorum stored the message. `retryTimesWhenSendFailed: 0` makes one attempt only.
 *
 * Not on JetStream yet (NOT_SUPPORTED): `sendBatch` (JetStream 2.9 has no atomic batch),
 * transactional producers, delayed delivery.
 */
import { randomBytes } from 'node:crypto';
import {
  PocketMQError, producerDefaults, type Message, type ProducerOptions, type SendOptions,
  type SendResult,
} from '../index.js';
import { messageId } from './codec.js';
import type { Connection } from './connection.js';
import { publishMessage } from './publish.js';
import {
  checkGroup, INSTANCE_NAME, OptionReader, outgoingMessage, type OutgoingMessage,
} from './public-gaps.js';

/** RocketMQ's SelectMessageQueueByHash: |String.hashCode(key)| mod the queue count. */
export function queueOfKey(key: string, queueCount: number): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (Math.imul(h, 31) + key.charCodeAt(i)) | 0;
  return Math.abs(h) % queueCount;
}

export class JetStreamProducer {
  readonly group: string;
  readonly instanceName: string;
  private readonly retry: boolean;
  private readonly idPrefix = `${randomBytes(9).toString('base64url')}.`;
  private sends = 0;
  private roundRobin = Math.floor(Math.random() * 1024);
  private running = true;

  /** Use `store.createProducer`. */
  constructor(private readonly connection: Connection, options: ProducerOptions,
    private readonly onShutdown: (p: JetStreamProducer) => void) {
    const r = new OptionReader(options, 'a producer option');
    r.only(['group', 'retryTimesWhenSendFailed', 'compressMsgBodyOverHowmuch', 'instanceName',
      'transactionListener']);
    if (r.raw('transactionListener') !== undefined) {
      throw new PocketMQError('NOT_SUPPORTED', 'transactional producers are not supported on ' +
        'JetStream yet', { property: 'transactionListener' });
    }
    this.group = checkGroup(r.raw('group'));
    this.retry = r.int('retryTimesWhenSendFailed', producerDefaults.retryTimesWhenSendFailed,
      0, 16) > 0;
    // Compression is the servers' business on JetStream (stream compression, NATS 2.10+).
    r.int('compressMsgBodyOverHowmuch', producerDefaults.compressMsgBodyOverHowmuch, 0, 2 ** 31);
    this.instanceName = r.matching('instanceName', producerDefaults.instanceName, INSTANCE_NAME);
  }

  /** Already started by `createProducer`; calling it again is harmless. */
  start(): Promise<void> {
    try {
      this.checkRunning();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** Send one message; resolves once the stream's quorum stored it. */
  async send(message: Message, options?: SendOptions): Promise<SendResult> {
    this.checkRunning();
    const out = outgoingMessage(message);
    const queueCount = await this.connection.topicForSend(out.topic);
    const queueId = this.selectQueue(queueCount, message, options);
    return this.store(out, queueId);
  }

  /** Send without waiting for the result. Bad input still throws at once. */
  sendOneway(message: Message, options?: SendOptions): void {
    this.checkRunning();
    const out = outgoingMessage(message);
    this.connection.topicForSend(out.topic)
      .then((count) => this.store(out, this.selectQueue(count, message, options)))
      .catch((err: unknown) => {
        const why = err instanceof Error ? err.message : String(err);
        this.connection.logger.warn(`pocketmq: oneway send to ${out.topic} failed: ${why}`);
      });
  }

  /** Not on JetStream yet: NOT_SUPPORTED. */
  sendBatch(_messages: readonly Message[], _options?: SendOptions): Promise<SendResult[]> {
    return Promise.reject(new PocketMQError('NOT_SUPPORTED', 'sendBatch is not supported on ' +
      'JetStream yet: it stores a batch atomically, which JetStream 2.9 cannot; send the ' +
      'messages one by one with the same shardingKey to keep them in order'));
  }

  /** Stop sending: later sends throw INVALID_STATE. Sends in flight complete. */
  shutdown(): Promise<void> {
    if (this.running) {
      this.running = false;
      this.onShutdown(this);
    }
    return Promise.resolve();
  }

  /** `await using producer = store.createProducer(...)` shuts it down at the block's end. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  private async store(out: OutgoingMessage, queueId: number): Promise<SendResult> {
    const natsMsgId = this.idPrefix + (this.sends++).toString(36);
    const stored = await publishMessage(this.connection, { message: out, queueId, natsMsgId,
      bornMs: Date.now(), retry: this.retry });
    return { status: 'SEND_OK', msgId: messageId(out.topic, stored.sequence), topic: out.topic,
      queueId, queueOffset: stored.sequence, commitLogOffset: stored.sequence,
      storeTimestamp: Date.now() };
  }

  private checkRunning(): void {
    this.connection.checkOpen();
    if (!this.running) {
      throw new PocketMQError('INVALID_STATE', `producer ${this.group} is shut down`);
    }
  }

  private selectQueue(queueCount: number, message: Message, options?: SendOptions): number {
    if (options?.selector !== undefined) {
      if (typeof options.selector !== 'function') {
        throw OptionReader.bad('selector', 'must be a function');
      }
      const picked = options.selector(queueCount, message, options.arg);
      if (!Number.isInteger(picked) || picked < 0 || picked >= queueCount) {
        throw OptionReader.bad('selector',
          `returned ${String(picked)}, not a queue in [0, ${queueCount})`);
      }
      return picked;
    }
    if (options?.shardingKey !== undefined) {
      if (typeof options.shardingKey !== 'string') {
        throw OptionReader.bad('shardingKey', 'must be a string');
      }
      return queueOfKey(options.shardingKey, queueCount);
    }
    this.roundRobin = (this.roundRobin + 1) % 0x4000_0000;
    return this.roundRobin % queueCount;
  }
}
