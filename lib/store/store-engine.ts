/**
 * StoreEngine: one data directory (docs/format.md) and everything in it: lock, abort marker,
 * checkpoint, commit log, consume queues and index (store-io.ts), recovery (Logics), flushes
 * and retention (StoreTimers).
 * It knows bytes, offsets and queues; topics' meaning, consumers and groups live above it.
 * Its read API is EngineReads (engine-reads.ts).
 *
 * Lifecycle: opening -> open -> closing -> closed, or -> stopped when an invariant broke or a
 * flush failed (then every write fails with STORE_STOPPED until the store is reopened).
 */
import { channel } from 'node:diagnostics_channel';
import path from 'node:path';
import { STORE_OPENED_CHANNEL } from '../channels.js';
import { PocketMQError, runAll } from '../errors.js';
import { GroupCommitService } from './flush/group-commit.js';
import { ReplicaWaitService } from './flush/replica-wait.js';
import type { IoBackend } from './io/backend.js';
import { EngineReads } from './engine-reads.js';
import { loadNative } from './io/native.js';
import { Logics } from './logics.js';
import { acquireLock, type StoreLock } from './lock.js';
import {
  geometryForOpen, prepareReadOnly, type ReadOnlyStoreOptions,
} from './read-only.js';
import {
  checkStoreDir, resolveStoreOptions, type ResolvedStoreOptions, type StoreOptions,
} from './options.js';
import type { PreparedRecord, RecordInput } from './record-codec.js';
import type { RecoveryReport } from './recovery.js';
import { chooseBackend, storageOf } from './store-io.js';
import { collectEngineStats, type EngineStats } from './store-stats.js';
import { StoreWriter, type ArrivalListener, type PutResult } from './store-writer.js';
import { ReplicaLog } from './replica-log.js';
import { StoreTimers } from './store-timers.js';

export type { PutStatus } from './put-status.js';

export type { ArrivalListener, PutResult } from './store-writer.js';

type Status = 'opening' | 'open' | 'closing' | 'closed' | 'stopped';

/** Told of each open (the compile cache caches the open's code then: compile-cache.ts). */
const storeOpened = channel(STORE_OPENED_CHANNEL);

/** How an engine is opened (beyond the store options). */
export interface EngineOpenOptions {
  /**
   * A layer above registers a retention hold (`holdRetention`) once it has read what it keeps:
   * until then retention deletes nothing, and the open's retention pass waits for the hold.
   */
  readonly retentionHeld?: boolean;
}

export class StoreEngine extends EngineReads {
  private status: Status = 'opening';
  private stopReason: unknown = null;
  private closing: Promise<void> | null = null;
  private readonly logics: Logics;
  private readonly writer: StoreWriter;
  private groupCommit: GroupCommitService | null = null;
  private replicaWait: ReplicaWaitService | null = null;
  /** A follower of a master (lib/replication): appends are NOT_MASTER, replicas arrive. */
  private following = false;
  /** The commit log as replication sees it (lib/replication). */
  readonly replica: ReplicaLog;
  private readonly timers: StoreTimers;
  private lock: StoreLock | null = null;
  /** Records at or after this offset are kept; null while a hold is awaited (keep all). */
  private retentionHold: (() => number) | null = () => Number.MAX_SAFE_INTEGER;
  /** What recovery found at open. */
  recovery: RecoveryReport | null = null;

  private constructor(readonly dir: string, readonly options: ResolvedStoreOptions,
    readonly backend: IoBackend, readonly readOnly = false) {
    super(...storageOf(dir, options, backend));
    const o = options;
    this.logics = new Logics(this.queues, this.index, this.commitLog, o.logger);
    this.writer = new StoreWriter({
      maxMessageSize: o.maxMessageSize,
      maxPendingFlushRequests: o.maxPendingFlushRequests,
      checkWritable: () => this.checkWritable(),
      stop: (err) => this.stop(err),
      groupCommit: () => this.groupCommit,
      replicaWait: () => this.replicaWait,
      live: () => this.status === 'open' || this.status === 'closing',
    }, this.commitLog, this.queues, this.index);
    this.replica = new ReplicaLog({ commitLog: this.commitLog, queues: this.queues,
      index: this.index, logics: this.logics, appended: (n, b) => this.writer.replicated(n, b),
      checkFollowing: () => {
        this.checkOpen();
        if (!this.following) throw new PocketMQError('INVALID_STATE', 'not a follower');
        if (this.status === 'stopped') this.checkWritable();
      } });
    this.timers = new StoreTimers(o, dir, backend, this.commitLog, this.logics, {
      onError: (err) => this.stop(err),
      heldFrom: () => (this.retentionHold === null ? 0 : this.retentionHold()),
    });
  }

  /** Open (creating if missing) the store in `dir`, recovering whatever the last run left. */
  static async open(dir: string, options: StoreOptions = {}, how: EngineOpenOptions = {}):
    Promise<StoreEngine> {
    checkStoreDir(dir);
    const first = resolveStoreOptions(options);
    const backend = chooseBackend(first.backend, first.logger,
      loadNative(first.addonLoader ?? undefined));
    backend.mkdir(dir);
    // An existing store keeps the segment and ConsumeQueue file sizes it was made with.
    const geometry = geometryForOpen(backend, path.resolve(dir), options);
    const resolved = Object.keys(geometry).length === 0 ? first
      : resolveStoreOptions({ ...options, ...geometry });
    const store = new StoreEngine(path.resolve(dir), resolved, backend);
    if (how.retentionHeld === true) store.retentionHold = null;
    try {
      await store.start();
    } catch (err) {
      await store.abandon().catch(() => undefined);
      // The open's own failure is the one to report; the lock is released either way.
      throw err;
    }
    return store;
  }

  /**
   * Open a store another process may own, changing nothing and taking no lock: the engine runs
   * its usual open and recovery over a copy-on-write view of the files (OverlayBackend), so it
   * sees every record the log holds up to its first torn or unwritten frame, and ConsumeQueues
   * and index consistent with them. A snapshot: records appended later are seen by a new open.
   * Every write fails with STORE_READ_ONLY.
   */
  static async openReadOnly(dir: string, options: ReadOnlyStoreOptions = {}):
    Promise<StoreEngine> {
    for (let attempt = 1; ; attempt++) {
      const prepared = prepareReadOnly(dir, options);
      const store = new StoreEngine(path.resolve(dir), prepared.options, prepared.backend, true);
      try {
        await store.start();
        return store;
      } catch (err) {
        store.releaseFiles();
        // The owner's retention deleted a file between listing and opening it: look again.
        const gone = (err as { cause?: { code?: unknown } } | null)?.cause?.code === 'ENOENT';
        if (!gone || attempt >= 3) throw err;
      }
    }
  }

  private async start(): Promise<void> {
    const backend = this.backend;
    if (!this.readOnly) this.lock = await acquireLock(this.dir, this.options);
    const abortPath = path.join(this.dir, 'abort');
    const crashed = backend.exists(abortPath);
    this.logics.loadCheckpoint(backend, this.dir);
    this.commitLog.queue.load();
    this.recovery = await this.logics.recoverAtOpen({
      crashed, late: !this.readOnly, onProgress: this.options.onRecoveryProgress,
      // From here the open changes files, and what it writes may reach only the page cache:
      // if it fails, the next open must take that for a crash too.
      changing: () => {
        if (!this.readOnly) backend.writeFile(abortPath, Buffer.from(`${process.pid}\n`));
      },
    });
    const how = this.readOnly ? 'read-only' : crashed ? 'after a crash' : 'clean';
    this.options.logger.debug(`pocketmq: opened ${this.dir} (${how})`);
    if (storeOpened.hasSubscribers) storeOpened.publish({ dir: this.dir, readOnly: this.readOnly });
    if (this.readOnly) {
      this.queues.publish();
      this.status = 'open';
      return;
    }
    // A new store's first segment is made by its first append, small (it grows as it fills).
    await this.logics.flush(false, true);
    this.queues.publish();
    const sync = this.options.flushDiskType === 'SYNC_FLUSH';
    if (sync) {
      this.groupCommit = new GroupCommitService(this.commitLog, this.options.clock,
        this.options.syncFlushTimeoutMs);
    }
    // With a hold awaited, the first pass runs when it is registered (holdRetention).
    if (this.retentionHold !== null) this.timers.retention.run();
    this.timers.start(!sync);
    this.status = 'open';
  }

  /**
   * A failed open releases what it took; the lock last, once no growth of a segment that the
   * recovery started is still writing.
   */
  private async abandon(): Promise<void> {
    this.timers.stop();
    try {
      this.closeFiles();
    } finally {
      await this.commitLog.queue.allocationsSettled();
      this.lock?.release();
    }
  }

  /** Close every file and unlock, each step even when an earlier one throws (a dead disk). */
  private releaseFiles(): void {
    runAll([() => this.closeFiles(), () => this.lock?.release()]);
  }

  private closeFiles(): void {
    this.status = 'closed';
    runAll([() => this.commitLog.close(), () => this.queues.close(), () => this.index.close()]);
  }

  private checkWritable(): void {
    if (this.readOnly && this.status === 'open') {
      throw new PocketMQError('STORE_READ_ONLY', `${this.dir} is open read-only`);
    }
    if (this.following && this.status === 'open') {
      throw new PocketMQError('NOT_MASTER', `${this.dir} follows a master: send to the master, ` +
        'or promote() this store');
    }
    if (this.status === 'open') {
      if (this.timers.retention.diskFull) {
        throw new PocketMQError('DISK_FULL',
          `disk use is above ${this.options.diskFullRatio}; appends resume when space is freed`);
      }
      return;
    }
    if (this.status === 'stopped') {
      throw new PocketMQError('STORE_STOPPED', 'the store stopped after an error; reopen it',
        { cause: this.stopReason });
    }
    throw new PocketMQError('STORE_CLOSED', 'the store is closed');
  }

  /** Append one record; with SYNC_FLUSH it resolves once the record is durable (or timed out). */
  putMessage(input: RecordInput): Promise<PutResult> {
    return this.writer.putMessage(input);
  }

  /**
   * `putMessage` without a promise where none is needed: the result itself when the append
   * settled at once (ASYNC_FLUSH within a turn's budget), else its promise.
   */
  put(input: RecordInput): PutResult | Promise<PutResult> {
    return this.writer.put(input);
  }

  /**
   * Append one record without waiting for a flush (SYNC_FLUSH): it resolves once the record is
   * in the log (and, under SYNC_MASTER, a follower's wait ended) and rejects only when it is
   * not. For records whose writer makes them durable itself before relying on them
   * (`flushed()`), and must not store them twice because a flush failed.
   */
  putUnconfirmed(input: RecordInput): PutResult | Promise<PutResult> {
    return this.writer.putUnconfirmed(input);
  }

  /** `put` handing out `map(result, input)`: the broker's receipt without a promise more. */
  putMapped<R>(input: RecordInput, map: (r: PutResult, input: RecordInput) => R):
    R | Promise<R> {
    return this.writer.putMapped(input, map);
  }

  /** `put` of a record prepared and encoded by another thread (lib/remote/write-window.ts). */
  putPrepared(rec: PreparedRecord): PutResult | Promise<PutResult> {
    return this.writer.putPrepared(rec);
  }

  /** Append records of one topic and queue atomically: consecutive offsets, all or nothing. */
  putMessages(inputs: readonly RecordInput[]): Promise<PutResult[]> {
    return this.writer.putMessages(inputs);
  }

  /** Be told when new records reach a queue, once published; returns an unsubscribe. */
  onMessageArrived(listener: ArrivalListener): () => void {
    return this.writer.onMessageArrived(listener);
  }

  /**
   * Follow a master (true: appends throw NOT_MASTER; replicated records arrive through
   * `replica`) or stop following (false: a promoted follower takes appends).
   */
  follow(on: boolean): void {
    this.checkOpen();
    this.following = on;
  }

  get isFollowing(): boolean {
    return this.following;
  }

  /**
   * SYNC_MASTER: every append also waits for a follower's acknowledgement (reported through
   * the returned service), at most syncFlushTimeoutMs.
   */
  waitForReplicas(maxGapBytes: number): ReplicaWaitService {
    this.checkOpen();
    this.replicaWait ??= new ReplicaWaitService(this.options.clock,
      this.options.syncFlushTimeoutMs, maxGapBytes);
    return this.replicaWait;
  }

  /** Resolves when everything appended so far is durable. */
  async flushed(): Promise<void> {
    this.checkOpen();
    if (this.readOnly) return;
    await this.commitLog.flush();
  }

  private stop(err: unknown): void {
    if (this.status === 'closed' || this.status === 'stopped') return;
    this.stopReason = err;
    this.status = 'stopped';
    // Retention deletes files from what memory says: not once memory and files may disagree.
    this.timers.retention.stop();
    const message = err instanceof Error ? err.message : String(err);
    this.options.logger.error(`pocketmq: store stopped: ${message}`);
  }

  protected override checkOpen(): void {
    if (this.status === 'closed' || this.status === 'opening') {
      throw new PocketMQError('STORE_CLOSED', 'the store is closed');
    }
  }

  /**
   * Keep every commit-log segment at or after the offset `hold()` returns, whatever its age:
   * records a layer above still needs (scheduled messages not yet delivered). One hold per store.
   * On an engine opened with `retentionHeld`, the open's retention pass runs now.
   */
  holdRetention(hold: () => number): void {
    const awaited = this.retentionHold === null;
    this.retentionHold = hold;
    if (awaited && this.status === 'open') this.timers.retention.run();
  }

  /** Files, disk use, appends since open and their latencies (see EngineStats). */
  stats(): EngineStats {
    this.checkOpen();
    return collectEngineStats({ dir: this.dir, backend: this.backend, readOnly: this.readOnly,
      flushDiskType: this.options.flushDiskType, commitLog: this.commitLog, queues: this.queues,
      index: this.index, writer: this.writer });
  }

  /** Make ConsumeQueues and index durable, then run retention now (also every interval). */
  async runRetention(): Promise<{ deletedSegments: number; usedRatio: number; diskFull: boolean }> {
    this.checkOpen();
    if (this.readOnly) {
      throw new PocketMQError('STORE_READ_ONLY', `${this.dir} is open read-only`);
    }
    if (this.status === 'stopped') this.checkWritable(); // STORE_STOPPED
    // Segments go only once the checkpoint on disk has their ConsumeQueue and index entries.
    await this.timers.logicsFlusher.runFlush();
    return this.timers.retention.run();
  }

  get backendKind(): string { return this.backend.kind; }
  get isOpen(): boolean { return this.status === 'open'; }

  /** Flush everything, write a clean checkpoint, remove `abort`, unlock. Idempotent. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closing = this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const wasStopped = this.status === 'stopped';
    this.status = 'closing';
    this.timers.stop();
    try {
      if (this.readOnly) return;
      await this.commitLog.whenUnblocked().catch(() => undefined);
      // A periodic flush may be in flight: the final one must follow it, not race it.
      await this.timers.idle();
      if (!wasStopped) {
        // The bytes past the data must be zeros on disk before `abort` goes.
        await this.commitLog.queue.settleTail();
        await this.commitLog.flush();
        await this.logics.flush(true);
        this.groupCommit?.drain(this.commitLog.flushedOffset);
        this.backend.unlink(path.join(this.dir, 'abort'));
      }
    } finally {
      this.replicaWait?.drain();
      try {
        this.closeFiles();
      } finally {
        // A segment allocated ahead may still be getting its zeros: the directory is not ours
        // to hand over (unlock), nor the caller's to remove, until that write has ended.
        await this.commitLog.queue.allocationsSettled();
        this.lock?.release();
      }
    }
  }
}
