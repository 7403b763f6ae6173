/**
 * Producer (RocketMQ's DefaultMQProducer): `send` (await it: a sync send; keep the promise: an
 * async send), `sendOneway` (no result, no flush wait) and `sendBatch` (one topic, one queue,
 * appended atomically). It validates and normalizes each message before anything is sent, picks
 * the queue (round robin, a sharding key's hash, or a selector), and retries only errors that say
 * a retry can succeed (`err.retriable`), each time on the next queue unless the queue was pinned.
 * The broker (through its port) decides the stored record and traces the send.
 */
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import {
  checkGroupName, checkUserTopic, INSTANCE_NAME_PATTERN, normalizeMessage, queueOfShardingKey,
  type BrokerPort, type Message, type NormalizedMessage, type ProducerRef, type SendRequest,
  type SendResult, type TopicConfig,
} from '../broker/port.js';
import { intOption, invalidOption, optionsRecord, patternOption } from '../validate.js';

export type { SendResult, SendStatus } from '../broker/port.js';

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

/** A message ready to send: checked, with its topic's queue count. */
interface Prepared {
  readonly msg: NormalizedMessage;
  readonly queueCount: number;
}

export class Producer {
  readonly group: string;
  readonly instanceName: string;
  private readonly ref: ProducerRef;
  private readonly retryTimes: number;
  private readonly compressOver: number;
  private roundRobin = Math.floor(Math.random() * 1024);
  private running = true;

  /** Use `store.createProducer`. */
  constructor(private readonly port: BrokerPort, options: ProducerOptions,
    private readonly onShutdown: (p: Producer) => void = () => undefined) {
    const o = optionsRecord(options);
    if (o.transactionListener !== undefined) {
      throw new PocketMQError('NOT_SUPPORTED', 'transactional producers are not supported yet',
        { property: 'transactionListener' });
    }
    this.group = checkGroupName(o.group);
    this.retryTimes = intOption(o, 'retryTimesWhenSendFailed',
      producerDefaults.retryTimesWhenSendFailed, 0, 16);
    this.compressOver = intOption(o, 'compressMsgBodyOverHowmuch',
      producerDefaults.compressMsgBodyOverHowmuch, 0, 2 ** 31);
    this.instanceName = patternOption(o, 'instanceName', producerDefaults.instanceName,
      INSTANCE_NAME_PATTERN);
    this.ref = Object.freeze({ group: this.group, instanceName: this.instanceName });
  }

  /** Already started by `createProducer`; calling it again is harmless. */
  start(): Promise<void> {
    return attempt(() => this.checkRunning());
  }

  /** Send one message; resolves once it is stored (and, under SYNC_FLUSH, durable). */
  send(message: Message, options?: SendOptions): Promise<SendResult> {
    let topic: TopicConfig | Promise<TopicConfig>;
    let msg: NormalizedMessage;
    try {
      this.checkRunning();
      msg = this.normalize(message);
      topic = this.port.topicForSend(msg.topic);
      if (!(topic instanceof Promise)) return this.sendTo({ msg, queueCount: topic.queueNums },
        message, options);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.retried(topic, () => this.port.topicForSend(msg.topic))
      .then((t) => this.sendTo({ msg, queueCount: t.queueNums }, message, options));
  }

  /** `first`, or after a retriable failure `again()`, up to retryTimesWhenSendFailed times. */
  private async retried<T>(first: Promise<T>, again: () => T | Promise<T>): Promise<T> {
    let attempt = 0;
    for (let pending = first; ; pending = Promise.resolve(again())) {
      try {
        return await pending;
      } catch (err) {
        if (!(err instanceof PocketMQError) || !err.retriable || ++attempt > this.retryTimes) {
          throw err;
        }
      }
    }
  }

  private sendTo(prepared: Prepared, message: Message,
    options: SendOptions | undefined): Promise<SendResult> {
    let request: SendRequest;
    let stored: SendResult | Promise<SendResult>;
    try {
      request = this.request(prepared.msg, this.selectQueue(prepared.queueCount, message,
        options));
      stored = this.port.send(request);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    // The common case (ASYNC_FLUSH, in process) has the result at once: one promise per send.
    if (!(stored instanceof Promise)) return Promise.resolve(stored);
    const pinned = options !== undefined &&
      (options.shardingKey !== undefined || options.selector !== undefined);
    return stored.catch((err: unknown) => this.retry(err, request, prepared.queueCount, pinned));
  }

  /** After a failed first attempt: retry retriable errors, each on the next queue. */
  private async retry(first: unknown, request: SendRequest, queueCount: number,
    pinned: boolean): Promise<SendResult> {
    let err = first;
    let queueId = request.queueId;
    for (let attempt = 1; ; attempt++) {
      if (!(err instanceof PocketMQError) || !err.retriable || attempt > this.retryTimes) {
        throw err;
      }
      if (!pinned) queueId = (queueId + 1) % queueCount;
      try {
        return await this.port.send({ ...request, queueId });
      } catch (next) {
        err = next;
      }
    }
  }

  /** Send without waiting for a result (nor a flush). Bad input still throws at once. */
  sendOneway(message: Message, options?: SendOptions): void {
    this.checkRunning();
    const msg = this.normalize(message);
    const topic = this.port.topicForSend(msg.topic);
    const sending = topic instanceof Promise
      ? topic.then((t) => this.port.send(this.request(msg,
        this.selectQueue(t.queueNums, message, options))))
      : this.port.send(this.request(msg, this.selectQueue(topic.queueNums, message, options)));
    if (!(sending instanceof Promise)) return;
    sending.catch((err: unknown) => {
      const why = err instanceof Error ? err.message : String(err);
      this.port.info.logger.warn(`pocketmq: oneway send to ${msg.topic} failed: ${why}`);
    });
  }

  /**
   * Send messages of one topic as one atomic append to one queue: consecutive queue offsets,
   * all stored or none. One result per message, in order.
   */
  async sendBatch(messages: readonly Message[], options?: SendOptions): Promise<SendResult[]> {
    this.checkRunning();
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new PocketMQError('INVALID_MESSAGE', 'a batch must be a non-empty array',
        { property: 'messages' });
    }
    if (messages.length > limits.maxBatchRecords) {
      throw new PocketMQError('MESSAGE_TOO_LARGE', `a batch holds ${messages.length} messages; ` +
        `at most ${limits.maxBatchRecords} fit in one`,
      { limit: limits.maxBatchRecords, actual: messages.length, property: 'messages' });
    }
    const normalized = messages.map((m) => this.normalize(m));
    if (normalized.some((m) => m.delayTimeLevel !== undefined || m.deliverAt !== undefined)) {
      throw new PocketMQError('INVALID_MESSAGE', 'a batch cannot carry delayTimeLevel or ' +
        'deliverAt: send scheduled messages one by one', { property: 'delayTimeLevel' });
    }
    const topic = normalized[0]!.topic;
    if (normalized.some((m) => m.topic !== topic)) {
      throw new PocketMQError('INVALID_MESSAGE', 'every message of a batch must have one topic',
        { property: 'topic', topic: String(topic) });
    }
    const config = this.port.topicForSend(topic);
    const { queueNums } = config instanceof Promise ? await config : config;
    return this.port.sendBatch({ messages: normalized,
      queueId: this.selectQueue(queueNums, messages[0]!, options), producer: this.ref,
      compressOver: this.compressOver });
  }

  /**
   * Cancel a message this store holds for later (sent with `delayTimeLevel` or `deliverAt`)
   * before it is due: RocketMQ 5's recall. Resolves true once cancelled on disk, false when it
   * was delivered or cancelled already.
   */
  cancelScheduled(msgId: string): Promise<boolean> {
    try {
      this.checkRunning();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.port.cancelScheduled(msgId);
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

  private request(msg: NormalizedMessage, queueId: number): SendRequest {
    return { message: msg, queueId, producer: this.ref, compressOver: this.compressOver };
  }

  /**
   * Validate one message: its fields, a topic users may send to (even one the broker already
   * made, such as a dead-letter topic), and its body size before compression (RocketMQ's
   * Validators.checkMessage), so a compressible body cannot slip past maxMessageSize.
   */
  private normalize(message: Message): NormalizedMessage {
    const msg = normalizeMessage(message);
    checkUserTopic(msg.topic);
    const max = this.port.info.maxMessageSize;
    if (msg.body.length > max) {
      throw new PocketMQError('MESSAGE_TOO_LARGE', `body is ${msg.body.length} bytes; ` +
        `maxMessageSize is ${max} (store option maxMessageSize, at most ${limits.maxBodyBytes})`,
      { limit: max, actual: msg.body.length, topic: msg.topic, property: 'body' });
    }
    return msg;
  }

  /** A closed store says so (STORE_CLOSED) even though closing it also shut this producer. */
  private checkRunning(): void {
    this.port.checkOpen();
    if (!this.running) {
      throw new PocketMQError('INVALID_STATE', `producer ${this.group} is shut down`);
    }
  }

  private selectQueue(queueCount: number, message: Message, options?: SendOptions): number {
    if (options?.selector !== undefined) {
      if (typeof options.selector !== 'function') {
        throw invalidOption('selector', 'must be a function');
      }
      const picked = options.selector(queueCount, message, options.arg);
      if (!Number.isInteger(picked) || picked < 0 || picked >= queueCount) {
        throw invalidOption('selector',
          `returned ${String(picked)}, not a queue in [0, ${queueCount})`);
      }
      return picked;
    }
    if (options?.shardingKey !== undefined) {
      if (typeof options.shardingKey !== 'string') {
        throw invalidOption('shardingKey', 'must be a string');
      }
      return queueOfShardingKey(options.shardingKey, queueCount);
    }
    this.roundRobin = (this.roundRobin + 1) % 0x4000_0000;
    return this.roundRobin % queueCount;
  }
}

function attempt(fn: () => void): Promise<void> {
  try {
    fn();
    return Promise.resolve();
  } catch (err) {
    return Promise.reject(err as Error);
  }
}
