/**
 * Transactional messages, the broker's side (RocketMQ's TransactionalMessageService and
 * EndTransactionProcessor): store a half message, end its transaction (commit: the message in
 * its topic and an Op record; rollback: the Op record alone), keep which halves are resolved
 * (progress.ts), register the producers that can answer a check-back, and run the check-back
 * (check-back.ts) every `checkIntervalMs`. Retention keeps every unresolved half.
 *
 * A commit's Op record is appended only once the message is: in the same turn when the message's
 * append went through at once, else after it settled. The log keeps them in that order, so a
 * crash that keeps the Op keeps the message, and a message whose append failed leaves no Op
 * behind (the half stays unresolved for the check-back). A crash between them leaves the half
 * unresolved: the check-back commits it again (the message may then be stored twice, never
 * lost).
 */
import path from 'node:path';
import { PocketMQError } from '../../errors.js';
import { limits } from '../../limits.js';
import type { TimerHandle } from '../../store/clock.js';
import type { RecordInput } from '../../store/record-codec.js';
import type { StoredRecord } from '../../store/record-decoder.js';
import type { BrokerCore } from '../core.js';
import { decodeMessageId } from '../message-id.js';
import type { EndTransactionRequest, ProducerMember, SendRequest, SendResult } from '../port.js';
import { receipt, storedBody } from '../send.js';
import { CheckBack, type Resolution } from './check-back.js';
import {
  checkMaxRecord, committedRecord, groupOf, halfRecord, isHalf, opRecord, TRANS_CHECK_MAX_TOPIC,
  TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC,
} from './half-record.js';
import { TransactionProgress } from './progress.js';

export interface TransactionOptions {
  /** A half is checked back once it was stored this long ago. */
  readonly timeoutMs: number;
  /** How often the check-back runs (and progress is written). */
  readonly checkIntervalMs: number;
  /** Checks of one half before it goes to the check-max topic. */
  readonly checkMax: number;
}

export class TransactionService {
  private readonly progress: TransactionProgress;
  private readonly checkBack: CheckBack;
  private readonly producers = new Map<string, Map<string, ProducerMember>>();
  /** Halves whose resolution is being written, by queue offset. */
  private readonly ending = new Map<number, Promise<void>>();
  /**
   * Half sends whose receipt the producer does not have yet, each with the log's end when it
   * began (the half is at or past it): the check-back leaves those halves alone.
   */
  private readonly sending = new Set<{ readonly from: number }>();
  private turn = 0;
  private timer: TimerHandle | null = null;
  private started = false;

  constructor(private readonly core: BrokerCore, private readonly options: TransactionOptions) {
    const { engine } = core;
    const { clock, logger } = core.options;
    this.progress = new TransactionProgress({ backend: engine.backend,
      configDir: path.join(engine.dir, 'config'), beforePersist: () => engine.flushed() });
    this.checkBack = new CheckBack({ engine, clock, logger, progress: this.progress,
      timeoutMs: options.timeoutMs, checkMax: options.checkMax,
      producerOf: (group) => this.producerOf(group),
      hasProducers: () => this.producers.size > 0,
      isEnding: (q) => this.ending.has(q),
      sendingFrom: () => this.sendingFrom(),
      resolve: (half, how) => this.resolve(half, how) });
  }

  /** Read the progress file (CORRUPT_DATA when damaged) and the Op records written after it. */
  load(): void {
    this.progress.load();
    this.checkBack.readOps();
  }

  /** Run the check-back every `checkIntervalMs` (an owner's store). */
  start(): void {
    this.started = true;
    this.arm();
  }

  /** Store a half message; resolves its receipt (the real topic and queue, the half's id). */
  async sendHalf(request: SendRequest): Promise<SendResult> {
    this.core.checkWritable();
    const { message, queueId } = request;
    if (message.delayTimeLevel !== undefined || message.deliverAt !== undefined) {
      throw new PocketMQError('INVALID_MESSAGE', 'a transactional message cannot carry ' +
        'delayTimeLevel or deliverAt', { property: 'delayTimeLevel', topic: message.topic });
    }
    this.core.topicForSend(message.topic);
    await this.ensureTopic(TRANS_HALF_TOPIC);
    const { body, sysFlag } = storedBody(message.body, request.compressOver);
    const input = halfRecord(message, queueId, body, sysFlag, request.producer.group,
      this.core.options.clock.now());
    // Until its receipt is back (a SYNC_FLUSH half waits for its flush) the producer has not
    // run the local transaction, and may still roll it back for a status other than SEND_OK.
    const send = { from: this.core.engine.commitLogMaxOffset };
    this.sending.add(send);
    try {
      return receipt(message.topic, queueId, await this.core.engine.putMessage(input));
    } finally {
      this.sending.delete(send);
    }
  }

  /** Commit or roll back a half message; a half resolved already is left as it is. */
  async endTransaction(request: EndTransactionRequest): Promise<void> {
    this.core.checkWritable();
    const { group, msgId, state } = request;
    if (state !== 'COMMIT_MESSAGE' && state !== 'ROLLBACK_MESSAGE') {
      throw new PocketMQError('INVALID_MESSAGE', `a transaction ends with COMMIT_MESSAGE or ` +
        `ROLLBACK_MESSAGE, not ${String(state)}`, { property: 'state' });
    }
    const half = this.halfOf(msgId);
    if (half === null || groupOf(half) !== group) {
      throw new PocketMQError('INVALID_MESSAGE', `${String(msgId)} is no half message of ` +
        `producer group ${group}`, { property: 'msgId' });
    }
    await this.resolve(half, state);
  }

  /** Register a producer that can answer check-backs; returns its id, unique in the group. */
  registerProducer(member: ProducerMember): string {
    this.core.checkWritable();
    let members = this.producers.get(member.group);
    if (members === undefined) {
      members = new Map();
      this.producers.set(member.group, members);
    }
    if (members.size >= limits.maxTransactionalProducersPerGroup) {
      throw new PocketMQError('LIMIT_EXCEEDED', `producer group ${member.group} has ` +
        `${members.size} transactional producers`,
      { limit: limits.maxTransactionalProducersPerGroup });
    }
    let id = member.instanceName;
    for (let n = 2; members.has(id); n++) id = `${member.instanceName}#${n}`;
    members.set(id, member);
    return id;
  }

  unregisterProducer(group: string, producerId: string): void {
    const members = this.producers.get(group);
    if (members === undefined || !members.delete(producerId)) return;
    if (members.size === 0) this.producers.delete(group);
  }

  /**
   * The commit-log offset of the first half unresolved as far as the progress file on disk
   * knows (retention keeps it and later ones).
   */
  oldestPending(): number {
    let oldest = Number.MAX_SAFE_INTEGER;
    this.core.engine.visitQueueEntries(TRANS_HALF_TOPIC, 0, this.progress.resolvedBaseOnDisk, 1,
      (_q, physicalOffset) => {
        oldest = physicalOffset;
        return false;
      });
    return oldest;
  }

  /** Halves checked back at least once and still unresolved; check-back calls in flight. */
  get stats(): { checking: number; inFlight: number } {
    return { checking: this.progress.checking, inFlight: this.checkBack.checking };
  }

  /** Stop the check-back, let what is in flight settle, and write progress a last time. */
  async close(): Promise<void> {
    if (this.timer !== null) this.core.options.clock.clearTimeout(this.timer);
    this.timer = null;
    this.started = false;
    await this.checkBack.close();
    await Promise.allSettled([...this.ending.values()]);
    if (!this.core.engine.isOpen) {
      // A stopped store cannot flush: the next open reads the Op records after the last write.
      this.core.options.logger.warn('pocketmq: transaction progress not written at close: ' +
        'the store stopped');
      return;
    }
    // The Op cursor moves past the Op records written since the last round.
    this.checkBack.readOps();
    await this.progress.persist();
  }

  private arm(): void {
    this.timer = this.core.options.clock.setTimeout(() => {
      this.timer = null;
      this.tick();
    }, this.options.checkIntervalMs);
  }

  private tick(): void {
    if (!this.started) return;
    this.arm();
    try {
      this.checkBack.round();
    } catch (err) {
      this.reportError('transaction check-back failed', err);
    }
    this.progress.persist().catch((err: unknown) =>
      this.reportError('transaction progress not written, will retry', err));
  }

  /** The log offset from which halves may still be on their way to their producer. */
  private sendingFrom(): number {
    let from = Number.MAX_SAFE_INTEGER;
    for (const send of this.sending) from = Math.min(from, send.from);
    return from;
  }

  /** A live producer of `group` to ask, taken in turn. */
  private producerOf(group: string): ProducerMember | undefined {
    const members = this.producers.get(group);
    if (members === undefined) return undefined;
    this.turn = (this.turn + 1) % 0x4000_0000;
    return [...members.values()][this.turn % members.size];
  }

  /** The half message `msgId` names, or null. */
  private halfOf(msgId: unknown): StoredRecord | null {
    const id = decodeMessageId(msgId);
    const engine = this.core.engine;
    if (id === null || id.offset < engine.commitLogMinOffset ||
      id.offset >= engine.commitLogMaxOffset) return null;
    const record = engine.lookMessageByOffset(id.offset);
    return record !== null && record.checksum === id.checksum && isHalf(record) ? record : null;
  }

  /**
   * Store what resolves `half` (the committed message, or the half in the check-max topic, then
   * its Op record; a rollback only the Op), in one turn, and mark it resolved.
   */
  private resolve(half: StoredRecord, how: Resolution): Promise<void> {
    const q = half.queueOffset;
    if (this.progress.resolved.has(q)) return Promise.resolve();
    let done = this.ending.get(q);
    if (done === undefined) {
      done = this.write(half, how).then(() => {
        this.progress.resolve(q);
      }).finally(() => this.ending.delete(q));
      this.ending.set(q, done);
    }
    return done;
  }

  /**
   * Append what `how` stores (the committed message, or the half for the check-max topic), then
   * the Op record, in that order and only once the first is in the log: an Op is never without
   * what it resolves. A failed Op after a stored message still resolves the half (the progress
   * file, written after a flush, then says so).
   */
  private async write(half: StoredRecord, how: Resolution): Promise<void> {
    const first = await this.resolutionRecord(half, how);
    await this.ensureTopic(TRANS_OP_HALF_TOPIC);
    const engine = this.core.engine;
    if (first === null) {
      await engine.putMessage(opRecord(half.queueOffset));
      return;
    }
    const end = engine.commitLogMaxOffset;
    const stored = engine.putMessage(first);
    // Appended in this turn already: the Op follows it into the same flush. Otherwise (behind a
    // segment roll, or refused) wait for its outcome: an error ends here, with no Op written.
    if (engine.commitLogMaxOffset === end) await stored;
    const opStored = engine.putMessage(opRecord(half.queueOffset));
    const [message, op] = await Promise.allSettled([stored, opStored]);
    if (message.status === 'rejected') throw message.reason;
    if (op.status === 'rejected') {
      this.reportError(`the Op record of the half message at queue offset ${half.queueOffset} ` +
        'was not stored (its resolution is written with the transaction progress)', op.reason);
    }
  }

  /** The record a resolution stores before its Op: null for a rollback. */
  private async resolutionRecord(half: StoredRecord, how: Resolution):
    Promise<RecordInput | null> {
    if (how === 'CHECK_MAX') {
      await this.ensureTopic(TRANS_CHECK_MAX_TOPIC);
      return checkMaxRecord(half);
    }
    if (how !== 'COMMIT_MESSAGE') return null;
    const committed = committedRecord(half);
    if (committed === null) {
      this.core.options.logger.error(`pocketmq: half message at commit-log offset ` +
        `${half.physicalOffset} names no topic: rolled back`);
      return null;
    }
    const queueNums = this.core.topicForSend(committed.topic).queueNums;
    return { ...committed, queueId: committed.queueId % queueNums };
  }

  private async ensureTopic(topic: string): Promise<void> {
    if (this.core.topics.get(topic) === undefined) await this.core.systemTopic(topic, 1);
  }

  private reportError(what: string, err: unknown): void {
    const why = err instanceof Error ? err.message : String(err);
    this.core.options.logger.error(`pocketmq: ${what}: ${why}`);
  }
}
