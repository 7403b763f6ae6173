/**
 * Producer (RocketMQ's DefaultMQProducer): `send` (await it: a sync send; keep the promise: an
 * async send), `sendOneway` (no result, no flush wait) and `sendBatch` (one topic, one queue,
 * appended atomically). It validates and normalizes each message before anything is sent, picks
 * the queue (round robin, a sharding key's hash, or a selector), and retries only errors that say
 * a retry can succeed (`err.retriable`), each time on the next queue unless the queue was pinned.
 * The broker (through its port) decides the stored record and traces the send.
 *
 * A producer made with a `transactionListener` also sends in transactions
 * (`sendMessageInTransaction`, RocketMQ's TransactionMQProducer): the message is stored as a
 * half message, the listener runs the local transaction, and its answer ends the transaction.
 * Such a producer registers with the broker while it runs, to answer check-backs.
 */
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import {
  checkGroupName, checkUserTopic, INSTANCE_NAME_PATTERN, normalizeMessage, queueOfShardingKey,
  type Awaitable, type BrokerPort, type LocalTransactionState, type Message,
  type NormalizedMessage, type ProducerRef, type SendRequest, type SendResult, type TopicConfig,
} from '../broker/port.js';
import {
  checkTransactionListener, ListenerCaller, type TransactionListener, type TransactionSendResult,
} from './transaction-listener.js';
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
  /**
   * Makes a transactional producer: `sendMessageInTransaction` runs its
   * `executeLocalTransaction`, and the store calls its `checkLocalTransaction` about
   * transactions left unresolved.
   */
  readonly transactionListener?: TransactionListener | undefined;
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

export class Producer {
  readonly group: string;
  readonly instanceName: string;
  private readonly ref: ProducerRef;
  private readonly retryTimes: number;
  private readonly compressOver: number;
  private roundRobin = Math.floor(Math.random() * 1024);
  private running = true;
  /** The transaction listener's caller, and this producer's id as the broker registered it. */
  private readonly transactions: { caller: ListenerCaller; id: Awaitable<string> } | null;

  /** Use `store.createProducer`. */
  constructor(private readonly port: BrokerPort, options: ProducerOptions,
    private readonly onShutdown: (p: Producer) => void = () => undefined) {
    const o = optionsRecord(options);
    this.group = checkGroupName(o.group);
    this.retryTimes = intOption(o, 'retryTimesWhenSendFailed',
      producerDefaults.retryTimesWhenSendFailed, 0, 16);
    this.compressOver = intOption(o, 'compressMsgBodyOverHowmuch',
      producerDefaults.compressMsgBodyOverHowmuch, 0, 2 ** 31);
    this.instanceName = patternOption(o, 'instanceName', producerDefaults.instanceName,
      INSTANCE_NAME_PATTERN);
    this.ref = Object.freeze({ group: this.group, instanceName: this.instanceName });
    const listener = checkTransactionListener(o.transactionListener);
    this.transactions = listener === null ? null : this.register(listener);
  }

  /** Answer the broker's check-backs while running. */
  private register(listener: TransactionListener):
    { caller: ListenerCaller; id: Awaitable<string> } {
    const caller = new ListenerCaller(listener, this.group, this.port.info.logger);
    const id = this.port.registerProducer({ group: this.group, instanceName: this.instanceName,
      checkLocalTransaction: (message) => caller.check(message) });
    if (id instanceof Promise) {
      id.catch((err: unknown) => {
        const why = err instanceof Error ? err.message : String(err);
        this.port.info.logger.error(`pocketmq: producer ${this.group} could not register for ` +
          `transaction check-backs: ${why}`);
      });
    }
    return { caller, id };
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
      if (!(topic instanceof Promise)) return this.sendTo(msg, topic.queueNums, message, options);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.retried(topic, () => this.port.topicForSend(msg.topic))
      .then((t) => this.sendTo(msg, t.queueNums, message, options));
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

  private sendTo(msg: NormalizedMessage, queueCount: number, message: Message,
    options: SendOptions | undefined): Promise<SendResult> {
    let request: SendRequest;
    let stored: SendResult | Promise<SendResult>;
    try {
      request = this.request(msg, this.selectQueue(queueCount, message, options));
      stored = this.port.send(request);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    // The common case (ASYNC_FLUSH, in process) has the result at once: one promise per send.
    if (!(stored instanceof Promise)) return Promise.resolve(stored);
    const pinned = options !== undefined &&
      (options.shardingKey !== undefined || options.selector !== undefined);
    return stored.catch((err: unknown) => this.retry(err, request, queueCount, pinned));
  }

  /** After a failed first attempt: retry retriable errors, each on the next queue. */
  private async retry(first: unknown, request: SendRequest, queueCount: number,
    pinned: boolean, send: (r: SendRequest) => Awaitable<SendResult> =
    (r) => this.port.send(r)): Promise<SendResult> {
    let err = first;
    let queueId = request.queueId;
    for (let attempt = 1; ; attempt++) {
      if (!(err instanceof PocketMQError) || !err.retriable || attempt > this.retryTimes) {
        throw err;
      }
      if (!pinned) queueId = (queueId + 1) % queueCount;
      try {
        return await send({ ...request, queueId });
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

  /**
   * Send `message` in a transaction: store it as a half message (invisible to consumers; under
   * SYNC_FLUSH durable first), run the listener's `executeLocalTransaction(message, arg)`, then
   * end the transaction as it answers: COMMIT_MESSAGE stores the message in its topic (with the
   * half's msgId), ROLLBACK_MESSAGE drops it, UNKNOWN (or a throw) leaves it to the check-back.
   * A half stored with another status than SEND_OK is rolled back without running the local
   * transaction (RocketMQ's rule). Resolves the half's receipt and the local transaction's
   * state; when ending the transaction fails (the store closed meanwhile) that is logged and
   * the check-back ends it later, after a reopen if need be. INVALID_STATE when the producer
   * has no `transactionListener`.
   */
  async sendMessageInTransaction(message: Message, arg?: unknown):
    Promise<TransactionSendResult> {
    this.checkRunning();
    if (this.transactions === null) {
      throw new PocketMQError('INVALID_STATE', `producer ${this.group} has no ` +
        'transactionListener: create it with one to send in transactions');
    }
    const msg = this.normalize(message);
    if (msg.delayTimeLevel !== undefined || msg.deliverAt !== undefined) {
      throw new PocketMQError('INVALID_MESSAGE', 'a transactional message cannot carry ' +
        'delayTimeLevel or deliverAt', { property: 'delayTimeLevel', topic: msg.topic });
    }
    const topic = this.port.topicForSend(msg.topic);
    const { queueNums } = topic instanceof Promise ? await topic : topic;
    const request = this.request(msg, this.selectQueue(queueNums, message));
    const sendHalf = (r: SendRequest): Promise<SendResult> => this.port.sendHalf(r);
    const half = await sendHalf(request).catch((err: unknown) =>
      this.retry(err, request, queueNums, false, sendHalf));
    let state: LocalTransactionState = 'ROLLBACK_MESSAGE';
    if (half.status === 'SEND_OK') {
      state = await this.transactions.caller.execute({ ...message, msgId: half.msgId }, arg);
    }
    if (state !== 'UNKNOWN') await this.endTransaction(half.msgId, state);
    return { ...half, localTransactionState: state };
  }

  /** End a transaction; a failure is logged: the check-back ends it later. */
  private async endTransaction(msgId: string,
    state: 'COMMIT_MESSAGE' | 'ROLLBACK_MESSAGE'): Promise<void> {
    try {
      await this.port.endTransaction({ group: this.group, msgId, state });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      this.port.info.logger.warn(`pocketmq: ending the transaction of ${msgId} ` +
        `(${state}) failed; the store checks it back later: ${why}`);
    }
  }

  /**
   * Stop sending: later sends throw INVALID_STATE. Sends in flight complete; check-backs
   * waiting for this producer's listener count as UNKNOWN.
   */
  shutdown(): Promise<void> {
    if (this.running) {
      this.running = false;
      this.onShutdown(this);
      const tx = this.transactions;
      if (tx !== null) {
        tx.caller.shutdown();
        // A registration that failed was logged; there is nothing to undo.
        return Promise.resolve(tx.id).then((id) => this.port.unregisterProducer(this.group, id))
          .catch(() => undefined);
      }
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
