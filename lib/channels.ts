/**
 * Every `node:diagnostics_channel` channel pocketmq publishes on, and the shape of each
 * message. A module publishes only when `channel.hasSubscribers`, so a channel nobody listens to
 * costs one boolean check. This file imports nothing: every layer may use it.
 *
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * import { channels, type RetryMessage } from 'pocketmq';
 * subscribe(channels.retry, (m) => metrics.retries.inc((m as RetryMessage).group));
 * ```
 * See docs/observability.md.
 */

export const channels = Object.freeze({
  /** Each commit-log fdatasync that moved the flushed offset: FlushMessage. */
  flush: 'pocketmq:flush',
  /** Recovery at open, once the commit log is checked (not for an empty log): RecoverMessage. */
  recover: 'pocketmq:recover',
  /** Each retention pass (every cleanResourceIntervalMs, and runRetention): RetentionMessage. */
  retention: 'pocketmq:retention',
  /** A consumer instance gained or gave up queues: RebalanceMessage. */
  rebalance: 'pocketmq:rebalance',
  /** A message scheduled for redelivery after RECONSUME_LATER or a throw: RetryMessage. */
  retry: 'pocketmq:retry',
  /** A message moved to its group's dead-letter queue: DlqMessage. */
  dlq: 'pocketmq:dlq',
  /** Message trace (store option `trace`): each batch written or lost: TraceWriteMessage. */
  trace: 'pocketmq:trace',
} as const);

/**
 * Not one of the public channels: a store has opened in this process ({ dir, readOnly }).
 * The compile cache (compile-cache.ts) listens, to cache the code an open runs.
 */
export const STORE_OPENED_CHANNEL = 'pocketmq:store-opened';

/**
 * Not one of the public channels: a store opened in this process took its first records (no
 * message). The compile cache (compile-cache.ts) listens, to cache the code an open and its
 * sends run.
 */
export const STORE_WRITTEN_CHANNEL = 'pocketmq:store-written';

export type ChannelName = (typeof channels)[keyof typeof channels];

/** A queue, as rebalance messages name it (the same shape as MessageQueue). */
export interface ChannelQueue {
  readonly topic: string;
  readonly queueId: number;
}

/** `pocketmq:flush` (lib/store/commit-log.ts). */
export interface FlushMessage {
  readonly log: 'commitlog';
  /** The flushed offset before and after this flush. */
  readonly fromOffset: number;
  readonly toOffset: number;
  /** How long the fdatasync/msync run took. */
  readonly durationMs: number;
}

/** `pocketmq:recover` (lib/store/recovery.ts): the RecoveryReport of an open. */
export interface RecoverMessage {
  /** Where the check started (a segment start) and where the log now ends. */
  readonly startOffset: number;
  readonly endOffset: number;
  readonly checkedBytes: number;
  /** Records found valid, and records dispatched again to ConsumeQueues and the index. */
  readonly records: number;
  readonly redispatched: number;
  /** True when a torn or garbled tail was cut off at `endOffset`. */
  readonly tornTail: boolean;
  /** Why the check stopped: 'end', 'zeros', 'empty', or what was wrong with the tail. */
  readonly reason: string;
}

/** `pocketmq:retention` (lib/store/retention.ts), after every pass. */
export interface RetentionMessage {
  /** Commit-log segments this pass deleted (oldest first). */
  readonly deletedSegments: number;
  /** The commit log's first offset after the pass. */
  readonly minOffset: number;
  /** Disk use of the data directory's filesystem, 0..1. */
  readonly usedRatio: number;
  /** True while appends fail with DISK_FULL. */
  readonly diskFull: boolean;
  /** True when this pass switched `diskFull` on or off. */
  readonly diskFullChanged: boolean;
}

/** `pocketmq:rebalance` (lib/client/rebalance.ts), when an instance's queues changed. */
export interface RebalanceMessage {
  readonly group: string;
  /** The consumer instance (its instance name, made unique in the group). */
  readonly clientId: string;
  readonly messageModel: 'CLUSTERING' | 'BROADCASTING';
  readonly added: readonly ChannelQueue[];
  readonly removed: readonly ChannelQueue[];
  /** What the instance owns after the change. */
  readonly owned: readonly ChannelQueue[];
}

/** `pocketmq:retry` (lib/client/consume-service.ts). */
export interface RetryMessage {
  readonly group: string;
  readonly clientId: string;
  readonly topic: string;
  readonly msgId: string;
  readonly queueId: number;
  readonly queueOffset: number;
  /** The count the redelivery carries (1 for the first redelivery). */
  readonly reconsumeTimes: number;
  /** How long until the redelivery (orderly: how long the queue is suspended). */
  readonly delayMs: number;
  readonly orderly: boolean;
}

/** `pocketmq:dlq` (lib/broker/broker.ts), once the message is in `%DLQ%<group>`. */
export interface DlqMessage {
  readonly group: string;
  /** The topic the message was consumed from. */
  readonly topic: string;
  readonly msgId: string;
  /** Redeliveries it had before it was given up. */
  readonly reconsumeTimes: number;
}

/** `pocketmq:trace` (lib/broker/trace/tracer.ts), after each write of buffered trace events. */
export interface TraceWriteMessage {
  /** Trace records appended to RMQ_SYS_TRACE_TOPIC, and the events they hold. */
  readonly records: number;
  readonly events: number;
  /** Events lost since the last message: the buffer was full, or the write below failed. */
  readonly dropped: number;
  /** Events lost since the store opened. */
  readonly droppedTotal: number;
  /** Why the write failed (DISK_FULL, STORE_STOPPED...), or null. */
  readonly error: unknown;
}

/** Each channel's message type, by channel name. */
export interface ChannelMessages {
  'pocketmq:flush': FlushMessage;
  'pocketmq:recover': RecoverMessage;
  'pocketmq:retention': RetentionMessage;
  'pocketmq:rebalance': RebalanceMessage;
  'pocketmq:retry': RetryMessage;
  'pocketmq:dlq': DlqMessage;
  'pocketmq:trace': TraceWriteMessage;
}
