/**
 * Consumer options, for push and pull consumers: one type each, one frozen defaults object
 * (RocketMQ's DefaultMQPushConsumer defaults), one resolver that names the bad property.
 */
import { PocketMQError } from '../errors.js';
import type { MessageModel } from '../broker/consumer-manager.js';
import { checkGroupName } from '../broker/names.js';
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
}

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
const INSTANCE_PATTERN = /^[A-Za-z0-9_.:#-]{1,64}$/;

function bad(property: string, message: string): PocketMQError {
  return new PocketMQError('INVALID_OPTION', `option ${property} ${message}`, { property });
}

function int(o: Record<string, unknown>, key: string, fallback: number, min: number,
  max: number): number {
  const v = o[key] ?? fallback;
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) {
    throw bad(key, `must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v as number;
}

function oneOf<T extends string>(o: Record<string, unknown>, key: string, fallback: T,
  values: readonly T[]): T {
  const v = o[key] ?? fallback;
  if (!values.includes(v as T)) throw bad(key, `must be one of ${values.join(', ')}`);
  return v as T;
}

function strategy(value: unknown): AllocateStrategy {
  if (typeof value === 'function') return value as AllocateStrategy;
  switch (value ?? 'AVG') {
    case 'AVG': return allocateAveragely;
    case 'AVG_BY_CIRCLE': return allocateAveragelyByCircle;
    case 'CONSISTENT_HASH': return allocateConsistentHash();
    default: throw bad('allocateStrategy',
      "must be 'AVG', 'AVG_BY_CIRCLE', 'CONSISTENT_HASH' or a function");
  }
}

function checkKnown(o: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) throw bad(key, 'is not a consumer option');
  }
}

const COMMON_KEYS = ['group', 'messageModel', 'consumeFromWhere', 'consumeTimestamp',
  'allocateStrategy', 'instanceName', 'pullBatchSize'] as const;

function resolveCommon(o: Record<string, unknown>, nowMs: number): ResolvedCommon {
  const instanceName = o.instanceName ?? pushConsumerDefaults.instanceName;
  if (typeof instanceName !== 'string' || !INSTANCE_PATTERN.test(instanceName)) {
    throw bad('instanceName', `must match ${INSTANCE_PATTERN.source}`);
  }
  const ts = o.consumeTimestamp ?? nowMs - 30 * 60_000;
  if (!Number.isSafeInteger(ts) || (ts as number) < 0) {
    throw bad('consumeTimestamp', 'must be a time in ms since the epoch');
  }
  return {
    group: checkGroupName(o.group),
    messageModel: oneOf(o, 'messageModel', pushConsumerDefaults.messageModel,
      ['CLUSTERING', 'BROADCASTING']),
    consumeFromWhere: oneOf(o, 'consumeFromWhere', pushConsumerDefaults.consumeFromWhere,
      ['CONSUME_FROM_LAST_OFFSET', 'CONSUME_FROM_FIRST_OFFSET', 'CONSUME_FROM_TIMESTAMP']),
    consumeTimestamp: ts as number,
    allocate: strategy(o.allocateStrategy),
    instanceName,
    pullBatchSize: int(o, 'pullBatchSize', pushConsumerDefaults.pullBatchSize, 1, 1024),
  };
}

function asRecord(options: unknown): Record<string, unknown> {
  if (options === null || typeof options !== 'object') throw bad('options', 'must be an object');
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}

export function resolvePushOptions(options: PushConsumerOptions,
  nowMs: number): ResolvedPushOptions {
  const o = asRecord(options);
  checkKnown(o, [...COMMON_KEYS, 'consumeThreadMax', 'consumeMessageBatchMaxSize',
    'pullThresholdForQueue', 'pullThresholdSizeForQueue', 'maxReconsumeTimes', 'orderly',
    'suspendCurrentQueueTimeMillis']);
  const d = pushConsumerDefaults;
  const orderly = o.orderly ?? d.orderly;
  if (typeof orderly !== 'boolean') throw bad('orderly', 'must be a boolean');
  const max = int(o, 'maxReconsumeTimes', d.maxReconsumeTimes, -1, 0xffff);
  return {
    ...resolveCommon(o, nowMs),
    consumeThreadMax: int(o, 'consumeThreadMax', d.consumeThreadMax, 1, 1000),
    consumeMessageBatchMaxSize: int(o, 'consumeMessageBatchMaxSize',
      d.consumeMessageBatchMaxSize, 1, 1024),
    pullThresholdForQueue: int(o, 'pullThresholdForQueue', d.pullThresholdForQueue, 1, 65_535),
    pullThresholdSizeBytes: int(o, 'pullThresholdSizeForQueue', d.pullThresholdSizeForQueue,
      1, 1024) * 2 ** 20,
    maxReconsumeTimes: max >= 0 ? max
      : orderly ? ORDERLY_MAX_RECONSUME_TIMES : DEFAULT_MAX_RECONSUME_TIMES,
    orderly,
    suspendCurrentQueueTimeMillis: int(o, 'suspendCurrentQueueTimeMillis',
      d.suspendCurrentQueueTimeMillis, 0, 3_600_000),
  };
}

export function resolvePullOptions(options: PullConsumerOptions,
  nowMs: number): ResolvedPullOptions {
  const o = asRecord(options);
  checkKnown(o, [...COMMON_KEYS, 'autoCommit']);
  const autoCommit = o.autoCommit ?? true;
  if (typeof autoCommit !== 'boolean') throw bad('autoCommit', 'must be a boolean');
  return { ...resolveCommon(o, nowMs), autoCommit };
}
