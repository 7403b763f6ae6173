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
 * - nothing is read back that was not sent, nor twice, nor different from what was sent;
 * - consumers get each queue in order, without gaps;
 * - a committed offset after reopen lies between the last persist that completed and the queue's
 *   max offset; after a clean close it is exactly the last one committed.
 */
import type { FlushDiskType } from '../../lib/store/options.js';
import type { MessageExt } from '../../lib/broker/message.js';
import { difference, idOf, queueName, type QueueRef, type SimMessage } from './messages.js';

export class Violation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Violation';
  }
}

function violated(message: string): never {
  throw new Violation(message);
}

type SendState = 'pending' | 'acked' | 'timeout' | 'failed';

interface SendRecord {
  readonly msg: SimMessage;
  readonly lifetime: number;
  readonly mode: FlushDiskType;
  state: SendState;
}

interface Placement {
  readonly queue: string;
  readonly offset: number;
  readonly phys: number;
}

/** How the last lifetime ended. */
export type Ending = 'crash' | 'clean' | 'abandoned';

export class Oracle {
  private readonly sends = new Map<number, SendRecord>();
  private readonly durable = new Set<number>();
  /** Per queue, the id at each offset as far as this lifetime knows. */
  private slots = new Map<string, (number | undefined)[]>();
  private placements = new Map<number, Placement>();
  /** Per queue: the last committed offset a completed persist wrote (a lower bound). */
  private readonly floor = new Map<string, number>();
  /** Per queue: the offset last committed in memory, and the highest ever. */
  private memCommitted = new Map<string, number>();
  private readonly maxCommitted = new Map<string, number>();
  private readonly nextDelivery = new Map<string, number>();
  lifetime = 0;
  stats = { sent: 0, acked: 0, timeouts: 0, failed: 0, delivered: 0, recovered: 0, lost: 0 };

  sent(msg: SimMessage, mode: FlushDiskType): void {
    this.sends.set(msg.id, { msg, lifetime: this.lifetime, mode, state: 'pending' });
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

  /** A consumer got `ext`: it must be the next message of its queue. */
  delivered(ext: MessageExt): void {
    const id = this.check(ext, 'consumer');
    const queue = queueName(ext);
    const next = this.nextDelivery.get(queue) ?? 0;
    if (ext.queueOffset !== next) {
      violated(`consumer got ${queue}@${ext.queueOffset}, expected offset ${next}`);
    }
    this.nextDelivery.set(queue, next + 1);
    this.place(id, ext, ext.queueOffset, ext.commitLogOffset, 'consumer');
    this.stats.delivered += 1;
  }

  nextOffset(q: QueueRef): number {
    return this.nextDelivery.get(queueName(q)) ?? 0;
  }

  /** commit() was called with these positions; `persisted` when its promise resolved. */
  committing(positions: ReadonlyMap<string, number>): { persisted(): void } {
    const lifetime = this.lifetime;
    for (const [queue, offset] of positions) {
      this.memCommitted.set(queue, offset);
      this.maxCommitted.set(queue, Math.max(offset, this.maxCommitted.get(queue) ?? -1));
    }
    return {
      persisted: () => {
        if (lifetime !== this.lifetime) return;
        for (const [queue, offset] of positions) {
          this.floor.set(queue, Math.max(offset, this.floor.get(queue) ?? -1));
        }
      },
    };
  }

  /** Placed messages of this lifetime, not known durable yet (candidates for `markDurable`). */
  undecided(): { id: number; phys: number }[] {
    const out: { id: number; phys: number }[] = [];
    for (const [id, p] of this.placements) {
      if (!this.durable.has(id)) out.push({ id, phys: p.phys });
    }
    return out;
  }

  markDurable(id: number): void {
    this.durable.add(id);
  }

  /** The lifetime closed cleanly: everything it placed is durable. */
  closedCleanly(): void {
    for (const id of this.placements.keys()) this.durable.add(id);
  }

  /**
   * After a reopen: `records` is the whole commit log in order (already checked against the
   * consume queues), `logEnd` where it ends.
   */
  recovered(records: readonly MessageExt[], logEnd: number, ending: Ending): void {
    const found = new Map<number, MessageExt>();
    const counts = new Map<string, number>();
    for (const ext of records) {
      const id = this.check(ext, 'recovered log');
      if (found.has(id)) violated(`message ${id} is twice in the log`);
      found.set(id, ext);
      const queue = queueName(ext);
      const expected = counts.get(queue) ?? 0;
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
    for (const id of this.durable) {
      if (!found.has(id)) violated(`durable message ${id} is lost (${this.describe(id)})`);
    }
    for (const [id, p] of this.placements) {
      if (found.has(id)) continue;
      this.stats.lost += 1;
      if (ending !== 'crash') violated(`message ${id} is lost without a crash`);
      if (p.phys < logEnd) {
        violated(`message ${id} at phys ${p.phys} is lost but the log goes on to ${logEnd} ` +
          '(a hole)');
      }
    }
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

  /** After a reopen: the group's committed offset of a queue (-1: none) and its max offset. */
  committedAfterReopen(q: QueueRef, committed: number, maxOffset: number, ending: Ending): void {
    const queue = queueName(q);
    const floor = this.floor.get(queue) ?? -1;
    const mem = this.memCommitted.get(queue) ?? -1;
    const where = `committed offset of ${queue} after a ${ending} reopen is ${committed}`;
    if (committed > maxOffset) violated(`${where}, past the queue's max offset ${maxOffset}`);
    if (committed < floor) violated(`${where}, below ${floor} that a finished persist wrote`);
    if (committed > (this.maxCommitted.get(queue) ?? -1)) violated(`${where}, never committed`);
    if (ending === 'clean' && committed !== mem) {
      violated(`${where}, but ${mem} was committed before the clean close`);
    }
    if (committed >= 0) this.floor.set(queue, committed);
    this.memCommitted.set(queue, committed);
    this.nextDelivery.set(queue, Math.max(0, committed));
  }
}
