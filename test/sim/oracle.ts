/**
 * The simulator's oracle: a model of what the store must hold, fed with every send, result,
 * delivery and offset commit, and checked against what the store holds after every reopen.
 *
 * Rules (issue 6):
 * - a message is `durable` once SYNC_FLUSH acknowledged it SEND_OK, once it lay below the
 *   flushed offset when the process died, or once its lifetime closed cleanly (a reopen finding
 *   it is not enough: it may be in the page cache only); a durable message survives every later
 *   crash, byte for byte, at the same place;
 * - what survives a crash is a prefix of the log: no message of the lost lifetime is missing
 *   below the end of the recovered log (no holes), and no queue offset changes its message;
 * - nothing is read back that was not sent, nor twice, nor different from what was sent (a
 *   record whose bytes a read got wrong is never delivered);
 * - retention deletes only whole segments from the start of the log, and only messages sent
 *   `fileReservedTimeHours` ago or earlier: a queue's min offset moves past exactly the messages
 *   that lie before the log's min offset; everything after it is checked as before;
 * - consumer groups: see group-model.ts.
 */
import type { FlushDiskType } from '../../lib/store/options.js';
import type { MessageExt } from '../../lib/broker/message.js';
import { GroupModel } from './group-model.js';
import { difference, idOf, queueName, type QueueRef, type SimMessage } from './messages.js';
import { violated } from './violation.js';

export { Violation } from './violation.js';

type SendState = 'pending' | 'acked' | 'timeout' | 'failed';

interface SendRecord {
  readonly msg: SimMessage;
  readonly lifetime: number;
  readonly mode: FlushDiskType;
  /** The simulated time of the send: its store timestamp is this or later. */
  readonly sentMs: number;
  state: SendState;
}

interface Placement {
  readonly queue: string;
  readonly offset: number;
  readonly phys: number;
}

/**
 * How the last lifetime ended: a crash (power lost), a clean close, a close after a fault, or
 * `stopped`: a failed write of a staged window stopped the store, or the process was killed at
 * an I/O call (kill -9): what it had not written is gone, as in a crash, but what it had
 * written to its files must be there (and what was durable).
 */
export type Ending = 'crash' | 'clean' | 'abandoned' | 'stopped';

export class Oracle {
  private readonly sends = new Map<number, SendRecord>();
  private readonly durable = new Set<number>();
  /** Messages in the files (the page cache) when a store stopped: its reopen must find them. */
  private readonly inFiles = new Set<number>();
  /** Per queue, the id at each offset as far as this lifetime knows. */
  private slots = new Map<string, (number | undefined)[]>();
  private placements = new Map<number, Placement>();
  readonly groups = new GroupModel();
  lifetime = 0;
  stats = { sent: 0, acked: 0, timeouts: 0, failed: 0, delivered: 0, recovered: 0, lost: 0,
    expired: 0 };

  /** `reservedMs`: fileReservedTimeHours, in ms. */
  constructor(private readonly reservedMs: number) {}

  sent(msg: SimMessage, mode: FlushDiskType, nowMs: number): void {
    this.sends.set(msg.id, { msg, lifetime: this.lifetime, mode, sentMs: nowMs,
      state: 'pending' });
    this.stats.sent += 1;
  }

  /** A send resolved: `SEND_OK` or `FLUSH_DISK_TIMEOUT`, with where it went. */
  acked(id: number, status: string, queueOffset: number, phys: number): void {
    const rec = this.sends.get(id)!;
    if (rec.lifetime !== this.lifetime) return; // resolved after its process died
    rec.state = status === 'SEND_OK' ? 'acked' : 'timeout';
    this.stats[status === 'SEND_OK' ? 'acked' : 'timeouts'] += 1;
    this.place(id, rec.msg, queueOffset, phys, 'send result');
    if (rec.mode === 'SYNC_FLUSH' && status === 'SEND_OK') this.durable.add(id);
  }

  failed(id: number): void {
    const rec = this.sends.get(id)!;
    if (rec.lifetime === this.lifetime) rec.state = 'failed';
    this.stats.failed += 1;
  }

  private place(id: number, q: QueueRef, offset: number, phys: number, how: string): void {
    const queue = queueName(q);
    const known = this.placements.get(id);
    if (known !== undefined &&
      (known.queue !== queue || known.offset !== offset || known.phys !== phys)) {
      violated(`message ${id} (${how}) is at ${queue}@${offset} phys ${phys}, but was at ` +
        `${known.queue}@${known.offset} phys ${known.phys}`);
    }
    let slots = this.slots.get(queue);
    if (slots === undefined) this.slots.set(queue, (slots = []));
    const there = slots[offset];
    if (there !== undefined && there !== id) {
      violated(`${queue}@${offset} holds message ${id} (${how}), but held ${there}`);
    }
    slots[offset] = id;
    this.placements.set(id, { queue, offset, phys });
  }

  /** Check a message read back against what was sent; returns its id. */
  check(ext: MessageExt, how: string): number {
    const id = idOf(ext);
    const rec = this.sends.get(id);
    const where = `${ext.topic}/${ext.queueId}@${ext.queueOffset} (${how})`;
    if (rec === undefined) violated(`${where} holds a message never sent (id ${id})`);
    const diff = difference(ext, rec.msg);
    if (diff !== null) violated(`${where}: message ${id} ${diff}`);
    return id;
  }

  /**
   * A copy of a message coming back from the group's retry topic: as sent (but for its queue,
   * the retry topic's), delivered before, with reconsumeTimes counted up.
   */
  seenCopy(ext: MessageExt, how: string): void {
    const id = idOf(ext);
    const sent = this.sends.get(id);
    if (sent === undefined) violated(`${how}: a retried message never sent (id ${id})`);
    this.check({ ...ext, queueId: sent.msg.queueId }, how);
    if (ext.reconsumeTimes < 1) violated(`${how}: message ${id} retried with reconsumeTimes 0`);
  }

  /** A message read back by a reader without positions of its own: sent, and where it was. */
  seen(ext: MessageExt, how: string): void {
    const id = this.check(ext, how);
    this.place(id, ext, ext.queueOffset, ext.commitLogOffset, how);
  }

  /** A consumer of `group` got `ext`: the next message of its queue (see GroupModel). */
  delivered(group: string, ext: MessageExt, queueMin: number): void {
    const id = this.check(ext, `consumer ${group}`);
    this.groups.delivered(group, ext, queueMin);
    this.place(id, ext, ext.queueOffset, ext.commitLogOffset, 'consumer');
    this.stats.delivered += 1;
  }

  /** `group` committed these positions; `persisted` when its promise resolved. */
  committing(group: string, positions: ReadonlyMap<string, number>): { persisted(): void } {
    const lifetime = this.lifetime;
    return this.groups.committing(group, positions, () => lifetime === this.lifetime);
  }

  /**
   * Retention ran (or may have): the log starts at `logMin` and queue `q` at `queueMin`. The
   * messages of `q` below `queueMin` are exactly those placed before `logMin`, and each was sent
   * `reservedMs` before `nowMs` or earlier.
   */
  checkRetention(q: QueueRef, queueMin: number, logMin: number, nowMs: number): void {
    const queue = queueName(q);
    for (const [id, p] of this.placements) {
      if (p.queue !== queue || (p.offset < queueMin) === (p.phys < logMin)) continue;
      violated(`${queue}@${p.offset} (message ${id}, phys ${p.phys}): the queue starts at ` +
        `${queueMin}, the log at ${logMin}`);
    }
    for (const [id, p] of this.placements) {
      if (p.queue === queue && p.phys < logMin) this.checkExpiry(id, nowMs);
    }
  }

  private checkExpiry(id: number, nowMs: number): void {
    const age = nowMs - this.sends.get(id)!.sentMs;
    if (age < this.reservedMs) {
      violated(`message ${id} was deleted by retention ${age} ms after it was sent, before ` +
        `${this.reservedMs} ms (${this.describe(id)})`);
    }
  }

  /** Placed messages of this lifetime, not known durable yet (candidates for `markDurable`). */
  undecided(): { id: number; phys: number }[] {
    const out: { id: number; phys: number }[] = [];
    for (const [id, p] of this.placements) {
      if (!this.durable.has(id)) out.push({ id, phys: p.phys });
    }
    return out;
  }

  /** Placed messages known durable. */
  durablePlacements(): { id: number; phys: number }[] {
    const out: { id: number; phys: number }[] = [];
    for (const id of this.durable) out.push({ id, phys: this.placements.get(id)!.phys });
    return out;
  }

  markDurable(id: number): void {
    this.durable.add(id);
  }

  /** The message reached the files of a live process: a reopen without a crash finds it. */
  markInFiles(id: number): void {
    this.inFiles.add(id);
  }

  /** The lifetime closed cleanly: everything it placed is durable. */
  closedCleanly(): void {
    for (const id of this.placements.keys()) this.durable.add(id);
  }

  /**
   * After a reopen: `records` is the whole commit log in order (already checked against the
   * consume queues), from `logMin` (retention deleted what was before) to `logEnd`.
   */
  recovered(records: readonly MessageExt[], logMin: number, logEnd: number, ending: Ending,
    nowMs: number): void {
    const found = new Map<number, MessageExt>();
    const counts = new Map<string, number>();
    for (const ext of records) {
      const id = this.check(ext, 'recovered log');
      if (found.has(id)) violated(`message ${id} is twice in the log`);
      found.set(id, ext);
      const queue = queueName(ext);
      // A queue starts where retention left it: what lies before is checked below.
      const expected = counts.get(queue) ?? ext.queueOffset;
      if (ext.queueOffset !== expected) {
        violated(`${queue}: message ${id} has offset ${ext.queueOffset}, expected ${expected}`);
      }
      counts.set(queue, expected + 1);
      const known = this.placements.get(id);
      if (known !== undefined &&
        (known.queue !== queue || known.offset !== ext.queueOffset ||
          known.phys !== ext.commitLogOffset)) {
        violated(`message ${id} moved from ${known.queue}@${known.offset} phys ${known.phys} ` +
          `to ${queue}@${ext.queueOffset} phys ${ext.commitLogOffset}`);
      }
      const was = this.slots.get(queue)?.[ext.queueOffset];
      if (was !== undefined && was !== id) {
        violated(`${queue}@${ext.queueOffset} held message ${was}, now ${id} (reordered)`);
      }
    }
    for (const [id, p] of this.placements) {
      if (found.has(id) || p.phys >= logMin) continue;
      this.checkExpiry(id, nowMs);
      this.durable.delete(id);
      this.placements.delete(id);
      this.stats.expired += 1;
    }
    for (const id of this.durable) {
      if (!found.has(id)) violated(`durable message ${id} is lost (${this.describe(id)})`);
    }
    for (const [id, p] of this.placements) {
      if (found.has(id)) continue;
      this.stats.lost += 1;
      if (ending !== 'crash' && ending !== 'stopped') {
        violated(`message ${id} is lost without a crash or a failed write`);
      }
      if (ending === 'stopped' && this.inFiles.has(id)) {
        violated(`message ${id} was in the files when the store stopped, and is lost`);
      }
      if (p.phys < logEnd) {
        violated(`message ${id} at phys ${p.phys} is lost but the log goes on to ${logEnd} ` +
          '(a hole)');
      }
    }
    this.inFiles.clear();
    this.rebuild(records);
  }

  private describe(id: number): string {
    const rec = this.sends.get(id)!;
    const p = this.placements.get(id);
    const at = p === undefined ? 'unplaced' : `${p.queue}@${p.offset} phys ${p.phys}`;
    return `${rec.mode} lifetime ${rec.lifetime}, ${rec.state}, ${at}`;
  }

  /**
   * The process of this lifetime is gone (killed, or closed): results its promises still report
   * reach no application and are ignored.
   */
  endLifetime(): void {
    this.lifetime += 1;
  }

  private rebuild(records: readonly MessageExt[]): void {
    this.slots = new Map();
    this.placements = new Map();
    for (const ext of records) {
      const id = idOf(ext);
      // Found is not durable: what recovery read may be in the page cache only (a killed
      // process), until a flush passes it or the lifetime closes cleanly.
      this.place(id, ext, ext.queueOffset, ext.commitLogOffset, 'recovered log');
    }
    this.stats.recovered = records.length;
  }

}
