/**
 * MessageStore: what an application opens (README.md). It opens the data directory's storage
 * engine and the broker on top of it, and hands out producers and consumers that talk to the
 * broker through its port (lib/broker/port.ts) and nothing else. `close` shuts the consumers
 * down (waiting for their listener calls), then the broker (offsets, topics, trace), then the
 * engine.
 *
 * This file is where the layers meet, with message-store-open.ts (the open: options, engine,
 * broker, replication or the owner socket): the only modules that import lib/client, lib/broker
 * and lib/store together.
 */
import { PocketMQError } from './errors.js';
import { Broker } from './broker/broker.js';
import { brokerOptionsOn, resolveBrokerOptions } from './broker/options.js';
import {
  checkGroupName, checkTopicName, type BrokerPort, type BrowseResult, type MessageExt,
  type QueueProgress,
  type ResetTarget, type StoreStats, type TopicConfig, type TraceEvent,
} from './broker/port.js';
import { StoreEngine } from './store/store-engine.js';
import type { ReadOnlyStoreOptions } from './store/read-only.js';
import type { StoreOptions } from './store/options.js';
import { openStore } from './message-store-open.js';
import type { SharedPort } from './remote/shared-port.js';
import type { ConsumerBase } from './client/consumer-base.js';
import {
  resolvePullOptions, resolvePushOptions, type PullConsumerOptions, type PushConsumerOptions,
} from './client/consumer-options.js';
import { Producer, type ProducerOptions } from './client/producer.js';
import { PullConsumer } from './client/pull-consumer.js';
import { PushConsumer } from './client/push-consumer.js';
import type { ReplicationOptions } from './replication/options.js';
import type { Replication } from './replication/replication.js';
import { intOption, optionsRecord } from './validate.js';

export type { StoreStats } from './broker/port.js';

export type { BrokerRole, ReplicationOptions } from './replication/options.js';

export interface MessageStoreOptions extends StoreOptions, ReplicationOptions {
  /** Delay levels (RocketMQ's string); retry backoff uses level 3 + reconsumeTimes. */
  messageDelayLevel?: string | undefined;
  /** How often consumer offsets are written to disk. @default 5000 */
  persistConsumerOffsetIntervalMs?: number | undefined;
  /**
   * The latest `deliverAt` a message may have, as a distance from now (ms). @default 30 days
   */
  timerMaxDelayMs?: number | undefined;
  /**
   * Transactions: a half message whose transaction has not ended is checked back (its
   * producer's `checkLocalTransaction`) once it was stored this long ago (ms). @default 6000
   */
  transactionTimeoutMs?: number | undefined;
  /** Transactions: how often unresolved half messages are checked back (ms). @default 5000 */
  transactionCheckIntervalMs?: number | undefined;
  /**
   * Transactions: check-backs of one half message; one still unknown after them goes to
   * `RMQ_SYS_TRANS_CHECK_MAX_TIME_TOPIC` and is never delivered. @default 15
   */
  transactionCheckMax?: number | undefined;
  /**
   * Several processes on one directory: the first opener owns it and serves the others over a
   * socket in the directory (`role` 'owner'); later openers are clients with the whole API
   * (`role` 'client'), and one of them takes over when the owner exits. See
   * docs/multiprocess.md. @default false
   */
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

/** Results of one queryMessage at most. */
export const MAX_QUERY_RESULTS = 10_000;

/** What a store runs on, for tools and tests inside the package (`pocketmq/internal`). */
export interface StoreInternals {
  readonly engine: StoreEngine;
  readonly broker: Broker;
  /** Replication, when the store has a brokerRole. */
  readonly replication: Replication | null;
}

const internalsOf = new WeakMap<MessageStore, StoreInternals>();

/** The engine and broker under a store (unstable; `pocketmq/internal`). */
export function storeInternals(store: MessageStore): StoreInternals {
  const found = internalsOf.get(store);
  if (found === undefined && store instanceof MessageStore) {
    throw new PocketMQError('NOT_SUPPORTED', 'the engine of a store opened with multiProcess: ' +
      'true may live in another process; open it without multiProcess to reach it');
  }
  if (found === undefined) throw new TypeError('not a MessageStore');
  return found;
}

export class MessageStore {
  private readonly clients = new Set<Producer | ConsumerBase>();
  private closing: Promise<void> | null = null;

  private constructor(private readonly port: BrokerPort,
    private readonly closeBroker: () => Promise<void>,
    private readonly replication: Replication | null = null,
    private readonly shared: SharedPort | null = null) {}

  private static wrap(engine: StoreEngine, broker: Broker,
    replication: Replication | null = null): MessageStore {
    const store = new MessageStore(broker, async () => {
      try {
        await replication?.close();
        await broker.close();
      } finally {
        await engine.close();
      }
    }, replication);
    internalsOf.set(store, { engine, broker, replication });
    return store;
  }

  /**
   * 'owner': this process holds the lock and the files and takes writes; 'client': it reaches
   * the owner process over the owner socket (`multiProcess: true`; it becomes 'owner' if it takes
   * over); 'readonly': see `openReadOnly`; 'slave': a follower of a master (brokerRole SLAVE):
   * reads only, until `promote()`.
   */
  get role(): 'owner' | 'client' | 'readonly' | 'slave' {
    if (this.shared !== null) return this.shared.role;
    if (this.port.info.readOnly) return 'readonly';
    return this.replication?.isFollowing === true ? 'slave' : 'owner';
  }

  /** The port a master listens on for followers (brokerRole SYNC_MASTER or ASYNC_MASTER). */
  get haPort(): number | null {
    return this.replication?.haPort ?? null;
  }

  /**
   * Turn this follower into a writable store (role 'owner'), for example after its master
   * died: it stops following, its log continues after the copied bytes, consumer groups resume
   * from the offsets copied from the master, and sends resolve SEND_OK (it listens for a
   * follower of its own when `haListenPort` was given). Recorded in the directory: a reopen
   * with brokerRole SLAVE does not follow the old master again. INVALID_STATE on a store that
   * is not a follower.
   */
  async promote(): Promise<void> {
    this.port.checkOpen();
    if (this.replication === null) {
      throw new PocketMQError('INVALID_STATE', 'promote() is for a follower (brokerRole ' +
        'SLAVE); this store does not replicate');
    }
    await this.replication.promote();
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
      const broker = Broker.open(engine, brokerOptionsOn(resolveBrokerOptions({}),
        engine.options));
      return MessageStore.wrap(engine, broker);
    } catch (err) {
      await engine.close().catch(() => undefined);
      throw err;
    }
  }

  /** Open (creating if missing) the store in `dir`, recovering whatever the last run left. */
  static async open(dir: string, options: MessageStoreOptions = {}): Promise<MessageStore> {
    const opened = await openStore(dir, options);
    if (opened.shared !== null) {
      const port = opened.shared;
      return new MessageStore(port, () => port.close(), null, port);
    }
    const { engine, broker, replication } = opened.local;
    return MessageStore.wrap(engine, broker, replication);
  }

  get dir(): string {
    return this.port.info.dir;
  }

  /** Create a topic with `queueNums` queues (or grow one); resolves once it is on disk. */
  async createTopic(topic: string, options: { queueNums?: number } = {}): Promise<TopicConfig> {
    const o = optionsRecord(options, 'createTopic options');
    this.checkWritable();
    return this.port.createTopic(topic,
      (o.queueNums as number | undefined) ?? this.port.info.defaultTopicQueueNums);
  }

  /** Every topic and its queue count. */
  topics(): TopicConfig[] {
    const topics = this.port.topics();
    if (topics instanceof Promise) {
      topics.catch(() => undefined);
      throw new PocketMQError('NOT_SUPPORTED', 'topics() answers at once only in the owner ' +
        'process; in a multiProcess client (or while the store changes hands) use stats(), ' +
        'whose topics come from the owner');
    }
    return topics;
  }

  createProducer(options: ProducerOptions): Producer {
    this.checkWritable();
    const producer = new Producer(this.port, options, (p) => this.clients.delete(p));
    this.clients.add(producer);
    return producer;
  }

  createPushConsumer(options: PushConsumerOptions): PushConsumer {
    this.checkNotReadOnly();
    const resolved = resolvePushOptions(options, this.port.info.clock.now());
    const consumer = new PushConsumer(this.port, resolved, (c) => this.clients.delete(c));
    this.clients.add(consumer);
    return consumer;
  }

  createPullConsumer(options: PullConsumerOptions): PullConsumer {
    this.checkNotReadOnly();
    const resolved = resolvePullOptions(options, this.port.info.clock.now());
    const consumer = new PullConsumer(this.port, resolved, (c) => this.clients.delete(c));
    this.clients.add(consumer);
    return consumer;
  }

  /** The message with this id (from SendResult or MessageExt), or null. */
  viewMessage(msgId: string): Promise<MessageExt | null> {
    return this.port.viewMessage(msgId);
  }

  /** Messages of `topic` with `key`, newest first, at most `maxNum`. */
  queryMessage(query: QueryOptions): Promise<MessageExt[]> {
    return settle(() => {
      if (query === null || typeof query !== 'object' || typeof query.key !== 'string') {
        throw new PocketMQError('INVALID_OPTION', 'queryMessage takes { topic, key, ... }',
          { property: 'key' });
      }
      const maxNum = intOption(query as unknown as Record<string, unknown>, 'maxNum', 32, 1,
        MAX_QUERY_RESULTS);
      return this.port.queryMessage({ topic: query.topic, key: query.key, maxNum,
        begin: query.begin ?? 0, end: query.end ?? Number.MAX_SAFE_INTEGER });
    });
  }

  /**
   * Cancel a message sent with `delayTimeLevel` or `deliverAt` before it is due, by the msgId
   * its send returned. Resolves true once the cancellation is on disk; false when the message
   * was delivered or cancelled already, or the id names no scheduled message.
   */
  cancelScheduled(msgId: string): Promise<boolean> {
    return settle(() => {
      this.checkWritable();
      return this.port.cancelScheduled(msgId);
    });
  }

  /** The first offset of the queue stored at or after `timestampMs`, else the max offset. */
  searchOffset(topic: string, queueId: number, timestampMs: number): Promise<number> {
    return this.queueCall(topic, queueId, (mq) => this.port.searchOffset(mq, timestampMs));
  }

  minOffset(topic: string, queueId: number): Promise<number> {
    return this.queueCall(topic, queueId, (mq) => this.port.minOffset(mq));
  }

  maxOffset(topic: string, queueId: number): Promise<number> {
    return this.queueCall(topic, queueId, (mq) => this.port.maxOffset(mq));
  }

  /**
   * The trace events of a message (PUB, SUB, DLQ), oldest first; [] when none were recorded.
   * Events still buffered are written first. See docs/observability.md.
   */
  queryTrace(msgId: string): Promise<TraceEvent[]> {
    return this.port.queryTrace(msgId);
  }

  /** Per queue the group consumes: brokerOffset, consumerOffset, lag. */
  consumerProgress(group: string): Promise<QueueProgress[]> {
    return settle(() => this.port.consumerProgress(checkGroupName(group)));
  }

  /**
   * Files, disk use, appends and their latencies since open, every topic's size, and every
   * group's backlog.
   */
  stats(): Promise<StoreStats> {
    return this.port.stats();
  }

  /** Up to `maxNum` (default 32) messages of one queue from `offset` (default: the oldest). */
  browse(query: BrowseOptions): Promise<BrowseResult> {
    return settle(() => {
      if (query === null || typeof query !== 'object') {
        throw new PocketMQError('INVALID_OPTION', 'browse takes { topic, queueId, offset, ' +
          'maxNum }', { property: 'query' });
      }
      return this.port.browse(query.topic, query.queueId ?? 0, query.offset ?? 0,
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
    return this.port.resetConsumerOffset(group, topic, to);
  }

  /**
   * Send the group's dead letters (`%DLQ%<group>`) again to the topics they came from, at most
   * `maxNum`, from where the last resend stopped.
   */
  async resendDeadLetters(group: string, options: { maxNum?: number } = {}):
    Promise<{ resent: number; remaining: number }> {
    this.checkWritable();
    return this.port.resendDeadLetters(group, options?.maxNum ?? Number.MAX_SAFE_INTEGER);
  }

  /** Shut down every producer and consumer, write offsets, flush and close. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** `await using store = await MessageStore.open(dir)` closes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async shutdown(): Promise<void> {
    const clients = [...this.clients];
    const results = await Promise.allSettled(clients.map((c) => c.shutdown()));
    await this.closeBroker();
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /** Consumers: an owner's store or a follower (its groups commit offsets locally). */
  private checkNotReadOnly(): void {
    this.port.checkOpen();
    if (this.role === 'readonly') {
      throw new PocketMQError('STORE_READ_ONLY', `${this.dir} is open read-only`);
    }
  }

  /** Producers and admin writes: an owner's store only. */
  private checkWritable(): void {
    this.checkNotReadOnly();
    if (this.role === 'slave') {
      throw new PocketMQError('NOT_MASTER', `${this.dir} follows a master: send to the ` +
        'master, or promote() this store');
    }
  }

  /** A call about one queue, its arguments checked first. */
  private queueCall(topic: string, queueId: number,
    fn: (mq: { topic: string; queueId: number }) => number | Promise<number>): Promise<number> {
    return settle(() => {
      this.port.checkOpen();
      return fn({ topic: checkTopicName(topic), queueId });
    });
  }
}

function settle<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err as Error);
  }
}
