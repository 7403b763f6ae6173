/**
 * The check-back (RocketMQ's TransactionalMessageCheckService): each round reads the Op records
 * written since the last one, then walks the half queue from the first unresolved half and asks
 * a live producer of each half's group about those stored at least `timeoutMs` ago. An answer
 * of COMMIT_MESSAGE or ROLLBACK_MESSAGE ends the transaction; UNKNOWN (or a throw) leaves it for
 * a later round. After `checkMax` checks a half goes to the check-max topic instead.
 *
 * A round does bounded work: it looks at most `limits.transactionScanEntries` entries and reads
 * at most `limits.transactionChecksPerRound` halves, going on from where it stopped in the next
 * round until it reaches the halves too young to check, then starting over from the first
 * unresolved one. Calls run in the background: a round does not wait for answers, and a half
 * whose call is in flight is not asked again meanwhile. A half whose send has not returned to
 * its producer yet (a SYNC_FLUSH half waiting for its flush, however long that took on the
 * clock) is not checked: the producer has not run the local transaction, and rolls the half
 * back itself when it was not stored SEND_OK.
 */
import { limits } from '../../limits.js';
import type { Clock } from '../../store/clock.js';
import type { Logger } from '../../store/options.js';
import type { StoredRecord } from '../../store/record-decoder.js';
import type { StoreEngine } from '../../store/store-engine.js';
import type { LocalTransactionState, ProducerMember } from '../port.js';
import {
  groupOf, halfView, opHalfOffset, TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC,
} from './half-record.js';
import type { TransactionProgress } from './progress.js';

/** How a half is resolved: its transaction's end, or out of checks. */
export type Resolution = 'COMMIT_MESSAGE' | 'ROLLBACK_MESSAGE' | 'CHECK_MAX';

export interface CheckHost {
  readonly engine: StoreEngine;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly progress: TransactionProgress;
  /** A half is checked once it was stored this long ago. */
  readonly timeoutMs: number;
  /** Checks of one half before it goes to the check-max topic. */
  readonly checkMax: number;
  /** A live producer of `group` to ask, or undefined. */
  producerOf(group: string): ProducerMember | undefined;
  /** Whether any producer with a listener is registered. */
  hasProducers(): boolean;
  /** Whether the half at this queue offset is being resolved right now. */
  isEnding(queueOffset: number): boolean;
  /**
   * The commit-log offset from which halves may not have reached their producer yet (their
   * send has not returned): those are not checked.
   */
  sendingFrom(): number;
  /** Resolve a half: store what its resolution stores and its Op record. */
  resolve(half: StoredRecord, how: Resolution): Promise<void>;
}

export class CheckBack {
  /** Halves whose check (or move to the check-max topic) is in flight. */
  private readonly inFlight = new Map<number, Promise<void>>();
  /** Where the next round goes on walking the half queue; 0: from the first unresolved. */
  private scanFrom = 0;
  private closed = false;

  constructor(private readonly host: CheckHost) {}

  /** Checks in flight now. */
  get checking(): number {
    return this.inFlight.size;
  }

  /** Read Op records from the progress's Op offset to the end of the Op queue. */
  readOps(): void {
    const { engine, progress } = this.host;
    let at = progress.opOffset;
    for (;;) {
      const got = engine.visitMessages(TRANS_OP_HALF_TOPIC, 0, at, 1024, (c) => {
        const halfOffset = opHalfOffset(c.body);
        if (halfOffset !== null) progress.resolve(halfOffset);
      });
      if (got.nextBeginOffset === at) break;
      at = got.nextBeginOffset;
    }
    progress.opOffset = at;
  }

  /** One round: take in new Op records, then ask about the halves due for a check. */
  round(): void {
    if (this.closed) return;
    this.readOps();
    if (!this.host.hasProducers()) return;
    for (const [queueOffset, physicalOffset] of this.dueHalves()) {
      const half = this.host.engine.lookMessageByOffset(physicalOffset);
      if (half === null || half.queueOffset !== queueOffset) {
        this.host.logger.error(`pocketmq: half message at commit-log offset ${physicalOffset} ` +
          'cannot be read: not checked');
        continue;
      }
      const producer = this.host.producerOf(groupOf(half) ?? '');
      if (producer !== undefined) this.launch(half, producer);
    }
  }

  /** Stop checking; resolves once the calls and moves in flight settled. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inFlight.values()]);
  }

  /** [queue offset, commit-log offset] of halves old enough to check, and not busy. */
  private dueHalves(): [number, number][] {
    const { engine, progress, clock } = this.host;
    const resolved = progress.resolved;
    const room = limits.transactionChecksPerRound - this.inFlight.size;
    const due: [number, number][] = [];
    if (room <= 0) return due;
    const checkedBefore = clock.now() - this.host.timeoutMs;
    const sendingFrom = this.host.sendingFrom();
    let young = false;
    const from = Math.max(this.scanFrom, resolved.base);
    const next = engine.visitQueueEntries(TRANS_HALF_TOPIC, 0, from,
      limits.transactionScanEntries, (q, physicalOffset, _size, storedAt) => {
        // A half whose send is still out counts as young, and so do those after it.
        if (storedAt > checkedBefore || physicalOffset >= sendingFrom) {
          young = true;
          return false;
        }
        if (!resolved.has(q) && !this.inFlight.has(q) && !this.host.isEnding(q)) {
          due.push([q, physicalOffset]);
        }
        return due.length < room;
      });
    const end = engine.getMaxOffsetInQueue(TRANS_HALF_TOPIC, 0);
    this.scanFrom = young || next >= end ? 0 : next + (due.length >= room ? 1 : 0);
    return due;
  }

  private launch(half: StoredRecord, producer: ProducerMember): void {
    const q = half.queueOffset;
    const { progress, checkMax } = this.host;
    let work: Promise<void>;
    if (progress.checks(q) >= checkMax) {
      this.host.logger.warn(`pocketmq: half message ${halfView(half).msgId} of producer group ` +
        `${producer.group} is still unknown after ${checkMax} checks (transactionCheckMax): ` +
        'moved to RMQ_SYS_TRANS_CHECK_MAX_TIME_TOPIC');
      work = this.host.resolve(half, 'CHECK_MAX');
    } else {
      progress.countCheck(q);
      work = this.check(half, producer);
    }
    const tracked = work.catch((err: unknown) => {
      const why = err instanceof Error ? err.message : String(err);
      this.host.logger.error(`pocketmq: transaction check-back of the half message at queue ` +
        `offset ${q} failed, it is checked again later: ${why}`);
    }).finally(() => this.inFlight.delete(q));
    this.inFlight.set(q, tracked);
  }

  private async check(half: StoredRecord, producer: ProducerMember): Promise<void> {
    let state: LocalTransactionState = 'UNKNOWN';
    try {
      state = await producer.checkLocalTransaction(halfView(half));
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      this.host.logger.warn(`pocketmq: checkLocalTransaction of producer group ` +
        `${producer.group} failed (counted as UNKNOWN): ${why}`);
    }
    if (this.closed || (state !== 'COMMIT_MESSAGE' && state !== 'ROLLBACK_MESSAGE')) return;
    await this.host.resolve(half, state);
  }
}
