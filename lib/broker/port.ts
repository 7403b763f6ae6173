/**
 * The broker port: the one interface through which producers, consumers and the store facade
 * (lib/client, lib/message-store.ts) talk to a broker. The in-process broker (broker.ts)
 * implements it; a broker in another process is reached through an implementation of the same
 * interface, so clients cannot tell the two apart.
 *
 * Calls a remote broker would have to answer over the wire return `Awaitable<T>`: the in-process
 * broker answers at once (no promise, no extra turn on the hot paths), a remote one with a
 * promise. Callers handle both.
 *
 * Clients import this module and nothing else of lib/broker (a lint rule and a test hold it so):
 * it re-exports the message types, the selector and the name checks clients need.
 */
import type { Clock, TimerHandle } from '../store/clock.js';
import type { Logger } from '../store/options.js';
import type { EngineStats } from '../store/store-stats.js';
import type { MessageSelector } from './filter/message-selector.js';
import type { MessageExt, NormalizedMessage, SendStatus } from './message.js';
import type { SubTraceResult, TraceEvent } from './trace/trace-events.js';

export { MessageSelector } from './filter/message-selector.js';
export type { SelectorType } from './filter/message-selector.js';
export { normalizeMessage } from './message.js';
export type {
  Message, MessageBody, MessageExt, NormalizedMessage, PropertyValue, SendStatus,
} from './message.js';
export {
  checkGroupName, checkTopicName, checkUserTopic, DLQ_TOPIC_PREFIX, INSTANCE_NAME_PATTERN,
  RETRY_TOPIC_PREFIX,
} from './names.js';
export { queueOfShardingKey } from './sharding.js';
export type { Clock, Logger, TimerHandle };
export type { TraceEvent };

/** A value now, or later when the broker is remote. */
export type Awaitable<T> = T | Promise<T>;

export type MessageModel = 'CLUSTERING' | 'BROADCASTING';

/** One queue of a topic. */
export interface MessageQueue {
  readonly topic: string;
  readonly queueId: number;
}

/** A topic and its queue count. */
export interface TopicConfig {
  readonly topic: string;
  readonly queueNums: number;
}

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

/** Who sends: names the producer in traces. */
export interface ProducerRef {
  readonly group: string;
  readonly instanceName: string;
}

/** One message for one queue, checked by `normalizeMessage`. */
export interface SendRequest {
  readonly message: NormalizedMessage;
  readonly queueId: number;
  readonly producer: ProducerRef;
  /** Bodies larger than this are stored compressed (the broker decides the record). */
  readonly compressOver: number;
}

/** Messages of one topic for one queue, stored atomically. */
export interface BatchRequest {
  readonly messages: readonly NormalizedMessage[];
  readonly queueId: number;
  readonly producer: ProducerRef;
  readonly compressOver: number;
}

/** A fetch's outcome (RocketMQ's PullStatus, with the illegal-offset case split in two). */
export type FetchStatus =
  | 'FOUND' | 'NO_NEW_MSG' | 'NO_MATCHED_MSG' | 'OFFSET_TOO_SMALL' | 'OFFSET_TOO_BIG';

export interface FetchRequest {
  readonly topic: string;
  readonly queueId: number;
  readonly offset: number;
  readonly maxMessages: number;
  /** Which messages pass: a tag expression or SQL92 (`MessageSelector`). */
  readonly selector: MessageSelector;
  /** Stop once this many stored bytes are taken (at least one message is returned). */
  readonly maxBytes?: number | undefined;
}

export interface FetchResult {
  readonly status: FetchStatus;
  readonly messages: MessageExt[];
  /** Where the next fetch of this queue starts (past filtered-out messages too). */
  readonly nextBeginOffset: number;
  readonly minOffset: number;
  readonly maxOffset: number;
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

/** A consumer instance as its group sees it. The broker calls back into it. */
export interface GroupMember {
  readonly group: string;
  /** The wanted instance name; the broker makes it unique in the group (`name#2`, ...). */
  readonly instanceName: string;
  /** The client id to have again, when free (a member joining a new owner after a hand-over). */
  readonly preferredClientId?: string | undefined;
  readonly messageModel: MessageModel;
  /** The topics it subscribes to. */
  topics(): readonly string[];
  /** The group's membership, or the queues of one of its topics, changed: rebalance. */
  onChange(): void;
  /** Hand offsets the member holds back (coalesced per turn) to the broker now. */
  flushOffsets(): void;
  /** Messages given back with `sendBack` are due again (reconsumeTimes counted up). */
  redeliver(mq: MessageQueue, messages: readonly MessageExt[]): void;
  /** Messages given back with `sendBack` went to the dead-letter queue: acknowledge them. */
  deadLettered(mq: MessageQueue, messages: readonly MessageExt[]): void;
  /**
   * The broker behind the port changed (its owner process went away and another took over):
   * the member is in the group again as `clientId`. It gives up every queue without committing
   * (the new broker holds neither its locks nor what it did not persist) and rebalances, so it
   * resumes from the persisted offsets.
   */
  reset?(clientId: string): void;
}

/** What a transactional producer's local transaction came to (RocketMQ's LocalTransactionState). */
export type LocalTransactionState = 'COMMIT_MESSAGE' | 'ROLLBACK_MESSAGE' | 'UNKNOWN';

/**
 * A producer with a transaction listener, as the broker sees it: the broker calls back into it
 * to ask about a half message left unresolved (RocketMQ's check-back).
 */
export interface ProducerMember {
  readonly group: string;
  /** The wanted instance name; the broker makes it unique in the group (`name#2`, ...). */
  readonly instanceName: string;
  /**
   * The state of the local transaction of a half message (its real topic and queue, the half's
   * msgId). A rejection counts as UNKNOWN.
   */
  checkLocalTransaction(message: MessageExt): Promise<LocalTransactionState>;
}

/** The end of a transaction: commit or roll back the half message `msgId`. */
export interface EndTransactionRequest {
  /** The producer group that sent the half. */
  readonly group: string;
  /** The half's msgId (its SendResult's). */
  readonly msgId: string;
  readonly state: 'COMMIT_MESSAGE' | 'ROLLBACK_MESSAGE';
}

/** Messages a consumer failed (RECONSUME_LATER or a throw), given back to the broker. */
export interface SendBackRequest {
  readonly group: string;
  readonly clientId: string;
  readonly mq: MessageQueue;
  readonly messages: readonly MessageExt[];
  /** Deliveries after the first before a message goes to `%DLQ%<group>`. */
  readonly maxReconsumeTimes: number;
}

/**
 * What became of messages given back: `acknowledged` are stored again (in the group's retry
 * topic, or its dead-letter queue): acknowledge them. `held` could not be stored: the broker
 * holds them and hands them back later through `GroupMember.redeliver` (or, once a move to the
 * DLQ succeeds, `GroupMember.deadLettered`); keep them unacknowledged until then.
 */
export interface SendBackResult {
  readonly acknowledged: readonly MessageExt[];
  readonly held: readonly MessageExt[];
}

/** THROWN: the listener threw or rejected; PULLED: a pull consumer's poll handed it out. */
export type ConsumeOutcome = SubTraceResult;

/** One listener call (or poll) for the message trace. */
export interface ConsumeReport {
  readonly group: string;
  readonly clientId: string;
  readonly messages: readonly MessageExt[];
  readonly outcome: ConsumeOutcome;
  /** When the call started, ms since the epoch (the broker's clock). */
  readonly timestamp: number;
  readonly durationMs: number;
}

export type ResetTarget = 'earliest' | 'latest' | { readonly timestamp: number };

export interface BrowseResult {
  readonly messages: MessageExt[];
  /**
   * For each message, in order: the topic it was first sent to when it is a redelivered copy
   * (a dead letter or a retry: RocketMQ's RETRY_TOPIC property, hidden from `properties`),
   * else null.
   */
  readonly originTopics: (string | null)[];
  /** The offset after the last message returned: where the next page starts. */
  readonly nextOffset: number;
  readonly minOffset: number;
  readonly maxOffset: number;
}

export interface TopicStats {
  readonly topic: string;
  readonly queues: number;
  /** Messages stored now (max - min offset, summed over the queues). */
  readonly messages: number;
  readonly maxOffset: number;
}

export interface GroupStats {
  readonly group: string;
  readonly topics: string[];
  /** Messages behind, summed over the queues the group has offsets for. */
  readonly lag: number;
  /** Consumers of the group running in this process. */
  readonly consumers: number;
}

/** What a client needs to know of its broker, fixed for the broker's life. */
export interface BrokerInfo {
  readonly dir: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly readOnly: boolean;
  readonly maxMessageSize: number;
  readonly defaultTopicQueueNums: number;
  /** The message trace is on: clients report listener calls with `reportConsumed`. */
  readonly tracing: boolean;
}

export interface StoreStats extends EngineStats {
  readonly dir: string;
  readonly role: 'owner' | 'readonly' | 'slave';
  readonly topics: TopicStats[];
  readonly groups: GroupStats[];
}

export interface QueryRequest {
  readonly topic: string;
  readonly key: string;
  readonly maxNum: number;
  readonly begin: number;
  readonly end: number;
}

/** Everything a client does with a broker. */
export interface BrokerPort {
  readonly info: BrokerInfo;
  /** STORE_CLOSED once the broker stopped serving. */
  checkOpen(): void;
  readonly isClosed: boolean;

  /** The topic a producer sends to, created on first use with the default queue count. */
  topicForSend(topic: string): Awaitable<TopicConfig>;
  /** A topic's queues, or undefined when there is no such topic. */
  topic(topic: string): Awaitable<TopicConfig | undefined>;
  topics(): Awaitable<TopicConfig[]>;
  createTopic(topic: string, queueNums: number): Promise<TopicConfig>;

  send(request: SendRequest): Awaitable<SendResult>;
  sendBatch(request: BatchRequest): Promise<SendResult[]>;

  /** Join a group; resolves the instance's client id, unique in the group. */
  join(member: GroupMember): Awaitable<string>;
  leave(group: string, clientId: string): Awaitable<void>;
  /** Client ids of a group's live instances, sorted (every instance computes one split). */
  clientIds(group: string): Awaitable<string[]>;
  /** Resolves true once `clientId` holds the queue's lock; false if `signal` aborts first. */
  lockQueue(group: string, mq: MessageQueue, clientId: string,
    signal?: AbortSignal): Promise<boolean>;
  unlockQueue(group: string, mq: MessageQueue, clientId: string): void;

  /** Messages of one queue from `offset` that pass the selector. Never waits. */
  fetch(request: FetchRequest): Awaitable<FetchResult>;
  /**
   * Long polling: resolves true once the queue holds a message at `offset` or later, false
   * after `timeoutMs` or when `signal` aborts or the broker closes.
   */
  waitForMessage(mq: MessageQueue, offset: number, timeoutMs: number,
    signal?: AbortSignal): Promise<boolean>;
  minOffset(mq: MessageQueue): Awaitable<number>;
  maxOffset(mq: MessageQueue): Awaitable<number>;
  /** The first offset stored at or after `timestampMs`, else the max offset. */
  searchOffset(mq: MessageQueue, timestampMs: number): Awaitable<number>;

  /** Record a group's offset of a queue (kept in memory, written by `persistOffsets`). */
  commitOffset(group: string, mq: MessageQueue, offset: number): void;
  /** The group's committed offset of a queue, -1 if none. */
  queryOffset(group: string, mq: MessageQueue): Awaitable<number>;
  /** Write every committed offset to disk (after the log is flushed). */
  persistOffsets(): Promise<void>;

  /**
   * Store a half message (transactional send): held invisible until `endTransaction` or the
   * check-back resolves it; under SYNC_FLUSH it is durable when this resolves.
   */
  sendHalf(request: SendRequest): Promise<SendResult>;
  /**
   * Commit (store the message in its topic, with the half's msgId) or roll back a half message;
   * resolves once that is stored. A half resolved already is left as it is.
   */
  endTransaction(request: EndTransactionRequest): Promise<void>;
  /** Register a producer with a transaction listener; resolves its id, unique in the group. */
  registerProducer(producer: ProducerMember): Awaitable<string>;
  unregisterProducer(group: string, producerId: string): Awaitable<void>;

  /**
   * Give failed messages back: each goes to `%RETRY%<group>` through the delay of level
   * 3 + reconsumeTimes, or after `maxReconsumeTimes` to `%DLQ%<group>`.
   */
  sendBack(request: SendBackRequest): Promise<SendBackResult>;
  /**
   * Cancel a message sent with `delayTimeLevel` or `deliverAt` before it is due; resolves true
   * once that is on disk, false when it was delivered (or cancelled) already or is no such
   * message.
   */
  cancelScheduled(msgId: string): Promise<boolean>;
  /** Move messages to `%DLQ%<group>` now; resolves those whose move failed. */
  deadLetter(group: string, clientId: string, messages: readonly MessageExt[]):
    Promise<MessageExt[]>;
  /** Forget pending redeliveries of a queue this instance gave up. */
  cancelRedeliveries(group: string, clientId: string, mq: MessageQueue): void;
  /** The message trace: one listener call or poll (only when `info.tracing`). */
  reportConsumed(report: ConsumeReport): void;

  viewMessage(msgId: unknown): Promise<MessageExt | null>;
  queryMessage(request: QueryRequest): Promise<MessageExt[]>;
  queryTrace(msgId: string): Promise<TraceEvent[]>;
  consumerProgress(group: string): Promise<QueueProgress[]>;
  browse(topic: string, queueId: number, offset: number, maxNum: number): Promise<BrowseResult>;
  stats(): Promise<StoreStats>;
  resetConsumerOffset(group: string, topic: string, to: ResetTarget):
    Promise<{ queueId: number; before: number; after: number }[]>;
  resendDeadLetters(group: string, maxNum: number): Promise<{ resent: number; remaining: number }>;
}
