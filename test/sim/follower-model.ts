/**
 * What the simulator's follower must hold, and the checks against it (docs/testing.md):
 * - every send that resolved SEND_OK from a SYNC_MASTER is on the follower, readable there by
 *   its msgId and by its queue offset, as it was sent; checked before every reopen of the
 *   master (after a crash: before the follower could meet the recovered master) and at the end.
 *   A promise ends only when the master itself lost the message (its crash lost an unflushed
 *   tail; the follower then truncates the same tail), or when a follower running ASYNC_FLUSH
 *   lost power with the message above its flushed offset (it acknowledged memory only);
 *   FLUSH_SLAVE_TIMEOUT and SLAVE_NOT_AVAILABLE promise nothing;
 * - while the follower streams from a master whose reads are right, its log is a byte prefix of
 *   the master's at the same offsets; once caught up at the end, the same bytes to the end.
 */
import type { MessageExt } from '../../lib/broker/message.js';
import type { SendResult } from '../../lib/broker/port.js';
import type { StoreEngine } from '../../lib/store/store-engine.js';
import type { MessageStore } from '../../lib/message-store.js';
import { storeInternals } from '../../lib/internal.js';
import { toMessageExt } from '../../lib/broker/message.js';
import type { Oracle } from './oracle.js';
import { idOf, queueName } from './messages.js';
import { violated } from './violation.js';

interface Promised {
  readonly msgId: string;
  readonly topic: string;
  readonly queueId: number;
  readonly queueOffset: number;
  readonly phys: number;
}

/** Bytes compared at a time. */
const COMPARE_CHUNK_BYTES = 256 * 1024;

export class FollowerModel {
  private readonly promised = new Map<number, Promised>();
  readonly stats = { promised: 0, promiseChecks: 0, prefixChecks: 0, released: 0 };

  constructor(private readonly oracle: Oracle) {}

  /** A send of message `id` resolved `r` from a live master running `role`. */
  acked(id: number, r: SendResult, role: string): void {
    if (role !== 'SYNC_MASTER' || r.status !== 'SEND_OK') return;
    this.promised.set(id, { msgId: r.msgId, topic: r.topic, queueId: r.queueId,
      queueOffset: r.queueOffset, phys: r.commitLogOffset });
    this.stats.promised += 1;
  }

  /**
   * The master reopened holding `records` from `logMin`: what its crash lost no follower keeps
   * (it truncates); what retention deleted there stays on the follower.
   */
  masterRecovered(records: readonly MessageExt[], logMin: number): void {
    const found = new Set(records.map(idOf));
    for (const [id, p] of [...this.promised]) {
      if (!found.has(id) && p.phys >= logMin) this.release(id);
    }
  }

  /** A follower running ASYNC_FLUSH lost power: what it had not flushed may be gone. */
  followerLostPower(flushedOffset: number): void {
    for (const [id, p] of [...this.promised]) {
      if (p.phys >= flushedOffset) this.release(id);
    }
  }

  /** The follower starts over empty: everything it held was deleted on the master. */
  followerStartedOver(): void {
    for (const id of [...this.promised.keys()]) this.release(id);
  }

  private release(id: number): void {
    this.promised.delete(id);
    this.stats.released += 1;
  }

  /** Every promised message is on `follower`, as sent, by msgId and by queue offset. */
  async check(follower: MessageStore, when: string): Promise<void> {
    const engine = storeInternals(follower).engine;
    for (const [id, p] of this.promised) {
      const what = `message ${id} (SEND_OK under SYNC_MASTER, ${p.topic}/${p.queueId}@` +
        `${p.queueOffset} phys ${p.phys}) ${when}`;
      const viewed = await follower.viewMessage(p.msgId);
      if (viewed === null) {
        violated(`${what} is not on the follower (its log ends at ` +
          `${engine.commitLogMaxOffset}): viewMessage(${p.msgId}) found nothing`);
      }
      this.same(id, viewed, p, `${what}, viewMessage`);
      const got = engine.getMessage(p.topic, p.queueId, p.queueOffset, 1).records[0];
      if (got === undefined) {
        violated(`${what}: the follower's queue ${queueName(p)} has no offset ${p.queueOffset}`);
      }
      this.same(id, toMessageExt(got), p, `${what}, by queue offset`);
      this.stats.promiseChecks += 1;
    }
  }

  private same(id: number, ext: MessageExt, p: Promised, how: string): void {
    if (idOf(ext) !== id || ext.commitLogOffset !== p.phys || ext.queueOffset !== p.queueOffset) {
      violated(`${how}: the follower has message ${idOf(ext)} at ${ext.topic}/${ext.queueId}@` +
        `${ext.queueOffset} phys ${ext.commitLogOffset}`);
    }
    this.oracle.check(ext, `follower, ${how}`);
  }

  /**
   * The follower's log is the master's, byte for byte at the same offsets, from where both
   * hold it to the follower's end (`whole`: to the master's end too).
   */
  comparePrefix(follower: StoreEngine, master: StoreEngine, whole: boolean): void {
    const end = follower.commitLogMaxOffset;
    const masterEnd = master.commitLogMaxOffset;
    if (end > masterEnd || (whole && end !== masterEnd)) {
      violated(`the follower's log ends at ${end}, the master's at ${masterEnd}` +
        (whole ? ' after catching up' : ' (the follower is ahead)'));
    }
    let at = Math.max(follower.commitLogMinOffset, master.commitLogMinOffset);
    while (at < end) {
      const mine = follower.replica.readChunk(at, COMPARE_CHUNK_BYTES);
      if (mine.frames.length === 0) violated(`the follower's log has nothing at ${at} < ${end}`);
      const theirs = master.replica.readChunk(at, mine.frames.length);
      if (!mine.frames.equals(theirs.frames) || mine.next !== theirs.next) {
        violated(`the follower's log differs from the master's in [${at}, ${mine.next})` +
          ` (master's chunk: ${theirs.frames.length} bytes, to ${theirs.next})`);
      }
      at = mine.next;
    }
    this.stats.prefixChecks += 1;
  }
}
