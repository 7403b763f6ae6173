/**
 * pocketmq's public surface: every export is named here (STYLE habit 4).
 */
export { PocketMQError, CorruptDataError, DiskFullError, AssertionError } from './errors.js';
export type { ErrorCode, ErrorFields } from './errors.js';
export { limits } from './limits.js';
export { channels } from './channels.js';
export type {
  ChannelName, ChannelMessages, ChannelQueue, FlushMessage, RecoverMessage, RetentionMessage,
  RebalanceMessage, RetryMessage, DlqMessage, TraceWriteMessage,
} from './channels.js';
export { MessageStore, MAX_QUERY_RESULTS } from './client/message-store.js';
export type {
  MessageStoreOptions, QueryOptions, BrowseOptions, StoreStats,
} from './client/message-store.js';
export type {
  BrowseResult, ResetTarget, TopicStats, GroupStats,
} from './broker/admin.js';
export { verifyStore } from './store/verify.js';
export type { VerifyReport, VerifyProblem, VerifyOptions } from './store/verify.js';
export type { ReadOnlyStoreOptions } from './store/read-only.js';
export type { EngineStats } from './store/store-stats.js';
export type { LatencySummary } from './store/latency-histogram.js';
export { OverlayBackend } from './store/io/overlay-backend.js';
export { Producer, producerDefaults } from './client/producer.js';
export type {
  SendResult, SendStatus, SendOptions, ProducerOptions, QueueSelector,
} from './client/producer.js';
export { PushConsumer } from './client/push-consumer.js';
export { TRACE_TOPIC } from './client/trace.js';
export type {
  TraceEvent, TraceEventType, PubTraceEvent, SubTraceEvent, DlqTraceEvent, SubTraceResult,
} from './client/trace.js';
export type { ConsumeContext, ConsumeListener, ConsumeResult } from './client/push-consumer.js';
export { PullConsumer } from './client/pull-consumer.js';
export { pushConsumerDefaults } from './client/consumer-options.js';
export type {
  PushConsumerOptions, PullConsumerOptions, ConsumeFromWhere, AllocateStrategyName,
} from './client/consumer-options.js';
export {
  allocateAveragely, allocateAveragelyByCircle, allocateConsistentHash,
} from './client/allocate.js';
export type { AllocateStrategy, MessageQueue } from './client/allocate.js';
export { MessageSelector } from './broker/filter/message-selector.js';
export type { Message, MessageExt, MessageBody, PropertyValue } from './broker/message.js';
export type { QueueProgress, FetchStatus } from './broker/broker.js';
export type { TopicConfig } from './broker/topic-config.js';
export type { MessageModel } from './broker/consumer-manager.js';
export { StoreEngine } from './store/store-engine.js';
export type { PutResult, PutStatus, ArrivalListener } from './store/store-engine.js';
export type {
  GetMessageResult, GetMessageStatus, ReadFilter, VisitResult,
} from './store/store-reader.js';
export { RecordCursor } from './store/record-cursor.js';
export { storeDefaults } from './store/options.js';
export type {
  StoreOptions, FlushDiskType, Logger, RecoveryProgress, ResolvedStoreOptions,
} from './store/options.js';
export { CommitLog } from './store/commit-log.js';
export type { AppendResult, DispatchRequest } from './store/commit-log.js';
export { ConsumeQueue, CQ_ENTRY_BYTES } from './store/consume-queue.js';
export type { ConsumeQueueEntry } from './store/consume-queue.js';
export { IndexFile } from './store/index-file.js';
export { IndexService } from './store/index-service.js';
export { MappedFile } from './store/mapped-file.js';
export { MappedFileQueue } from './store/mapped-file-queue.js';
export { FORMAT_VERSION } from './store/record-codec.js';
export type { RecordInput } from './store/record-codec.js';
export type { StoredRecord } from './store/record-decoder.js';
export type { RecoveryReport } from './store/recovery.js';
export { systemClock, ManualClock } from './store/clock.js';
export type { Clock } from './store/clock.js';
export { FileBackend } from './store/io/file-backend.js';
export { MmapBackend } from './store/io/mmap-backend.js';
export type {
  IoBackend, BackendFile, BackendKind, OpenOptions, DiskUsage,
} from './store/io/backend.js';
