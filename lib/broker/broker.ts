/**
 * The in-process broker: what RocketMQ's broker adds on top of the store, serving the broker
 * port (port.ts) to the producers and consumers of this process. It owns the topic table,
 * consumer offsets, group membership and queue locks (core.ts), decides each stored record
 * (send.ts), serves filtered fetches with long polling (pull-hold.ts), redelivers and
 * dead-letters failed messages (retry/), holds scheduled messages until due (schedule/) and
 * transactional ones until their transaction ends (transaction/), and records the message trace
 * (trace/).
 */
import { PocketMQError } from '../errors.js';
import type { StoreEngine } from '../store/store-engine.js';
import {
  browse, brokerStats, consumerProgress, resendDeadLetters, resetOffset,
} from './admin.js';
import { BrokerCore, type BrokerOptions } from './core.js';
import { retryDelayMs } from './delay-levels.js';
import { Fetcher } from './fetch.js';
import { messageById, messagesByKey } from './lookup.js';
import type { MessageExt } from './message.js';
import { checkGroupName, checkUserTopic } from './names.js';
import type {
  BatchRequest, BrokerInfo, BrokerPort, BrowseResult, ConsumeReport, EndTransactionRequest,
  FetchRequest, FetchResult, GroupMember, MessageQueue, ProducerMember, QueryRequest,
  QueueProgress, ResetTarget, SendBackRequest, SendBackResult, SendRequest, SendResult,
  StoreStats, TopicConfig, TraceEvent,
} from './port.js';
import { PullHoldService } from './pull-hold.js';
import { deadLetterAll } from './retry/dead-letter.js';
import { RetryService } from './retry/retry-service.js';
import { Scheduler } from './schedule/scheduler.js';
import { scheduledRecord, type Schedule } from './schedule/schedule-record.js';
import { receipt, receiptOf, storedBody, toRecord } from './send.js';
import { queryTrace } from './trace/query.js';
import { TRACE_TOPIC } from './trace/trace-events.js';
import { CONSUMER_OFFSET_FILE_NAME } from './consumer-offsets.js';
import { DELAY_OFFSET_FILE_NAME } from './schedule/progress.js';
import { TOPIC_CONFIG_FILE_NAME } from './topic-config.js';
import { Tracer } from './trace/tracer.js';
import { TransactionService } from './transaction/transactions.js';

export type { BrokerOptions } from './core.js';

export class Broker implements BrokerPort {
  readonly info: BrokerInfo;
  private readonly core: BrokerCore;
  private readonly holds: PullHoldService;
  private readonly retry: RetryService;
  private readonly tracer: Tracer | null;
  private readonly scheduler: Scheduler;
  private readonly transactions: TransactionService;
  private readonly fetcher: Fetcher;
  private readonly stopArrivals: () => void;
  private closing: Promise<void> | null = null;

  private constructor(private readonly engine: StoreEngine, options: BrokerOptions) {
    const core = new BrokerCore(engine, options);
    this.core = core;
    this.info = Object.freeze({ dir: engine.dir, clock: options.clock, logger: options.logger,
      readOnly: engine.readOnly, maxMessageSize: engine.options.maxMessageSize,
      defaultTopicQueueNums: options.defaultTopicQueueNums, tracing: options.trace });
    this.holds = new PullHoldService(options.clock);
    this.fetcher = new Fetcher(engine);
    this.tracer = options.trace ? new Tracer({ clock: options.clock, logger: options.logger,
      maxMessageSize: engine.options.maxMessageSize,
      ensureTopic: () => core.systemTopic(TRACE_TOPIC, 1),
      put: (input) => engine.putMessage(input) }) : null;
    this.scheduler = new Scheduler(core, { delayLevels: options.delayLevels,
      timerMaxDelayMs: options.timerMaxDelayMs,
      persistIntervalMs: options.persistConsumerOffsetIntervalMs });
    this.transactions = new TransactionService(core, { timeoutMs: options.transactionTimeoutMs,
      checkIntervalMs: options.transactionCheckIntervalMs, checkMax: options.transactionCheckMax });
    this.retry = new RetryService({ clock: options.clock,
      retryDelayMs: (n) => retryDelayMs(options.delayLevels, n),
      member: (group, clientId) => core.consumers.member(group, clientId),
      deadLetter: (group, clientId, messages) => this.deadLetter(group, clientId, messages),
      storeRetry: (group, message) => this.storeRetry(group, message),
      onError: (what, err) => this.reportError(what, err) });
    this.stopArrivals = engine.onMessageArrived((topic, queueId, maxOffset) => {
      this.holds.notify(topic, queueId, maxOffset);
      this.scheduler.arrived(topic, queueId);
    });
  }

  /** Load topics and offsets from `config/` and start persisting offsets. */
  static open(engine: StoreEngine, options: BrokerOptions): Broker {
    const broker = new Broker(engine, options);
    try {
      broker.core.topics.load(engine.topics());
      broker.core.offsets.load();
      broker.scheduler.load();
      if (!engine.readOnly) {
        broker.transactions.load();
        // Before any retention pass (the open's runs now): records not yet delivered stay.
        engine.holdRetention(() => Math.min(broker.scheduler.oldestPending(),
          broker.transactions.oldestPending()));
      }
    } catch (err) {
      broker.stopArrivals();
      throw err;
    }
    // A read-only store writes nothing: offsets stay as the owner last wrote them. A follower
    // keeps its consumers' offsets but delivers no scheduled message until it is promoted.
    if (!engine.readOnly) {
      broker.core.offsets.start();
      if (!engine.isFollowing) {
        broker.scheduler.start();
        broker.transactions.start();
      }
    }
    return broker;
  }

  /**
   * A follower: apply a config file copied from its master (replication): topics.json and
   * consumerOffset.json are merged, delayOffset.json taken as it is. CORRUPT_DATA when the
   * bytes are not a valid file of that name.
   */
  applyReplicatedConfig(name: string, bytes: Buffer): void {
    this.checkOpen();
    if (name === TOPIC_CONFIG_FILE_NAME) {
      for (const topic of this.core.topics.applyReplicated(bytes)) {
        this.core.consumers.topicChanged(topic);
      }
    } else if (name === CONSUMER_OFFSET_FILE_NAME) {
      this.core.offsets.applyReplicated(bytes);
    } else if (name === DELAY_OFFSET_FILE_NAME) {
      this.scheduler.applyReplicated(bytes);
    } else {
      throw new PocketMQError('INVALID_OPTION', `${name} is not a replicated config file`,
        { property: 'name' });
    }
  }

  /** A promoted follower writes from now on: scheduled messages are delivered again. */
  promoted(): void {
    this.checkOpen();
    this.scheduler.start();
    this.transactions.start();
  }

  get isClosed(): boolean {
    return this.core.isClosed;
  }

  checkOpen(): void {
    this.core.checkOpen();
  }

  topicForSend(topic: string): TopicConfig {
    return this.core.topicForSend(topic);
  }

  topic(topic: string): TopicConfig | undefined {
    return this.core.topics.get(topic);
  }

  topics(): TopicConfig[] {
    this.checkOpen();
    return this.core.topics.list();
  }

  /** Create a topic (or grow its queues); resolves once the topic table is on disk. */
  async createTopic(topic: string, queueNums: number): Promise<TopicConfig> {
    this.core.checkWritable();
    checkUserTopic(topic);
    const before = this.core.topics.get(topic)?.queueNums ?? 0;
    const config = await this.core.topics.create(topic, queueNums);
    if (config.queueNums !== before) this.core.consumers.topicChanged(topic);
    return config;
  }

  /** Store one message; the receipt itself when the append settled at once (ASYNC_FLUSH). */
  send(request: SendRequest): SendResult | Promise<SendResult> {
    const { message, queueId } = request;
    if (message.delayTimeLevel !== undefined || message.deliverAt !== undefined) {
      const schedule = this.scheduler.scheduleOf(message);
      if (schedule !== null) return this.sendScheduled(request, schedule);
    }
    const input = toRecord(message, queueId, request.compressOver);
    const tracer = this.tracer;
    // The store hands out the receipt itself: under SYNC_FLUSH its flush waiter resolves with it.
    if (tracer === null) return this.engine.putMapped(input, receiptOf);
    const timer = tracer.start();
    const stored = this.engine.putMapped(input, receiptOf);
    if (!(stored instanceof Promise)) {
      tracer.published(request.producer, timer, message, stored);
      return stored;
    }
    return tracer.traceSend(stored, (r) => tracer.published(request.producer, timer, message, r));
  }

  /** A message held in a schedule queue until it is due (a delay level, or deliverAt). */
  private async sendScheduled(request: SendRequest, schedule: Schedule): Promise<SendResult> {
    const { message, queueId } = request;
    await this.scheduler.ensureScheduleTopic(schedule);
    const { body, sysFlag } = storedBody(message.body, request.compressOver);
    const timer = this.tracer?.start();
    const r = receipt(message.topic, queueId, await this.engine.putMessage(
      scheduledRecord(message, queueId, body, sysFlag, schedule)));
    if (this.tracer !== null) this.tracer.published(request.producer, timer!, message, r);
    return r;
  }

  cancelScheduled(msgId: string): Promise<boolean> {
    return this.scheduler.cancel(msgId);
  }

  sendHalf(request: SendRequest): Promise<SendResult> {
    return this.transactions.sendHalf(request);
  }

  endTransaction(request: EndTransactionRequest): Promise<void> {
    return this.transactions.endTransaction(request);
  }

  registerProducer(producer: ProducerMember): string {
    checkGroupName(producer.group);
    return this.transactions.registerProducer(producer);
  }

  unregisterProducer(group: string, producerId: string): void {
    this.transactions.unregisterProducer(group, producerId);
  }

  /** Half messages checked back and unresolved, and check-back calls in flight now. */
  get transactionsInMemory(): { checking: number; inFlight: number } {
    return this.transactions.stats;
  }

  /** Timer messages held in memory now (those due within the scheduler's window). */
  get timersInMemory(): number {
    return this.scheduler.timersHeld;
  }

  /** A failed message into the group's retry topic, through its backoff's delay level. */
  private async storeRetry(group: string, message: MessageExt): Promise<void> {
    const { schedule, input } = this.scheduler.retryRecord(group, message);
    await this.scheduler.ensureScheduleTopic(schedule);
    await this.engine.putMessage(input);
  }

  sendBatch(request: BatchRequest): Promise<SendResult[]> {
    const { messages, queueId } = request;
    if (messages.some((m) => m.delayTimeLevel !== undefined || m.deliverAt !== undefined)) {
      return Promise.reject(new PocketMQError('INVALID_MESSAGE', 'a batch cannot carry ' +
        'delayTimeLevel or deliverAt: send scheduled messages one by one',
      { property: 'delayTimeLevel' }));
    }
    const topic = messages[0]?.topic ?? '';
    const tracer = this.tracer;
    const timer = tracer?.start();
    const done = this.engine.putMessages(messages.map((m) =>
      toRecord(m, queueId, request.compressOver))).then((all) =>
      all.map((r) => receipt(topic, queueId, r)));
    if (tracer === null) return done;
    return tracer.traceSend(done, (all) => all.forEach((r, i) =>
      tracer.published(request.producer, timer!, messages[i]!, r)));
  }

  join(member: GroupMember): string {
    this.core.checkWritable();
    checkGroupName(member.group);
    return this.core.consumers.join(member);
  }

  leave(group: string, clientId: string): void {
    this.core.consumers.leave(group, clientId);
  }

  /**
   * A member whose process went away (its connection closed): it leaves its group, its queue
   * locks and pending redeliveries go, so the others take its queues from committed offsets.
   */
  evict(group: string, clientId: string): void {
    this.core.consumers.leave(group, clientId);
    this.core.consumers.releaseLocks(group, clientId);
    this.retry.cancelMember(group, clientId);
  }

  clientIds(group: string): string[] {
    return this.core.consumers.clientIds(group);
  }

  lockQueue(group: string, mq: MessageQueue, clientId: string,
    signal?: AbortSignal): Promise<boolean> {
    return this.core.consumers.lock(group, mq.topic, mq.queueId, clientId, signal);
  }

  unlockQueue(group: string, mq: MessageQueue, clientId: string): void {
    this.core.consumers.unlock(group, mq.topic, mq.queueId, clientId);
  }

  /** Messages of one queue from `offset` that pass the selector. Never waits. */
  fetch(request: FetchRequest): FetchResult {
    this.checkOpen();
    return this.fetcher.fetch(request);
  }

  waitForMessage(mq: MessageQueue, offset: number, timeoutMs: number,
    signal?: AbortSignal): Promise<boolean> {
    if (this.isClosed) return Promise.resolve(false);
    const { topic, queueId } = mq;
    return this.holds.wait(topic, queueId, offset, timeoutMs,
      () => this.engine.getMaxOffsetInQueue(topic, queueId), signal);
  }

  minOffset(mq: MessageQueue): number {
    return this.engine.getMinOffsetInQueue(mq.topic, mq.queueId);
  }

  maxOffset(mq: MessageQueue): number {
    return this.engine.getMaxOffsetInQueue(mq.topic, mq.queueId);
  }

  searchOffset(mq: MessageQueue, timestampMs: number): number {
    return this.engine.getOffsetInQueueByTime(mq.topic, mq.queueId, timestampMs);
  }

  commitOffset(group: string, mq: MessageQueue, offset: number): void {
    this.core.offsets.commit(group, mq.topic, mq.queueId, offset);
  }

  queryOffset(group: string, mq: MessageQueue): number {
    return this.core.offsets.query(group, mq.topic, mq.queueId);
  }

  persistOffsets(): Promise<void> {
    return this.core.offsets.persist();
  }

  sendBack(request: SendBackRequest): Promise<SendBackResult> {
    return this.retry.sendBack(request);
  }

  deadLetter(group: string, clientId: string, messages: readonly MessageExt[]):
    Promise<MessageExt[]> {
    return deadLetterAll(this.core, this.tracer, group, clientId, messages,
      (what, err) => this.reportError(what, err));
  }

  cancelRedeliveries(group: string, clientId: string, mq: MessageQueue): void {
    this.retry.cancel(group, clientId, mq);
  }

  reportConsumed(report: ConsumeReport): void {
    this.tracer?.consumed(report);
  }

  /** The message with this id, or null for an unknown or malformed id. */
  viewMessage(msgId: unknown): Promise<MessageExt | null> {
    return settle(() => {
      this.checkOpen();
      return messageById(this.engine, msgId);
    });
  }

  queryMessage(request: QueryRequest): Promise<MessageExt[]> {
    return settle(() => this.queryByKey(request.topic, request.key, request.maxNum,
      request.begin, request.end));
  }

  /** The trace events of a message; events still buffered are written first. */
  async queryTrace(msgId: string): Promise<TraceEvent[]> {
    this.checkOpen();
    await this.tracer?.flush();
    return queryTrace((topic, key, max) => this.queryByKey(topic, key, max, 0,
      Number.MAX_SAFE_INTEGER), msgId);
  }

  consumerProgress(group: string): Promise<QueueProgress[]> {
    return settle(() => consumerProgress(this.core, checkGroupName(group)));
  }

  browse(topic: string, queueId: number, offset: number, maxNum: number):
    Promise<BrowseResult> {
    return settle(() => browse(this.core, topic, queueId, offset, maxNum));
  }

  stats(): Promise<StoreStats> {
    return settle(() => ({ dir: this.engine.dir,
      role: this.engine.readOnly ? 'readonly' as const
        : this.engine.isFollowing ? 'slave' as const : 'owner' as const,
      ...this.engine.stats(), ...brokerStats(this.core) }));
  }

  resetConsumerOffset(group: string, topic: string, to: ResetTarget):
    Promise<{ queueId: number; before: number; after: number }[]> {
    return resetOffset(this.core, group, topic, to);
  }

  resendDeadLetters(group: string, maxNum: number):
    Promise<{ resent: number; remaining: number }> {
    return resendDeadLetters(this.core, group, maxNum);
  }

  /**
   * Stop serving: write the trace's last events, wake waiting fetches, cancel redeliveries,
   * write offsets and topics. The engine stays open (its owner closes it).
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    // Events of the last sends and listener calls go in before the log closes (never rejects).
    await this.tracer?.close();
    this.core.markClosed();
    this.stopArrivals();
    this.holds.releaseAll();
    this.retry.cancelAll();
    if (this.engine.readOnly) return;
    await Promise.all([this.scheduler.close(), this.transactions.close()]);
    try {
      await this.core.offsets.stop();
    } catch (err) {
      // A stopped store keeps its last written offsets (consumers see some messages again).
      if (this.engine.isOpen) throw err;
      const why = err instanceof Error ? err.message : String(err);
      this.info.logger.warn(`pocketmq: consumer offsets not written at close: ${why}`);
    }
    await this.core.topics.flush();
  }

  private queryByKey(topic: string, key: string, maxNum: number, beginMs: number,
    endMs: number): MessageExt[] {
    this.checkOpen();
    return messagesByKey(this.engine, topic, key, maxNum, beginMs, endMs);
  }

  private reportError(what: string, err: unknown): void {
    const why = err instanceof Error ? (err.stack ?? err.message) : String(err);
    this.info.logger.error(`pocketmq: ${what}: ${why}`);
  }
}

function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err as Error);
  }
}
