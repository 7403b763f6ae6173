/**
 * The oracle's model of messages delivered later: delayed sends (`delayTimeLevel`), scheduled
 * sends (`deliverAt`, some cancelled with `cancelScheduled`) and transactional sends
 * (`sendMessageInTransaction`). They go to topics of their own (LATER_TOPICS), so the main
 * oracle's rules (one copy per message, at the place its send returned) stay as they are.
 *
 * Each send is held first in a record of the broker's own (a schedule record, a half message);
 * what reaches its topic later is a copy. Rules, checked at every reopen (the whole log) and,
 * at the end of a run, on what the store appends as time passes:
 * - a copy is as sent (body, tags, keys, properties, its queue) and carries the msgId its send
 *   returned; it is stored no earlier than it was due on the store's clock;
 * - a send's record is durable as a normal send's is (SEND_OK under SYNC_FLUSH, below the
 *   flushed offset, a clean close): a durable record is never lost (but to retention), and
 *   retention never deletes a scheduled record before it is due;
 * - the log holds at most 1 + (unclean endings since the send) copies of a message;
 * - once `cancelScheduled` resolved true, no copy is appended: the only copies allowed are
 *   those an earlier lifetime appended before it ended uncleanly (it had delivered the message
 *   and the crash lost the progress that said so, so the cancel could not know);
 * - a transaction that ends in ROLLBACK_MESSAGE (or stays UNKNOWN) never has a copy in its
 *   topic; one still UNKNOWN after transactionCheckMax check-backs is stored in the check-max
 *   topic; a committed or rolled-back one goes there only when a close or crash since its send
 *   could have cut off an answer;
 * - at the end (time passed beyond every due time and the check-backs), every send whose record
 *   the log holds is delivered once at least: a delayed one unless a cancel may have taken it,
 *   a transaction its listener answered COMMIT_MESSAGE for in its topic (or, after a close or
 *   crash, the check-max topic), an UNKNOWN one in the check-max topic (unless its SYNC_FLUSH
 *   half may have come back FLUSH_DISK_TIMEOUT unseen: its producer then rolled it back).
 *   Records retention took are not checked then.
 */
import type { FlushDiskType } from '../../lib/store/options.js';
import type { MessageExt } from '../../lib/broker/message.js';
import { difference, idOf, type SimMessage } from './messages.js';
import type { Ending } from './oracle.js';
import { violated } from './violation.js';

/** Where delayed and transactional messages go (SimTx has one queue: the producer picks it). */
export const LATER_TOPICS: readonly { topic: string; queues: number }[] = [
  { topic: 'SimLater', queues: 2 },
  { topic: 'SimTx', queues: 1 },
];
export const CHECK_MAX_TOPIC = 'RMQ_SYS_TRANS_CHECK_MAX_TIME_TOPIC';

export function isLaterTopic(topic: string): boolean {
  return LATER_TOPICS.some((t) => t.topic === topic);
}

/** How a transactional send's local transaction ends: at once, after some checks, never. */
export type TxFate = 'commit' | 'rollback' | 'late-commit' | 'late-rollback' | 'unknown';

type Kind = 'level' | 'at' | 'tx';

interface LaterSend {
  readonly msg: SimMessage;
  readonly kind: Kind;
  /** The earliest time a copy may be stored (the send's time plus its delay, or deliverAt). */
  readonly dueMs: number;
  readonly lifetime: number;
  readonly mode: FlushDiskType;
  fate: TxFate | null;
  /** Check-backs that answer UNKNOWN before a late fate answers. */
  readonly unknownChecks: number;
  checksAnswered: number;
  /**
   * Its listener answered COMMIT_MESSAGE in a live lifetime (executeLocalTransaction or a
   * check-back): only then is a copy owed. A producer that got its half back with another
   * status than SEND_OK rolls back without asking, and may do so as the process dies, before
   * the model sees the status.
   */
  commitAnswered: boolean;
  /**
   * Its executeLocalTransaction ran in a live lifetime: the half came back SEND_OK. Until then
   * a SYNC_FLUSH half may have come back FLUSH_DISK_TIMEOUT and been rolled back unseen.
   */
  executed: boolean;
  msgId: string | null;
  /** Where its first record (schedule record, half, or the copy itself) is in the log. */
  recordPhys: number | null;
  durable: boolean;
  /** Endings since the send: unclean ones, and all of them. */
  unclean: number;
  endings: number;
  /** A cancel resolved true: copies allowed only below `floor`, when the send saw a crash. */
  cancelled: { floor: number; unclean: number } | null;
  /** A cancel may have taken it (true, or a cancel whose outcome is unknown). */
  mayBeCancelled: boolean;
  /** Commit-log offsets of copies seen (in its topic), and whether a check-max copy was. */
  readonly copies: Set<number>;
  checkMaxSeen: boolean;
}

export interface LaterScan {
  /** Records of LATER_TOPICS and of the broker's own topics, in log order. */
  readonly records: readonly MessageExt[];
  readonly logMin: number;
  readonly logEnd: number;
}

export class LaterModel {
  private readonly sends = new Map<number, LaterSend>();
  /** The log end when this lifetime opened: what lies below was appended before it. */
  private floor = 0;
  /** `id@phys` of every record of ours this lifetime's log holds (scanned, or appended since). */
  private present = new Set<string>();
  private logMin = 0;
  stats = { laterSent: 0, laterAcked: 0, laterDelivered: 0, cancelsTrue: 0, txCommitted: 0,
    txCheckMax: 0, txChecks: 0 };

  has(id: number): boolean {
    return this.sends.has(id);
  }

  sent(msg: SimMessage, kind: Kind, dueMs: number, lifetime: number, mode: FlushDiskType,
    fate: TxFate | null = null, unknownChecks = 0): void {
    this.sends.set(msg.id, { msg, kind, dueMs, lifetime, mode, fate, unknownChecks,
      checksAnswered: 0, commitAnswered: false, executed: false, msgId: null, recordPhys: null,
      durable: false, unclean: 0, endings: 0, cancelled: null, mayBeCancelled: false,
      copies: new Set(), checkMaxSeen: false });
    this.stats.laterSent += 1;
  }

  /** A send resolved in its live lifetime (a transaction's half stored with `status`). */
  acked(id: number, status: string, msgId: string, phys: number): void {
    const s = this.sends.get(id)!;
    s.msgId = msgId;
    s.recordPhys = phys;
    this.stats.laterAcked += 1;
    if (s.mode === 'SYNC_FLUSH' && status === 'SEND_OK') s.durable = true;
    // A half not stored SEND_OK is rolled back without running the local transaction.
    if (s.kind === 'tx' && status !== 'SEND_OK') s.fate = 'rollback';
  }

  /** What the producer's listener answers: its local transaction's state (or UNKNOWN yet). */
  executeAnswer(id: number): 'COMMIT_MESSAGE' | 'ROLLBACK_MESSAGE' | 'UNKNOWN' {
    const s = this.sends.get(id);
    const fate = s?.fate;
    if (s !== undefined) s.executed = true;
    if (fate === 'commit') s!.commitAnswered = true;
    return fate === 'commit' ? 'COMMIT_MESSAGE' : fate === 'rollback' ? 'ROLLBACK_MESSAGE'
      : 'UNKNOWN';
  }

  fateOf(id: number): TxFate | null {
    return this.sends.get(id)?.fate ?? null;
  }

  checkAnswer(id: number): 'COMMIT_MESSAGE' | 'ROLLBACK_MESSAGE' | 'UNKNOWN' {
    const s = this.sends.get(id);
    if (s === undefined) violated(`check-back of a transaction never sent (id ${id})`);
    this.stats.txChecks += 1;
    const late = s.fate === 'late-commit' || s.fate === 'late-rollback';
    if (late && s.checksAnswered++ < s.unknownChecks) return 'UNKNOWN';
    if (s.fate === 'commit' || s.fate === 'late-commit') {
      s.commitAnswered = true;
      return 'COMMIT_MESSAGE';
    }
    return s.fate === 'unknown' ? 'UNKNOWN' : 'ROLLBACK_MESSAGE';
  }

  /** A cancel of `id` resolved (true or false), or its outcome stays unknown (null). */
  cancelResolved(id: number, result: boolean | null): void {
    const s = this.sends.get(id)!;
    if (result === null) s.mayBeCancelled = true;
    if (result !== true || s.cancelled !== null) return;
    s.cancelled = { floor: this.floor, unclean: s.unclean };
    s.mayBeCancelled = true;
    this.stats.cancelsTrue += 1;
  }

  /** Acknowledged scheduled sends not yet due at `nowMs` (what a cancel step picks from). */
  cancellable(nowMs: number): { id: number; msgId: string }[] {
    const out: { id: number; msgId: string }[] = [];
    for (const [id, s] of this.sends) {
      if (s.kind !== 'tx' && s.msgId !== null && s.dueMs > nowMs) out.push({ id, msgId: s.msgId });
    }
    return out;
  }

  /** Records below `flushed` in this lifetime's log are durable. */
  markFlushed(flushed: number): void {
    for (const s of this.sends.values()) {
      if (s.recordPhys !== null && s.recordPhys < flushed) s.durable = true;
    }
  }

  closedCleanly(): void {
    for (const s of this.sends.values()) if (s.recordPhys !== null) s.durable = true;
  }

  /** After a reopen (after `ending`): the whole log's records of ours, checked. */
  recovered(scan: LaterScan, ending: Ending, nowMs: number): void {
    for (const s of this.sends.values()) {
      s.endings += 1;
      if (ending !== 'clean') s.unclean += 1;
    }
    this.floor = scan.logEnd;
    this.logMin = scan.logMin;
    this.present = new Set(scan.records.map((ext) => `${idOf(ext)}@${ext.commitLogOffset}`));
    const found = new Map<number, number>();
    const copies = new Map<number, number>();
    for (const ext of scan.records) {
      const id = idOf(ext);
      const s = this.sends.get(id);
      if (s === undefined) {
        if (isLaterTopic(ext.topic)) violated(`${ext.topic}@${ext.queueOffset}: id ${id} unsent`);
        continue; // another model's message (a retry) or an Op record
      }
      if (isLaterTopic(ext.topic)) copies.set(id, (copies.get(id) ?? 0) + 1);
      this.copySeen(s, ext, 'recovered log');
      if (s.recordPhys === ext.commitLogOffset || (s.recordPhys === null && !found.has(id))) {
        found.set(id, ext.commitLogOffset);
      }
    }
    for (const [id, s] of this.sends) {
      const n = copies.get(id) ?? 0;
      if (n > 1 + s.unclean) {
        violated(`message ${id} (${s.kind}) has ${n} copies after ${s.unclean} unclean endings`);
      }
      this.checkRecord(id, s, found.get(id), scan, nowMs);
    }
  }

  private checkRecord(id: number, s: LaterSend, at: number | undefined, scan: LaterScan,
    nowMs: number): void {
    if (at !== undefined) {
      s.recordPhys = at;
      return;
    }
    const expired = s.recordPhys !== null && s.recordPhys < scan.logMin;
    if (s.durable && !expired) {
      violated(`durable ${s.kind} message ${id} is lost (record at ${s.recordPhys})`);
    }
    if (expired && s.kind !== 'tx' && s.copies.size === 0 && s.dueMs > nowMs &&
      !s.mayBeCancelled) {
      violated(`retention deleted ${s.kind} message ${id} before it was due ` +
        `(${s.dueMs - nowMs} ms ahead)`);
    }
    if (!expired) {
      // Lost in a crash before it was durable: nothing is owed for it any more.
      s.recordPhys = null;
      s.durable = false;
    }
  }

  /** A record of ours seen in the log (at a reopen, or live at the end of a run). */
  copySeen(s: LaterSend, ext: MessageExt, how: string): void {
    const id = s.msg.id;
    const where = `${ext.topic}/${ext.queueId}@${ext.queueOffset} (${how})`;
    const diff = difference({ ...ext, topic: s.msg.topic, queueId: s.msg.queueId }, s.msg);
    if (diff !== null) violated(`${where}: message ${id} ${diff}`);
    if (ext.topic === CHECK_MAX_TOPIC) {
      if (s.kind !== 'tx' || (s.fate !== 'unknown' && s.endings === 0)) {
        violated(`${where}: ${s.kind} message ${id} (${s.fate}) went to the check-max topic`);
      }
      if (!s.checkMaxSeen) this.stats.txCheckMax += 1;
      s.checkMaxSeen = true;
      return;
    }
    if (!isLaterTopic(ext.topic)) return; // its schedule record or half
    if (difference(ext, s.msg) !== null) violated(`${where}: message ${id} in the wrong queue`);
    if (s.msgId !== null && ext.msgId !== s.msgId) {
      violated(`${where}: message ${id} has msgId ${ext.msgId}, its send returned ${s.msgId}`);
    }
    if (ext.storeTimestamp < s.dueMs) {
      violated(`${where}: ${s.kind} message ${id} stored at ${ext.storeTimestamp}, ` +
        `${s.dueMs - ext.storeTimestamp} ms before it was due`);
    }
    if (s.kind === 'tx' && s.fate !== 'commit' && s.fate !== 'late-commit') {
      violated(`${where}: transaction ${id} (${s.fate}) was delivered`);
    }
    const c = s.cancelled;
    if (c !== null && !(ext.commitLogOffset < c.floor && c.unclean > 0)) {
      violated(`${where}: message ${id} delivered after cancelScheduled resolved true`);
    }
    if (!s.copies.has(ext.commitLogOffset)) {
      s.copies.add(ext.commitLogOffset);
      this.stats.laterDelivered += 1;
      if (s.kind === 'tx') this.stats.txCommitted += 1;
    }
  }

  /** A record appended while the end of a run lets time pass (the log now starts at logMin). */
  observed(ext: MessageExt, logMin: number): void {
    this.logMin = logMin;
    this.present.add(`${idOf(ext)}@${ext.commitLogOffset}`);
    const s = this.sends.get(idOf(ext));
    if (s !== undefined) this.copySeen(s, ext, 'appended');
    else if (isLaterTopic(ext.topic)) violated(`${ext.topic}: a message never sent appended`);
  }

  /** The latest time something owed is due (the end of a run lets time pass until then). */
  latestDue(): number {
    let latest = 0;
    for (const s of this.sends.values()) {
      if (s.recordPhys !== null && s.kind !== 'tx') latest = Math.max(latest, s.dueMs);
    }
    return latest;
  }

  /**
   * Sends still owed a delivery: their record is in the log, and no copy is (or was, before
   * retention took it). At the end of a run none may be left.
   */
  owed(): number[] {
    const out: number[] = [];
    for (const [id, s] of this.sends) {
      if (s.recordPhys === null || s.recordPhys < this.logMin) continue;
      const copied = [...s.copies].some((p) => p < this.logMin || this.present.has(`${id}@${p}`));
      if (s.kind !== 'tx') {
        if (!copied && !s.mayBeCancelled) out.push(id);
      } else if (s.fate === 'unknown') {
        const mayBeRolledBack = s.mode === 'SYNC_FLUSH' && !s.executed;
        if (!s.checkMaxSeen && !mayBeRolledBack) out.push(id);
      } else if (s.commitAnswered && (s.fate === 'commit' || s.fate === 'late-commit')) {
        if (!copied && !(s.checkMaxSeen && s.endings > 0)) out.push(id);
      }
    }
    return out;
  }

  /** After the last reopen: nothing the log holds a record of is still owed. */
  checkEnd(): void {
    const left = this.owed();
    if (left.length > 0) {
      const what = left.slice(0, 6).map((id) => this.describe(id)).join('; ');
      violated(`${left.length} messages never delivered: ${what}`);
    }
  }

  describe(id: number): string {
    const s = this.sends.get(id)!;
    return `${id} ${s.kind}${s.fate === null ? '' : ` ${s.fate}`} due ${s.dueMs} record ` +
      `${s.recordPhys} ${s.durable ? 'durable' : 'not durable'}` +
      `${s.mayBeCancelled ? ' cancel' : ''} copies ${s.copies.size}`;
  }
}
