/**
 * The write path of a StoreEngine: validate, reserve consume-queue and index space, append to
 * the commit log (waiting behind a segment roll when one is pending), wait for the group commit
 * under SYNC_FLUSH, and at the end of each turn publish staged windows and tell listeners which
 * queues grew. The store owns the lifecycle; this owns the appends.
 */
import { channel } from 'node:diagnostics_channel';
import { STORE_WRITTEN_CHANNEL } from '../channels.js';
import { PocketMQError, retriableIfTransient } from '../errors.js';
import { limits } from '../limits.js';
import type { AppendResult, CommitLog } from './commit-log.js';
import type { PutStatus } from './put-status.js';
import type { ConsumeQueue } from './consume-queue.js';
import type { ConsumeQueueTable } from './consume-queue-table.js';
import type { GroupCommitService } from './flush/group-commit.js';
import type { ReplicaWaitService } from './flush/replica-wait.js';
import type { IndexService } from './index-service.js';
import { LatencyHistogram } from './latency-histogram.js';
import { prepareRecord, type PreparedRecord, type RecordInput } from './record-codec.js';
import { WaitingAppends } from './waiting-appends.js';
import { monotonicMs } from '../builtins.js';

/**
 * A stored record's outcome: where it went, and PUT_OK, FLUSH_DISK_TIMEOUT, or (SYNC_MASTER)
 * FLUSH_SLAVE_TIMEOUT / SLAVE_NOT_AVAILABLE.
 */
export type PutResult = AppendResult;

export type ArrivalListener = (topic: string, queueId: number, maxOffset: number) => void;

/** What the writer needs of its store. */
export interface WriterHost {
  readonly maxMessageSize: number;
  /** SYNC_FLUSH appends that may wait for a flush at once; past it appends are BUSY. */
  readonly maxPendingFlushRequests: number;
  /** Throws the coded error when the store cannot take appends now. */
  checkWritable(): void;
  /** Stop the store after a broken invariant. */
  stop(err: unknown): void;
  /** The group commit under SYNC_FLUSH, else null. */
  groupCommit(): GroupCommitService | null;
  /** The wait for a follower's acknowledgement under SYNC_MASTER, else null. */
  replicaWait(): ReplicaWaitService | null;
  /** Open or closing: end-of-turn work still runs. */
  live(): boolean;
}

/** Told of a store's first records (the compile cache caches the code then: compile-cache.ts). */
const storeWritten = channel(STORE_WRITTEN_CHANNEL);

export class StoreWriter {
  private publishScheduled = false;
  /** The first records went in (and STORE_WRITTEN_CHANNEL was told). */
  private written = false;
  /** Appends waiting for the log to unblock (a roll or a growth pending), in order. */
  private readonly waiting = new WaitingAppends({
    whenUnblocked: () => this.commitLog.whenUnblocked(),
    tryAppend: (recs) => {
      this.host.checkWritable();
      return this.appendNow(recs);
    },
  });
  /** Appends resolved at once in this turn, and the results held for its end. */
  private turnAppends = 0;
  private deferred: ((err: unknown) => void)[] = [];
  private readonly arrivals = new Set<ArrivalListener>();
  /** Records and bytes appended since open. */
  appendedMessages = 0;
  appendedBytes = 0;
  /** Call-to-result time of every APPEND_SAMPLE_EVERY-th append (timing each costs more). */
  readonly appendLatency = new LatencyHistogram();
  private sampleCountdown = APPEND_SAMPLE_EVERY;

  constructor(
    private readonly host: WriterHost,
    private readonly commitLog: CommitLog,
    private readonly queues: ConsumeQueueTable,
    private readonly index: IndexService,
  ) {}

  /** Append one record; with SYNC_FLUSH it resolves once the record is durable (or timed out). */
  putMessage(input: RecordInput): Promise<PutResult> {
    const result = this.put(input);
    return result instanceof Promise ? result : Promise.resolve(result);
  }

  /**
   * `putMessage` without a promise where none is needed: the result itself when the append
   * settled at once (ASYNC_FLUSH, the common case), else its promise. Errors come as a rejected
   * promise either way.
   */
  put(input: RecordInput): PutResult | Promise<PutResult> {
    return this.putMapped(input, same);
  }

  /**
   * `put` handing out `map(result, input)` instead of the result (the broker's receipt): under
   * SYNC_FLUSH the flush waiter resolves with it, one promise per append instead of two.
   */
  putMapped<R>(input: RecordInput, map: (r: PutResult, input: RecordInput) => R):
    R | Promise<R> {
    if (--this.sampleCountdown > 0) return this.putOne(input, undefined, map);
    this.sampleCountdown = APPEND_SAMPLE_EVERY;
    const startedMs = monotonicMs();
    const result = this.putOne(input, undefined, map);
    if (!(result instanceof Promise)) {
      this.appendLatency.record((monotonicMs() - startedMs) * 1000);
      return result;
    }
    return this.timed(result, startedMs);
  }

  private timed<T>(promise: Promise<T>, startedMs = monotonicMs()): Promise<T> {
    promise.then(() => this.appendLatency.record((monotonicMs() - startedMs) * 1000),
      () => undefined);
    return promise;
  }

  /**
   * Append one record without waiting for a flush, whatever the flush mode: it resolves once
   * the record is in the log (at the end of the turn at the latest; under SYNC_MASTER once a
   * follower has it or the wait timed out), and rejects only when it is not in the log. For
   * records whose writer makes them durable itself before relying on them.
   */
  putUnconfirmed(input: RecordInput): PutResult | Promise<PutResult> {
    return this.putOne(input, undefined, same, false);
  }

  /**
   * `put` of a record prepared (and encoded: `PreparedRecord.encoded`) elsewhere, by a producer
   * thread that shares the owner's write window.
   */
  putPrepared(rec: PreparedRecord): PutResult | Promise<PutResult> {
    return this.putOne(rec.input, rec, same);
  }

  private putOne<R>(input: RecordInput, prepared: PreparedRecord | undefined,
    map: (r: PutResult, input: RecordInput) => R, confirm = true): R | Promise<R> {
    let appending = false;
    try {
      const host = this.host;
      host.checkWritable();
      const rec = prepared ?? prepareRecord(input, host.maxMessageSize);
      const group = confirm ? host.groupCommit() : null;
      const replica = host.replicaWait();
      // ASYNC_FLUSH without a follower to wait for has no flush backlog to check, and an
      // unconfirmed append adds no waiter.
      if (confirm && (group !== null || replica !== null)) this.checkFlushBacklog(group, replica);
      const log = this.commitLog;
      const open = !this.mustWait();
      if (open) this.reserveQueue(rec.input, 1, indexEntries(rec.input));
      appending = true;
      const result = open ? log.appendOne(rec) : null;
      appending = false;
      if (result === null) {
        this.schedulePublish(); // a sealed segment's blank marker may be staged
        return this.waiting.add([rec], (r) =>
          this.complete(r, confirm).then((done) => map(done[0]!, rec.input)));
      }
      this.appendedMessages += 1;
      this.appendedBytes += result.size;
      this.schedulePublish();
      if (replica !== null) {
        return this.complete([result], confirm).then((r) => map(r[0]!, rec.input));
      }
      if (group === null) return this.settleInTurn(1, map(result, rec.input));
      return group.waitForResult(result.physicalOffset + result.size, result, map, rec.input);
    } catch (err) {
      return Promise.reject(this.failed(err, appending));
    }
  }

  /**
   * The error an append hands out: a broken invariant, or a failure once the append began,
   * stops the store (see stopsStore); a transient I/O error before it began (creating a file
   * the append needs) left nothing stored and is retriable.
   */
  private failed(err: unknown, appending: boolean): unknown {
    if (!stopsStore(err, appending)) return retriableIfTransient(err);
    this.host.stop(err);
    return err;
  }

  /** The log is blocked, or appends wait for it: a new one goes behind them. */
  private mustWait(): boolean {
    return this.commitLog.blocked || this.waiting.any;
  }

  /**
   * SYNC_FLUSH flow control: with maxPendingFlushRequests appends already waiting for their
   * flush, refuse this one before anything is stored (BUSY, retriable), as RocketMQ's broker
   * answers a busy store with a retriable SYSTEM_BUSY.
   */
  private checkFlushBacklog(group = this.host.groupCommit(),
    replica = this.host.replicaWait()): void {
    const pending = Math.max(group?.pending ?? 0, replica?.pending ?? 0);
    const max = this.host.maxPendingFlushRequests;
    if (pending < max) return;
    throw new PocketMQError('BUSY', `${pending} appends wait for their flush or a follower, as ` +
      `many as option maxPendingFlushRequests allows (${max}); nothing was stored, try again`,
    { limit: max, actual: pending, property: 'maxPendingFlushRequests' });
  }

  /** Append records of one topic and queue atomically: consecutive offsets, all or nothing. */
  putMessages(inputs: readonly RecordInput[]): Promise<PutResult[]> {
    try {
      this.host.checkWritable();
      if (!Array.isArray(inputs) || inputs.length === 0 || inputs.length > limits.maxBatchRecords) {
        const got = Array.isArray(inputs) ? `${inputs.length} messages` : typeof inputs;
        throw new PocketMQError('INVALID_MESSAGE', `a batch holds 1 to ` +
          `${limits.maxBatchRecords} messages (limits.maxBatchRecords), got ${got}`,
        { limit: limits.maxBatchRecords, property: 'messages',
          ...(Array.isArray(inputs) ? { actual: inputs.length } : {}) });
      }
      const recs = inputs.map((input) => prepareRecord(input, this.host.maxMessageSize));
      this.checkFlushBacklog();
      const { topic, queueId } = recs[0]!.input;
      if (recs.some((r) => r.input.topic !== topic || r.input.queueId !== queueId)) {
        throw new PocketMQError('INVALID_MESSAGE', 'a batch goes to one topic and one queue');
      }
      const bytes = recs.reduce((sum, r) => sum + r.size, 0);
      if (bytes > limits.maxBatchBytes) {
        throw new PocketMQError('MESSAGE_TOO_LARGE', `a batch of ${bytes} bytes (records ` +
          `encoded); at most ${limits.maxBatchBytes} (16 MiB, limits.maxBatchBytes)`,
          { limit: limits.maxBatchBytes, actual: bytes, topic });
      }
      const done = this.complete(this.appendPrepared(recs));
      this.sampleCountdown -= recs.length;
      if (this.sampleCountdown > 0) return done;
      this.sampleCountdown = APPEND_SAMPLE_EVERY;
      return this.timed(done);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private appendPrepared(recs: PreparedRecord[]): AppendResult[] | Promise<AppendResult[]> {
    const results = this.mustWait() ? null : this.appendNow(recs);
    return results ?? this.waiting.add(recs, same);
  }

  /** Append `recs` now, or null when the log is blocked (a roll pending; nothing appended). */
  private appendNow(recs: PreparedRecord[]): AppendResult[] | null {
    const log = this.commitLog;
    if (log.blocked) return null;
    let results: AppendResult[] | null;
    let appending = false;
    try {
      let entries = 0;
      for (const r of recs) entries += indexEntries(r.input);
      this.reserveQueue(recs[0]!.input, recs.length, entries);
      appending = true;
      results = log.append(recs);
    } catch (err) {
      throw this.failed(err, appending);
    }
    if (results === null) {
      this.schedulePublish(); // the sealed segment's blank marker is staged: publish it this turn
      return null;
    }
    this.appendedMessages += results.length;
    for (const r of results) this.appendedBytes += r.size;
    this.schedulePublish();
    return results;
  }

  /**
   * Allocate the consume-queue and index files these appends need first: a full disk must
   * refuse them before their records are in the log, not at dispatch.
   */
  private reserveQueue(input: RecordInput, count: number, indexEntries: number): void {
    const { topic, queueId } = input;
    // The queue first (opened on first use, it tells the commit log where it continues).
    const queue = this.queues.obtain(topic, queueId);
    queue.reserve(this.commitLog.nextQueueOffset(topic, queueId), count);
    if (indexEntries > 0) this.index.reserve(indexEntries);
  }

  /** Results once their waits end; an unconfirmed append waits for no flush. */
  private complete(appended: AppendResult[] | Promise<AppendResult[]>, confirm = true):
    Promise<PutResult[]> {
    if (appended instanceof Promise) return appended.then((r) => this.complete(r, confirm));
    const group = confirm ? this.host.groupCommit() : null;
    const replica = this.host.replicaWait();
    if (replica !== null) return this.waitReplicated(group, replica, appended);
    if (group === null) return this.resolveInTurn(appended.length, appended);
    return this.waitFlush(group, appended);
  }

  /**
   * SYNC_MASTER: the flush (under SYNC_FLUSH) and a follower's acknowledgement, waited for at
   * the same time (the follower gets the records when the turn publishes, as the fdatasync
   * starts). A flush failure status wins over a replication one.
   */
  private waitReplicated(group: GroupCommitService | null, replica: ReplicaWaitService,
    results: AppendResult[]): Promise<PutResult[]> {
    const last = results[results.length - 1]!;
    const acked = { status: 'PUT_OK' as PutStatus };
    const flushed = group === null ? this.resolveInTurn(results.length, results)
      : this.waitFlush(group, results);
    return Promise.all([flushed, replica.waitForResult(last.physicalOffset + last.size, acked)])
      .then(() => {
        if (acked.status !== 'PUT_OK') {
          for (const r of results) if (r.status === 'PUT_OK') r.status = acked.status;
        }
        return results;
      });
  }

  private waitFlush(group: GroupCommitService, results: AppendResult[]): Promise<PutResult[]> {
    const last = results[results.length - 1]!;
    const timedOut = (): PutResult[] => {
      for (const r of results) r.status = 'FLUSH_DISK_TIMEOUT';
      return results;
    };
    // The records are stored either way; a refused wait reports them as not confirmed durable.
    if (group.pending >= this.host.maxPendingFlushRequests) return Promise.resolve(timedOut());
    return group.waitFor(last.physicalOffset + last.size)
      .then((status) => (status === 'PUT_OK' ? results : timedOut()));
  }

  /**
   * An ASYNC_FLUSH append's result: at once, unless this turn already took
   * `limits.appendsPerTurn` appends; then at the end of the turn. A producer awaiting each send
   * would otherwise chain appends in microtasks forever and starve the event loop: no I/O
   * completion (the next segment's allocation), timer (flushes) or arrival would run.
   */
  private resolveInTurn<T>(appends: number, result: T): Promise<T> {
    const settled = this.settleInTurn(appends, result);
    return settled instanceof Promise ? settled : Promise.resolve(settled);
  }

  /** `resolveInTurn`, with the result itself when it is handed out at once. */
  private settleInTurn<T>(appends: number, result: T): T | Promise<T> {
    this.turnAppends += appends;
    if (this.turnAppends <= limits.appendsPerTurn) return result;
    return new Promise<T>((resolve, reject) => this.deferred.push((err) => {
      if (err === null) resolve(result);
      else reject(err);
    }));
  }

  /**
   * A follower appended replicated records (ReplicaLog): publish and tell listeners at the end
   * of the turn, as for appends.
   */
  replicated(messages: number, bytes: number): void {
    this.appendedMessages += messages;
    this.appendedBytes += bytes;
    this.schedulePublish();
  }

  /** End of the turn: publish staged windows and tell listeners which queues grew. */
  private schedulePublish(): void {
    if (this.publishScheduled) return;
    this.publishScheduled = true;
    if (!this.written) {
      this.written = true;
      if (storeWritten.hasSubscribers) storeWritten.publish(undefined);
    }
    setImmediate(() => {
      this.publishScheduled = false;
      this.turnAppends = 0;
      const deferred = this.deferred;
      this.deferred = [];
      let failure: unknown = null;
      if (this.host.live()) {
        try {
          this.commitLog.publish();
          this.host.groupCommit()?.flushNow();
          const touched = this.queues.publish();
          if (this.arrivals.size > 0) this.notify(touched);
        } catch (err) {
          // A staged window that cannot be written (ENOSPC, EIO): this turn's appends are not
          // in the file. Stop the store (reopen recovers) instead of an uncaught exception.
          failure = err;
          this.host.stop(err);
        }
      }
      for (const settle of deferred) settle(failure);
    });
  }

  private notify(touched: ConsumeQueue[]): void {
    for (const queue of touched) {
      for (const listener of this.arrivals) listener(queue.topic, queue.queueId, queue.maxOffset);
    }
  }

  /** Be told when new records reach a queue, once published; returns an unsubscribe. */
  onMessageArrived(listener: ArrivalListener): () => void {
    this.arrivals.add(listener);
    return () => this.arrivals.delete(listener);
  }
}

/**
 * A broken invariant stops the store; so does any error out of the commit log's append but a
 * record refused before it was written (MESSAGE_TOO_LARGE): the log may hold the record while
 * its ConsumeQueue entry or a window write failed, and only a reopen (recovery) can tell.
 */
function stopsStore(err: unknown, appending: boolean): boolean {
  const code = err instanceof PocketMQError ? err.code : null;
  return code === 'ASSERTION_FAILED' || (appending && code !== 'MESSAGE_TOO_LARGE');
}

/** One append in this many is timed for `stats()`. */
const APPEND_SAMPLE_EVERY = 16;

/** At most how many index entries a record makes: its keys and its unique key. */
function indexEntries(input: RecordInput): number {
  return (input.keys?.length ?? 0) + (input.uniqKey === undefined ? 0 : 1);
}

function same<T>(value: T): T {
  return value;
}
