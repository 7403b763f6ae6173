/**
 * `pocketmq/internal`: the engine under the messaging API, its I/O backends and test helpers,
 * for pocketmq's own tools, benchmarks and tests. UNSTABLE: anything here may change or go in
 * any release, without notice. Applications use `pocketmq` (and `pocketmq/storage`).
 */
export { storeInternals } from './message-store.js';
export type { StoreInternals } from './message-store.js';
export { StoreEngine } from './store/store-engine.js';
export type { PutResult, PutStatus, ArrivalListener } from './store/store-engine.js';
export type {
  GetMessageResult, GetMessageStatus, ReadFilter, VisitResult,
} from './store/store-reader.js';
export { RecordCursor } from './store/record-cursor.js';
export type { ResolvedStoreOptions } from './store/options.js';
export { IndexService } from './store/index-service.js';
export { MappedFileQueue } from './store/mapped-file-queue.js';
export type { RecoveryReport } from './store/recovery.js';
export { systemClock, ManualClock } from './store/clock.js';
export { FileBackend } from './store/io/file-backend.js';
export { MmapBackend } from './store/io/mmap-backend.js';
export { OverlayBackend } from './store/io/overlay-backend.js';
export type {
  IoBackend, BackendFile, BackendKind, OpenOptions, DiskUsage,
} from './store/io/backend.js';
export { pushConsumerInternals } from './client/push-consumer.js';
export type { PushConsumerInternals } from './client/push-consumer.js';
export { Broker } from './broker/broker.js';
export type { BrokerPort } from './broker/port.js';
export { REPLICATION_TRANSPORT, tcpTransport } from './replication/transport.js';
export type {
  ReplicationListener, ReplicationSeams, ReplicationTransport,
} from './replication/transport.js';
