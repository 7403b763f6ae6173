/**
 * Producer (RocketMQ's DefaultMQProducer): `send` (await it: a sync send; keep the promise: an
 * async send), `sendOneway` (no result, no flush wait) and `sendBatch` (one topic, one queue,
 * appended atomically). It validates and normalizes each message before anything is written,
 * picks the queue (round robin, a sharding key's hash, or a selector), compresses large bodies,
 * and retries only errors that say a retry can succeed. When the store traces, each stored
 * message is recorded as a PUB event (lib/client/trace.ts); otherwise that costs one check.
 */
import { deflateSync } from 'node:zlib';
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import type { Broker } from '../broker/broker.js';
import { createMessageId } from '../broker/message-id.js';
import { normalizeMessage, type Message, type NormalizedMessage } from '../broker/message.js';
import { checkGroupName, checkUserTopic } from '../broker/names.js';
import { javaHashCode } from '../store/checksum.js';
import type { RecordInput } from '../store/record-codec.js';
import { SYSFLAG_COMPRESSED } from '../store/record-codec.js';
import type { PutResult } from '../store/store-engine.js';
import type { Tracer } from './trace.js';

export type SendStatus =
  | 'SEND_OK' | 'FLUSH_DISK_TIMEOUT' | 'FLUSH_SLAVE_TIMEOUT' | 'SLAVE_NOT_AVAILABLE';

/** A stored message's receipt. It exists only for a message that is in the log. */
export interface SendResult {
  readonly status: SendStatus;
  readonly msgId: string;
  readonly topic: string;
  readonly queueId: number;
  readonly queueOffset: number;
  readonly commitLogOffset: number;
  readonly storeTimestamp: number;
}

/** Picks a queue in [0, queueCount) for a message (RocketMQ's MessageQueueSelector). */
export type QueueSelector = (queueCount: number, message: Message, arg: unknown) => number;

export interface ProducerOptions {
  /** Producer group, `^[A-Za-z0-9_-]{1,120}$`. */
  readonly group: string;
  /** Extra attempts after a retriable failure (another queue each time). @default 2 */
  readonly retryTimesWhenSendFailed?: number | undefined;
  /** Bodies larger than this many bytes are stored zlib-compressed. @default 4096 */
  readonly compressMsgBodyOverHowmuch?: number | undefined;
  /** Reserved for transactional producers (a later version). */
  readonly transactionListener?: unknown;
  /** Names this producer in message traces, `^[A-Za-z0-9_.:#-]{1,64}$`. @default 'DEFAULT' */
  readonly instanceName?: string | undefined;
}

export interface SendOptions {
  /** Messages with the same key go to the same queue, so they stay in order. */
  readonly shardingKey?: string | undefined;
  /** Choose the queue yourself; `arg` is passed to it. */
  readonly selector?: QueueSelector | undefined;
  readonly arg?: unknown;
}

export const producerDefaults = Object.freeze({
  retryTimesWhenSendFailed: 2,
  compressMsgBodyOverHowmuch: 4096,
  instanceName: 'DEFAULT',
});

/** As consumers' instance names. */
const INSTANCE_PATTERN = /^[A-Za-z0-9_.:#-]{1,64}$/;

/** zlib level, as RocketMQ's producer. */
const COMPRESS_LEVEL = 5;

function badOption(property: string, message: string): PocketMQError {
  return new PocketMQError('INVALID_OPTION', `option ${property} ${message}`, { property });
}

function intOption(value: unknown, property: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > max) {
    throw badOption(property, `must be an integer in [0, ${max}], got ${String(value)}`);
  }
  return value as number;
}

export class Producer {
  readonly group: string;
  readonly instanceName: string;
  private readonly retryTimes: number;
  private readonly compressOver: number;
  private roundRobin = Math.floor(Math.random() * 1024);
  private running = true;

  /** Use `store.createProducer`. */
  constructor(private readonly broker: Broker, options: ProducerOptions,
    private readonly onShutdown: (p: Producer) => void = () => undefined,
    private readonly tracer: Tracer | null = null) {
    if (options === null || typeof options !== 'object') throw badOption('options', 'missing');
    if (options.transactionListener !== undefined) {
      throw new PocketMQError('NOT_SUPPORTED', 'transactional producers are not supported yet',
        { property: 'transactionListener' });
    }
    this.group = checkGroupName(options.group);
    this.retryTimes = intOption(options.retryTimesWhenSendFailed, 'retryTimesWhenSendFailed',
      producerDefaults.retryTimesWhenSendFailed, 16);
    this.compressOver = intOption(options.compressMsgBodyOverHowmuch,
      'compressMsgBodyOverHowmuch', producerDefaults.compressMsgBodyOverHowmuch, 2 ** 31);
    const instanceName = options.instanceName ?? producerDefaults.instanceName;
    if (typeof instanceName !== 'string' || !INSTANCE_PATTERN.test(instanceName)) {
      throw badOption('instanceName', `must match ${INSTANCE_PATTERN.source}`);
    }
    this.instanceName = instanceName;
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

  /** Send one message; resolves once it is stored (and, under SYNC_FLUSH, durable). */
  send(message: Message, options?: SendOptions): Promise<SendResult> {
    if (this.tracer === null) return this.sendOnce(message, options);
    const tracer = this.tracer;
    const timer = tracer.start(message);
    return tracer.traceSend(this.sendOnce(message, options),
      (r) => tracer.published(this, timer, r));
  }

  private sendOnce(message: Message, options: SendOptions | undefined): Promise<SendResult> {
    let input: RecordInput;
    let queueCount: number;
    try {
      this.checkRunning();
      const msg = this.normalize(message);
      queueCount = this.broker.topicForSend(msg.topic).queueNums;
      input = this.toRecord(msg, this.selectQueue(queueCount, message, options));
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const stored = this.broker.putNow(input);
    // The common case (ASYNC_FLUSH) has the result at once: one promise per send, the caller's.
    if (!(stored instanceof Promise)) {
      return Promise.resolve(receipt(input.topic, input.queueId, stored));
    }
    return stored.then((r) => receipt(input.topic, input.queueId, r),
      (err: unknown) => {
        const pinned = options !== undefined &&
          (options.shardingKey !== undefined || options.selector !== undefined);
        return this.retry(err, input, queueCount, pinned);
      });
  }

  /** After a failed first attempt: retry retriable errors, each on the next queue. */
  private async retry(first: unknown, input: RecordInput, queueCount: number,
    pinned: boolean): Promise<SendResult> {
    let err = first;
    let queueId = input.queueId;
    for (let attempt = 1; ; attempt++) {
      if (!(err instanceof PocketMQError) || !err.retriable || attempt > this.retryTimes) {
        throw err;
      }
      if (!pinned) queueId = (queueId + 1) % queueCount;
      try {
        return receipt(input.topic, queueId, await this.broker.putNow({ ...input, queueId }));
      } catch (next) {
        err = next;
      }
    }
  }

  /** Send without waiting for a result (nor a flush). Bad input still throws at once. */
  sendOneway(message: Message, options?: SendOptions): void {
    const timer = this.tracer === null ? null : this.tracer.start(message);
    const { msg, queueId } = this.prepare(message, options);
    const input = this.toRecord(msg, queueId);
    let put = this.broker.put(input);
    if (timer !== null) {
      const tracer = this.tracer!;
      put = tracer.traceSend(put,
        (stored) => tracer.published(this, timer, receipt(msg.topic, queueId, stored)));
    }
    put.catch((err: unknown) => {
      const why = err instanceof Error ? err.message : String(err);
      this.broker.options.logger.warn(`pocketmq: oneway send to ${msg.topic} failed: ${why}`);
    });
  }

  /** Check state and message, and pick the queue: everything a send does before writing. */
  private prepare(message: Message, options: SendOptions | undefined):
    { msg: NormalizedMessage; queueCount: number; queueId: number } {
    this.checkRunning();
    const msg = this.normalize(message);
    const queueCount = this.broker.topicForSend(msg.topic).queueNums;
    return { msg, queueCount, queueId: this.selectQueue(queueCount, message, options) };
  }

  /**
   * Validate one message: its fields, a topic users may send to (even one the broker already
   * made, such as a dead-letter topic), and its body size before compression (RocketMQ's
   * Validators.checkMessage), so a compressible body cannot slip past maxMessageSize.
   */
  private normalize(message: Message): NormalizedMessage {
    const msg = normalizeMessage(message);
    checkUserTopic(msg.topic);
    const max = this.broker.engine.options.maxMessageSize;
    if (msg.body.length > max) {
      throw new PocketMQError('MESSAGE_TOO_LARGE', `body is ${msg.body.length} bytes`,
        { limit: max, actual: msg.body.length, topic: msg.topic, property: 'body' });
    }
    return msg;
  }

  /**
   * Send messages of one topic as one atomic append to one queue: consecutive queue offsets,
   * all stored or none. One result per message, in order.
   */
  async sendBatch(messages: readonly Message[], options?: SendOptions): Promise<SendResult[]> {
    const started = this.tracer === null ? null : this.tracer.start(null);
    this.checkRunning();
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new PocketMQError('INVALID_MESSAGE', 'a batch must be a non-empty array',
        { property: 'messages' });
    }
    if (messages.length > limits.maxBatchRecords) {
      throw new PocketMQError('MESSAGE_TOO_LARGE', `a batch holds ${messages.length} messages`,
        { limit: limits.maxBatchRecords, actual: messages.length });
    }
    const normalized = messages.map((m) => this.normalize(m));
    const topic = normalized[0]!.topic;
    if (normalized.some((m) => m.topic !== topic)) {
      throw new PocketMQError('INVALID_MESSAGE', 'every message of a batch must have one topic',
        { property: 'topic', topic: String(topic) });
    }
    const queueCount = this.broker.topicForSend(topic).queueNums;
    const queueId = this.selectQueue(queueCount, messages[0]!, options);
    const inputs = normalized.map((m) => this.toRecord(m, queueId));
    const putting = this.broker.putBatch(inputs);
    if (started === null) return (await putting).map((r) => receipt(topic, queueId, r));
    const tracer = this.tracer!;
    // One clock for the batch; tags and keys from each message, taken before any await.
    const timers = normalized.map((m) => ({ ...started, tags: m.tags, keys: m.keys ?? [] }));
    return tracer.traceSend(putting.then((all) => all.map((r) => receipt(topic, queueId, r))),
      (all) => all.forEach((r, i) => tracer.published(this, timers[i]!, r)));
  }

  /** Stop sending: later sends throw INVALID_STATE. Sends in flight complete. */
  shutdown(): Promise<void> {
    if (this.running) {
      this.running = false;
      this.onShutdown(this);
    }
    return Promise.resolve();
  }

  /** A closed store says so (STORE_CLOSED) even though closing it also shut this producer. */
  private checkRunning(): void {
    this.broker.checkOpen();
    if (!this.running) {
      throw new PocketMQError('INVALID_STATE', `producer ${this.group} is shut down`);
    }
  }

  private selectQueue(queueCount: number, message: Message, options?: SendOptions): number {
    if (options?.selector !== undefined) {
      if (typeof options.selector !== 'function') throw badOption('selector', 'must be a function');
      const picked = options.selector(queueCount, message, options.arg);
      if (!Number.isInteger(picked) || picked < 0 || picked >= queueCount) {
        throw badOption('selector',
          `returned ${String(picked)}, not a queue in [0, ${queueCount})`);
      }
      return picked;
    }
    if (options?.shardingKey !== undefined) {
      if (typeof options.shardingKey !== 'string') {
        throw badOption('shardingKey', 'must be a string');
      }
      // RocketMQ's SelectMessageQueueByHash: |hashCode| mod the queue count.
      return Math.abs(javaHashCode(options.shardingKey)) % queueCount;
    }
    this.roundRobin = (this.roundRobin + 1) % 0x4000_0000;
    return this.roundRobin % queueCount;
  }

  private toRecord(msg: NormalizedMessage, queueId: number): RecordInput {
    let body = msg.body;
    let sysFlag = 0;
    if (body.length > this.compressOver) {
      const packed = deflateSync(body, { level: COMPRESS_LEVEL });
      if (packed.length < body.length) {
        body = packed;
        sysFlag = SYSFLAG_COMPRESSED;
      }
    }
    return { topic: msg.topic, queueId, body, tags: msg.tags, keys: msg.keys,
      properties: msg.properties, sysFlag };
  }
}

function receipt(topic: string, queueId: number, r: PutResult): SendResult {
  return {
    status: r.status === 'PUT_OK' ? 'SEND_OK' : 'FLUSH_DISK_TIMEOUT',
    msgId: createMessageId(r.physicalOffset, r.checksum),
    topic,
    queueId,
    queueOffset: r.queueOffset,
    commitLogOffset: r.physicalOffset,
    storeTimestamp: r.storeTimestamp,
  };
}
