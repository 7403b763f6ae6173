/**
 * Options of `JetStreamStore.connect` and of its consumers: one type each, one frozen defaults
 * object, one resolver that names the bad property. The messaging options are the embedded
 * store's (`defaultTopicQueueNums`, `messageDelayLevel`, `maxMessageSize`, `logger`); its
 * storage options (flush, segments, retention, backends) belong to the NATS servers here and
 * are refused by name, so a configuration never silently means something else.
 */
import {
  allocateAveragely, allocateAveragelyByCircle, allocateConsistentHash, pushConsumerDefaults,
  storeDefaults, type AllocateStrategy, type ConsumeFromWhere, type ConsumerErrorHandler,
  type Logger, type MessageModel, type PullConsumerOptions, type PushConsumerOptions,
} from '../index.js';
import {
  checkGroup, delayLevelsMs, INSTANCE_NAME, MAX_BODY_BYTES, OptionReader,
} from './public-gaps.js';

export interface JetStreamStoreOptions {
  /** NATS server URLs (`nats://host:4222`); give every server of the cluster. */
  readonly servers: string | readonly string[];
  /**
   * Replicas of each topic's stream: 3 on a three-server cluster (a send then resolves once two
   * servers stored it), 1 on a single server. Required: a forgotten option must not quietly
   * give unreplicated topics.
   */
  readonly replicas: number;
  /** Queues of a topic created by its first send. @default 4 */
  readonly defaultTopicQueueNums?: number | undefined;
  /** Delay levels; retries wait level `3 + reconsumeTimes`. @default '1s 5s 10s 30s 1m ... 2h' */
  readonly messageDelayLevel?: string | undefined;
  /** Largest body, in bytes; the servers' `max_payload` lowers it. @default 4 MiB */
  readonly maxMessageSize?: number | undefined;
  /** Where pocketmq logs. @default util.debuglog('pocketmq') */
  readonly logger?: Logger | undefined;
  /**
   * How long a send keeps trying a retriable failure (a timeout, a leader election) with the
   * same message id, which the stream stores once. @default 15000
   */
  readonly sendTimeoutMs?: number | undefined;
  /**
   * Longest wait for one answer from the servers (a publish acknowledgement, an API call).
   * @default 5000
   */
  readonly requestTimeoutMs?: number | undefined;
  /**
   * A message a consumer was given and neither acknowledged nor kept alive is delivered again
   * after this long (a consumer that died). Live consumers keep their messages alive.
   * @default 30000
   */
  readonly ackWaitMs?: number | undefined;
  /** How often consumer instances tell their group they are alive. @default 1000 */
  readonly heartbeatIntervalMs?: number | undefined;
  /** How long a stream remembers message ids to drop resent duplicates. @default 120000 */
  readonly duplicateWindowMs?: number | undefined;
  /** More NATS connection options (user, pass, token, tls, name, ...), passed as they are. */
  readonly natsOptions?: Readonly<Record<string, unknown>> | undefined;
}

export interface ResolvedStoreOptions {
  readonly servers: string[];
  readonly replicas: number;
  readonly defaultTopicQueueNums: number;
  readonly delayLevelsMs: readonly number[];
  readonly maxMessageSize: number;
  readonly logger: Logger;
  readonly sendTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly ackWaitMs: number;
  readonly heartbeatIntervalMs: number;
  readonly duplicateWindowMs: number;
  readonly natsOptions: Readonly<Record<string, unknown>>;
}

export const jetStreamDefaults = Object.freeze({
  defaultTopicQueueNums: storeDefaults.defaultTopicQueueNums,
  messageDelayLevel: '1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h',
  maxMessageSize: MAX_BODY_BYTES,
  sendTimeoutMs: 15_000,
  requestTimeoutMs: 5000,
  ackWaitMs: 30_000,
  heartbeatIntervalMs: 1000,
  duplicateWindowMs: 120_000,
});

const STORE_KEYS = ['servers', 'replicas', 'defaultTopicQueueNums', 'messageDelayLevel',
  'maxMessageSize', 'logger', 'sendTimeoutMs', 'requestTimeoutMs', 'ackWaitMs',
  'heartbeatIntervalMs', 'duplicateWindowMs', 'natsOptions'];

/** Embedded-store options that have no meaning on JetStream, with what stands in for them. */
const EMBEDDED_ONLY: Readonly<Record<string, string>> = {
  flushDiskType: "the servers' sync settings decide when a stored message is on disk " +
    '(docs/scale-out.md)',
  syncFlushTimeoutMs: 'a send waits for the quorum at most requestTimeoutMs per attempt',
  multiProcess: 'every process connects to the servers itself',
  brokerRole: 'JetStream replicates streams itself: set replicas',
};

function serverList(value: unknown): string[] {
  const list: unknown = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 ||
    !list.every((s) => typeof s === 'string' && s !== '')) {
    throw OptionReader.bad('servers', 'must be a server URL or a non-empty array of them');
  }
  return [...list as string[]];
}

function checkLogger(value: unknown): Logger {
  if (value === undefined) return storeDefaults.logger;
  const ok = value !== null && typeof value === 'object' &&
    ['debug', 'info', 'warn', 'error'].every((m) => typeof (value as Record<string, unknown>)[m]
      === 'function');
  if (!ok) throw OptionReader.bad('logger', 'must have debug, info, warn and error methods');
  return value as Logger;
}

export function resolveStoreOptions(options: JetStreamStoreOptions): ResolvedStoreOptions {
  const r = new OptionReader(options, 'a JetStreamStore option');
  r.only(STORE_KEYS, (key) => EMBEDDED_ONLY[key] !== undefined
    ? `does not apply to JetStream: ${EMBEDDED_ONLY[key]}` : null);
  if (r.raw('replicas') === undefined) {
    throw OptionReader.bad('replicas', 'is required: 3 on a three-server cluster, 1 on a ' +
      'single server');
  }
  const natsOptions = r.raw('natsOptions') ?? {};
  if (natsOptions === null || typeof natsOptions !== 'object') {
    throw OptionReader.bad('natsOptions', 'must be an object');
  }
  const d = jetStreamDefaults;
  return {
    servers: serverList(r.raw('servers')),
    replicas: r.int('replicas', 1, 1, 5),
    defaultTopicQueueNums: r.int('defaultTopicQueueNums', d.defaultTopicQueueNums, 1, 1024),
    delayLevelsMs: delayLevelsMs(r.raw('messageDelayLevel') ?? d.messageDelayLevel),
    maxMessageSize: r.int('maxMessageSize', d.maxMessageSize, 1, MAX_BODY_BYTES),
    logger: checkLogger(r.raw('logger')),
    sendTimeoutMs: r.int('sendTimeoutMs', d.sendTimeoutMs, 100, 3_600_000),
    requestTimeoutMs: r.int('requestTimeoutMs', d.requestTimeoutMs, 100, 600_000),
    ackWaitMs: r.int('ackWaitMs', d.ackWaitMs, 1000, 3_600_000),
    heartbeatIntervalMs: r.int('heartbeatIntervalMs', d.heartbeatIntervalMs, 50, 60_000),
    duplicateWindowMs: r.int('duplicateWindowMs', d.duplicateWindowMs, 1000, 86_400_000),
    natsOptions: natsOptions as Record<string, unknown>,
  };
}

/** Consumer options both kinds share, resolved. */
export interface ResolvedConsumerOptions {
  readonly group: string;
  readonly messageModel: MessageModel;
  readonly consumeFromWhere: ConsumeFromWhere;
  readonly consumeTimestamp: number;
  readonly allocate: AllocateStrategy;
  readonly instanceName: string;
  readonly pullBatchSize: number;
  readonly onError: ConsumerErrorHandler | null;
  /** Push consumers. */
  readonly consumeThreadMax: number;
  readonly consumeMessageBatchMaxSize: number;
  readonly pullThresholdForQueue: number;
  readonly maxReconsumeTimes: number;
  readonly orderly: boolean;
  readonly suspendCurrentQueueTimeMillis: number;
  /** Pull consumers. */
  readonly autoCommit: boolean;
}

const COMMON_KEYS = ['group', 'messageModel', 'consumeFromWhere', 'consumeTimestamp',
  'allocateStrategy', 'instanceName', 'pullBatchSize', 'onError'];
const PUSH_KEYS = ['consumeThreadMax', 'consumeMessageBatchMaxSize', 'pullThresholdForQueue',
  'pullThresholdSizeForQueue', 'maxReconsumeTimes', 'orderly', 'suspendCurrentQueueTimeMillis'];

function allocation(value: unknown): AllocateStrategy {
  if (typeof value === 'function') return value as AllocateStrategy;
  if (value === undefined || value === 'AVG') return allocateAveragely;
  if (value === 'AVG_BY_CIRCLE') return allocateAveragelyByCircle;
  if (value === 'CONSISTENT_HASH') return allocateConsistentHash();
  throw OptionReader.bad('allocateStrategy',
    "must be 'AVG', 'AVG_BY_CIRCLE', 'CONSISTENT_HASH' or a function");
}

/** Push (`kind` 'push') or pull consumer options, checked once. */
export function resolveConsumerOptions(options: PushConsumerOptions | PullConsumerOptions,
  kind: 'push' | 'pull'): ResolvedConsumerOptions {
  const what = `a ${kind} consumer option`;
  const r = new OptionReader(options, what);
  r.only([...COMMON_KEYS, ...kind === 'push' ? PUSH_KEYS : ['autoCommit']]);
  const d = pushConsumerDefaults;
  const ts = r.raw('consumeTimestamp') ?? Date.now() - 30 * 60_000;
  if (!Number.isSafeInteger(ts) || (ts as number) < 0) {
    throw OptionReader.bad('consumeTimestamp', 'must be a time in ms since the epoch');
  }
  const orderly = r.bool('orderly', d.orderly);
  const max = r.int('maxReconsumeTimes', d.maxReconsumeTimes, -1, 0xffff);
  r.int('pullThresholdSizeForQueue', d.pullThresholdSizeForQueue, 1, 1024);
  return {
    group: checkGroup(r.raw('group')),
    messageModel: r.oneOf('messageModel', d.messageModel, ['CLUSTERING', 'BROADCASTING']),
    consumeFromWhere: r.oneOf('consumeFromWhere', d.consumeFromWhere,
      ['CONSUME_FROM_LAST_OFFSET', 'CONSUME_FROM_FIRST_OFFSET', 'CONSUME_FROM_TIMESTAMP']),
    consumeTimestamp: ts as number,
    allocate: allocation(r.raw('allocateStrategy')),
    instanceName: r.matching('instanceName', d.instanceName, INSTANCE_NAME),
    pullBatchSize: r.int('pullBatchSize', d.pullBatchSize, 1, 1024),
    onError: r.fn<ConsumerErrorHandler>('onError'),
    consumeThreadMax: r.int('consumeThreadMax', d.consumeThreadMax, 1, 1000),
    consumeMessageBatchMaxSize: r.int('consumeMessageBatchMaxSize',
      d.consumeMessageBatchMaxSize, 1, 1024),
    pullThresholdForQueue: r.int('pullThresholdForQueue', d.pullThresholdForQueue, 1, 65_535),
    // -1: RocketMQ's 16 for concurrent consumers, unbounded for orderly ones.
    maxReconsumeTimes: max >= 0 ? max : orderly ? Number.MAX_SAFE_INTEGER : 16,
    orderly,
    suspendCurrentQueueTimeMillis: r.int('suspendCurrentQueueTimeMillis',
      d.suspendCurrentQueueTimeMillis, 0, 3_600_000),
    autoCommit: r.bool('autoCommit', true),
  };
}
