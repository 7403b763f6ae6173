/**
 * Consumer options, for push and pull consumers: one type each, one frozen defaults object
 * (RocketMQ's DefaultMQPushConsumer defaults), one resolver that names the bad property.
 */
import {
  checkGroupName, INSTANCE_NAME_PATTERN, type MessageExt, type MessageModel,
} from '../broker/port.js';
import {
  boolOption, checkKnownOptions, intOption, invalidOption, oneOfOption, optionsRecord,
  patternOption,
} from '../validate.js';
import {
  allocateAveragely, allocateAveragelyByCircle, allocateConsistentHash, type AllocateStrategy,
} from './allocate.js';

export type ConsumeFromWhere =
  | 'CONSUME_FROM_LAST_OFFSET' | 'CONSUME_FROM_FIRST_OFFSET' | 'CONSUME_FROM_TIMESTAMP';

export type AllocateStrategyName = 'AVG' | 'AVG_BY_CIRCLE' | 'CONSISTENT_HASH';

interface CommonOptions {
  /** Consumer group, `^[A-Za-z0-9_-]{1,120}$`. */
  readonly group: string;
  /** @default 'CLUSTERING' */
  readonly messageModel?: MessageModel | undefined;
  /** Where a group with no committed offset starts. @default 'CONSUME_FROM_LAST_OFFSET' */
  readonly consumeFromWhere?: ConsumeFromWhere | undefined;
  /** For CONSUME_FROM_TIMESTAMP, ms since the epoch. @default 30 minutes ago */
  readonly consumeTimestamp?: number | undefined;
  /** How queues are split among the group's instances. @default 'AVG' */
  readonly allocateStrategy?: AllocateStrategyName | AllocateStrategy | undefined;
  /** Names this instance; broadcasting offsets are kept per instance name. @default 'DEFAULT' */
  readonly instanceName?: string | undefined;
  /** Messages fetched from a queue at once. @default 32 */
  readonly pullBatchSize?: number | undefined;
  /**
   * Called with each error the consumer meets while it runs (a listener that threw, a failed
   * fetch or commit), with the error as thrown and what it concerns. The consumer also emits it
   * as an `'error'` event. With neither, the first one is printed as a process warning.
   */
  readonly onError?: ConsumerErrorHandler | undefined;
}

/** What a consumer error concerns. */
export interface ConsumerErrorContext {
  readonly group: string;
  readonly clientId: string;
  /** What the consumer was doing: 'listener', 'fetch', 'commit offset', 'rebalance', ... */
  readonly during: string;
  /** The messages of the listener call that failed, when it was one. */
  readonly messages?: readonly MessageExt[] | undefined;
}

export type ConsumerErrorHandler = (error: unknown, context: ConsumerErrorContext) => void;

export interface PushConsumerOptions extends CommonOptions {
  /** Listener calls in flight at once. @default 20 */
  readonly consumeThreadMax?: number | undefined;
  /** Messages per listener call. @default 1 */
  readonly consumeMessageBatchMaxSize?: number | undefined;
  /** Fetched, unacknowledged messages held per queue before fetching pauses. @default 1000 */
  readonly pullThresholdForQueue?: number | undefined;
  /** The same, in MiB of stored bytes. @default 100 */
  readonly pullThresholdSizeForQueue?: number | undefined;
  /** Redeliveries before a message goes to `%DLQ%<group>`; -1: 16, or unbounded if orderly. */
  readonly maxReconsumeTimes?: number | undefined;
  /** Consume each queue one message (or batch) after another, in order. @default false */
  readonly orderly?: boolean | undefined;
  /** Orderly: how long a queue pauses after RECONSUME_LATER. @default 1000 */
  readonly suspendCurrentQueueTimeMillis?: number | undefined;
}

export interface PullConsumerOptions extends CommonOptions {
  /** Commit what a poll returned at the next poll and at shutdown. @default true */
  readonly autoCommit?: boolean | undefined;
}

export interface ResolvedCommon {
  readonly group: string;
  readonly messageModel: MessageModel;
  readonly consumeFromWhere: ConsumeFromWhere;
  readonly consumeTimestamp: number;
  readonly allocate: AllocateStrategy;
  readonly instanceName: string;
  readonly pullBatchSize: number;
  readonly onError: ConsumerErrorHandler | null;
}

export interface ResolvedPushOptions extends ResolvedCommon {
  readonly consumeThreadMax: number;
  readonly consumeMessageBatchMaxSize: number;
  readonly pullThresholdForQueue: number;
  readonly pullThresholdSizeBytes: number;
  readonly maxReconsumeTimes: number;
  readonly orderly: boolean;
  readonly suspendCurrentQueueTimeMillis: number;
}

export interface ResolvedPullOptions extends ResolvedCommon {
  readonly autoCommit: boolean;
}

export const pushConsumerDefaults = Object.freeze({
  messageModel: 'CLUSTERING' as MessageModel,
  consumeFromWhere: 'CONSUME_FROM_LAST_OFFSET' as ConsumeFromWhere,
  instanceName: 'DEFAULT',
  pullBatchSize: 32,
  consumeThreadMax: 20,
  consumeMessageBatchMaxSize: 1,
  pullThresholdForQueue: 1000,
  pullThresholdSizeForQueue: 100,
  maxReconsumeTimes: -1,
  orderly: false,
  suspendCurrentQueueTimeMillis: 1000,
});

/** Concurrent consumers' redeliveries when maxReconsumeTimes is -1 (RocketMQ's 16). */
const DEFAULT_MAX_RECONSUME_TIMES = 16;
const ORDERLY_MAX_RECONSUME_TIMES = Number.MAX_SAFE_INTEGER;
function strategy(value: unknown): AllocateStrategy {
  if (typeof value === 'function') return value as AllocateStrategy;
  switch (value ?? 'AVG') {
    case 'AVG': return allocateAveragely;
    case 'AVG_BY_CIRCLE': return allocateAveragelyByCircle;
    case 'CONSISTENT_HASH': return allocateConsistentHash();
    default: throw invalidOption('allocateStrategy',
      "must be 'AVG', 'AVG_BY_CIRCLE', 'CONSISTENT_HASH' or a function");
  }
}

const COMMON_KEYS = ['group', 'messageModel', 'consumeFromWhere', 'consumeTimestamp',
  'allocateStrategy', 'instanceName', 'pullBatchSize', 'onError'] as const;

function resolveCommon(o: Record<string, unknown>, nowMs: number): ResolvedCommon {
  const ts = o.consumeTimestamp ?? nowMs - 30 * 60_000;
  if (!Number.isSafeInteger(ts) || (ts as number) < 0) {
    throw invalidOption('consumeTimestamp', 'must be a time in ms since the epoch');
  }
  const onError = o.onError ?? null;
  if (onError !== null && typeof onError !== 'function') {
    throw invalidOption('onError', 'must be a function');
  }
  return {
    group: checkGroupName(o.group),
    messageModel: oneOfOption(o, 'messageModel', pushConsumerDefaults.messageModel,
      ['CLUSTERING', 'BROADCASTING']),
    consumeFromWhere: oneOfOption(o, 'consumeFromWhere', pushConsumerDefaults.consumeFromWhere,
      ['CONSUME_FROM_LAST_OFFSET', 'CONSUME_FROM_FIRST_OFFSET', 'CONSUME_FROM_TIMESTAMP']),
    consumeTimestamp: ts as number,
    allocate: strategy(o.allocateStrategy),
    instanceName: patternOption(o, 'instanceName', pushConsumerDefaults.instanceName,
      INSTANCE_NAME_PATTERN),
    pullBatchSize: intOption(o, 'pullBatchSize', pushConsumerDefaults.pullBatchSize, 1, 1024),
    onError: onError as ConsumerErrorHandler | null,
  };
}

export function resolvePushOptions(options: PushConsumerOptions,
  nowMs: number): ResolvedPushOptions {
  const o = optionsRecord(options);
  checkKnownOptions(o, [...COMMON_KEYS, 'consumeThreadMax', 'consumeMessageBatchMaxSize',
    'pullThresholdForQueue', 'pullThresholdSizeForQueue', 'maxReconsumeTimes', 'orderly',
    'suspendCurrentQueueTimeMillis'], 'a push consumer option');
  const d = pushConsumerDefaults;
  const orderly = boolOption(o, 'orderly', d.orderly);
  const max = intOption(o, 'maxReconsumeTimes', d.maxReconsumeTimes, -1, 0xffff);
  return {
    ...resolveCommon(o, nowMs),
    consumeThreadMax: intOption(o, 'consumeThreadMax', d.consumeThreadMax, 1, 1000),
    consumeMessageBatchMaxSize: intOption(o, 'consumeMessageBatchMaxSize',
      d.consumeMessageBatchMaxSize, 1, 1024),
    pullThresholdForQueue: intOption(o, 'pullThresholdForQueue', d.pullThresholdForQueue, 1,
      65_535),
    pullThresholdSizeBytes: intOption(o, 'pullThresholdSizeForQueue', d.pullThresholdSizeForQueue,
      1, 1024) * 2 ** 20,
    maxReconsumeTimes: max >= 0 ? max
      : orderly ? ORDERLY_MAX_RECONSUME_TIMES : DEFAULT_MAX_RECONSUME_TIMES,
    orderly,
    suspendCurrentQueueTimeMillis: intOption(o, 'suspendCurrentQueueTimeMillis',
      d.suspendCurrentQueueTimeMillis, 0, 3_600_000),
  };
}

export function resolvePullOptions(options: PullConsumerOptions,
  nowMs: number): ResolvedPullOptions {
  const o = optionsRecord(options);
  checkKnownOptions(o, [...COMMON_KEYS, 'autoCommit'], 'a pull consumer option');
  return { ...resolveCommon(o, nowMs), autoCommit: boolOption(o, 'autoCommit', true) };
}
