/**
 * `pocketmq/storage`: the log itself, for applications and tools that want to read or write
 * the commit log, consume queues and index files below the messaging API. Their use does not go
 * through a broker: keep them away from a store another process (or a MessageStore in this one)
 * has open for writing.
 * @module pocketmq/storage
 */
export { CommitLog } from './store/commit-log.js';
export type { AppendResult, DispatchRequest } from './store/commit-log.js';
export { ConsumeQueue, CQ_ENTRY_BYTES } from './store/consume-queue.js';
export type { ConsumeQueueEntry } from './store/consume-queue.js';
export { IndexFile } from './store/index-file.js';
export { MappedFile } from './store/mapped-file.js';
export { FORMAT_VERSION } from './store/record-codec.js';
export type { RecordInput } from './store/record-codec.js';
export type { StoredRecord } from './store/record-decoder.js';
