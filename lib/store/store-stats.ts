/**
 * EngineStats: what `StoreEngine.stats()` reports about the files and the work since open.
 * Counting files walks the store's directories (a few readdirs), so it is for tools and
 * dashboards, not for every message.
 */
import path from 'node:path';
import type { CommitLog } from './commit-log.js';
import type { ConsumeQueueTable } from './consume-queue-table.js';
import type { IndexService } from './index-service.js';
import type { IoBackend } from './io/backend.js';
import type { LatencySummary } from './latency-histogram.js';
import type { StoreWriter } from './store-writer.js';

export interface EngineStats {
  readonly backend: string;
  readonly flushDiskType: string;
  readonly readOnly: boolean;
  readonly commitLog: {
    readonly minOffset: number;
    readonly maxOffset: number;
    readonly flushedOffset: number;
    /** Appended bytes not yet fdatasync'ed. */
    readonly pendingFlushBytes: number;
    readonly segments: number;
    readonly segmentSizeBytes: number;
  };
  readonly consumeQueues: { readonly queues: number; readonly files: number };
  readonly index: { readonly files: number };
  readonly disk: {
    /** Bytes the store's files take (allocated lengths). */
    readonly storeBytes: number;
    readonly totalBytes: number;
    readonly freeBytes: number;
    /** Share of the filesystem in use, as retention judges it. */
    readonly usedRatio: number;
  };
  /** Since this open. */
  readonly appended: { readonly messages: number; readonly bytes: number };
  /** Call to result of a sample of appends (with SYNC_FLUSH this includes the group commit). */
  readonly appendLatency: LatencySummary;
  /** Commit-log fdatasyncs. */
  readonly flushLatency: LatencySummary;
}

export interface StatsSources {
  readonly dir: string;
  readonly backend: IoBackend;
  readonly flushDiskType: string;
  readonly readOnly: boolean;
  readonly commitLog: CommitLog;
  readonly queues: ConsumeQueueTable;
  readonly index: IndexService;
  readonly writer: StoreWriter;
}

export function collectEngineStats(s: StatsSources): EngineStats {
  const log = s.commitLog;
  const usage = s.backend.diskUsage(s.dir);
  const queues = s.queues.all();
  return {
    backend: s.backend.kind,
    flushDiskType: s.flushDiskType,
    readOnly: s.readOnly,
    commitLog: {
      minOffset: log.minOffset, maxOffset: log.maxOffset, flushedOffset: log.flushedOffset,
      pendingFlushBytes: Math.max(0, log.maxOffset - log.flushedOffset),
      segments: log.queue.files.length, segmentSizeBytes: log.queue.fileSizeBytes,
    },
    consumeQueues: { queues: queues.length, files: queues.reduce((n, q) => n + q.fileCount, 0) },
    index: { files: s.index.fileCount },
    disk: {
      storeBytes: storeBytes(s.backend, s.dir), totalBytes: usage.totalBytes,
      freeBytes: usage.freeBytes,
      usedRatio: usage.totalBytes === 0 ? 0 : 1 - usage.freeBytes / usage.totalBytes,
    },
    appended: { messages: s.writer.appendedMessages, bytes: s.writer.appendedBytes },
    appendLatency: s.writer.appendLatency.summary(),
    flushLatency: log.flushLatency.summary(),
  };
}

/** Sum of the sizes of the store's files, walked by their layout (docs/format.md). */
function storeBytes(backend: IoBackend, dir: string): number {
  const filesIn = (d: string): number => backend.readdir(d)
    .reduce((n, name) => n + Math.max(0, backend.fileSize(path.join(d, name))), 0);
  let total = ['checkpoint', 'abort', 'lock']
    .reduce((n, name) => n + Math.max(0, backend.fileSize(path.join(dir, name))), 0);
  total += filesIn(path.join(dir, 'commitlog')) + filesIn(path.join(dir, 'index')) +
    filesIn(path.join(dir, 'config'));
  const cq = path.join(dir, 'consumequeue');
  for (const topic of backend.readdir(cq)) {
    for (const queueId of backend.readdir(path.join(cq, topic))) {
      total += filesIn(path.join(cq, topic, queueId));
    }
  }
  return total;
}
