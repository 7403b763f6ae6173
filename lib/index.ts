/**
 * pocketmq's public surface: every export applications use is named here. The storage classes
 * live in `pocketmq/storage` too; engine internals, backends and test helpers are in
 * `pocketmq/internal`, which has no stability promise.
 * @module pocketmq
 */
export { PocketMQError, CorruptDataError, DiskFullError, AssertionError } from './errors.js';
export type { ErrorCode, ErrorFields } from './errors.js';
export { limits } from './limits.js';
export { channels } from './channels.js';
export type {
  ChannelName, ChannelMessages, ChannelQueue, FlushMessage, RecoverMessage, RetentionMessage,
  RebalanceMessage, RetryMessage, DlqMessage, TraceWriteMessage,
} from './channels.js';
export { MessageStore, MAX_QUERY_RESULTS } from './message-store.js';
export type {
  MessageStoreOptions, QueryOptions, BrowseOptions, StoreStats, BrokerRole, ReplicationOptions,
} from './message-store.js';
export type {
  BrowseResult, ResetTarget, TopicStats, GroupStats, QueueProgress, FetchStatus, TopicConfig,
  MessageModel, MessageQueue, SendResult, SendStatus, Message, MessageExt, MessageBody,
  PropertyValue, SelectorType,
} from './broker/port.js';
export { MessageSelector } from './broker/port.js';
export { verifyStore } from './store/verify.js';
export type { VerifyReport, VerifyProblem, VerifyOptions } from './store/verify.js';
export type { ReadOnlyStoreOptions } from './store/read-only.js';
export type { EngineStats } from './store/store-stats.js';
export type { LatencySummary } from './store/latency-histogram.js';
export { Producer, producerDefaults } from './client/producer.js';
export type { SendOptions, ProducerOptions, QueueSelector } from './client/producer.js';
export type {
  LocalTransactionState, TransactionListener, TransactionMessage, TransactionSendResult,
} from './client/transaction-listener.js';
export { TRANS_CHECK_MAX_TOPIC } from './broker/transaction/half-record.js';
export { PushConsumer } from './client/push-consumer.js';
export { PullConsumer } from './client/pull-consumer.js';
export { TRACE_TOPIC } from './broker/trace/trace-events.js';
export type {
  TraceEvent, TraceEventType, PubTraceEvent, SubTraceEvent, DlqTraceEvent, SubTraceResult,
} from './broker/trace/trace-events.js';
export type { ConsumeContext, ConsumeListener, ConsumeResult } from './client/push-consumer.js';
export { pushConsumerDefaults } from './client/consumer-options.js';
export type {
  PushConsumerOptions, PullConsumerOptions, ConsumeFromWhere, AllocateStrategyName,
  ConsumerErrorContext, ConsumerErrorHandler,
} from './client/consumer-options.js';
export {
  allocateAveragely, allocateAveragelyByCircle, allocateConsistentHash,
} from './client/allocate.js';
export type { AllocateStrategy } from './client/allocate.js';
export { storeDefaults } from './store/options.js';
export type {
  StoreOptions, FlushDiskType, Logger, RecoveryProgress,
} from './store/options.js';
export type { Clock } from './store/clock.js';
export { CommitLog, ConsumeQueue, IndexFile, MappedFile } from './storage.js';
