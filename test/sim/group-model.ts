/**
 * The oracle's model of consumer groups: per group and queue, the next offset its consumer must
 * deliver, the offset last committed in memory, the highest ever committed, and the last one a
 * finished persist wrote. Each group has its own offsets (issue 6: several consumer groups).
 *
 * Rules:
 * - a consumer gets each queue in order, without gaps, except over messages retention deleted
 *   (offsets below the queue's min offset), which it skips;
 * - a committed offset after reopen lies between the last persist that completed and the queue's
 *   max offset, and was committed by the group at some point; after a clean close it is exactly
 *   the last one committed.
 */
import type { MessageExt } from '../../lib/broker/message.js';
import { queueName, type QueueRef } from './messages.js';
import type { Ending } from './oracle.js';
import { violated } from './violation.js';

function key(group: string, queue: string): string {
  return `${group} ${queue}`;
}

export class GroupModel {
  /** The last committed offset a completed persist wrote (a lower bound after reopen). */
  private readonly floor = new Map<string, number>();
  private readonly memCommitted = new Map<string, number>();
  private readonly maxCommitted = new Map<string, number>();
  private readonly nextDelivery = new Map<string, number>();

  /**
   * A consumer of `group` got `ext`: the next message of its queue, or the first one at or
   * past the queue's min offset `queueMin` when retention deleted those it had not read.
   */
  delivered(group: string, ext: MessageExt, queueMin: number): void {
    const queue = queueName(ext);
    const k = key(group, queue);
    const next = this.nextDelivery.get(k) ?? 0;
    const skippedExpired = ext.queueOffset > next && ext.queueOffset <= queueMin;
    if (ext.queueOffset !== next && !skippedExpired) {
      violated(`${group} got ${queue}@${ext.queueOffset}, expected offset ${next}` +
        (queueMin > 0 ? ` (queue min ${queueMin})` : ''));
    }
    this.nextDelivery.set(k, ext.queueOffset + 1);
  }

  nextOffset(group: string, q: QueueRef): number {
    return this.nextDelivery.get(key(group, queueName(q))) ?? 0;
  }

  /**
   * The consumer of `group` says it reads `q` from `position` next: where it delivered up to,
   * or past that up to the queue's min offset (it skipped what retention deleted).
   */
  position(group: string, q: QueueRef, position: number, queueMin: number): void {
    const next = this.nextOffset(group, q);
    if (position === next) return;
    if (position < next || position > Math.max(next, queueMin)) {
      violated(`${group}: consumer position of ${queueName(q)} is ${position}, delivered up ` +
        `to ${next}, queue min ${queueMin}`);
    }
    this.nextDelivery.set(key(group, queueName(q)), position);
  }

  /** `group` committed these positions; `persisted` when its promise resolved in `lifetime`. */
  committing(group: string, positions: ReadonlyMap<string, number>,
    stillLive: () => boolean): { persisted(): void } {
    for (const [queue, offset] of positions) {
      const k = key(group, queue);
      this.memCommitted.set(k, offset);
      this.maxCommitted.set(k, Math.max(offset, this.maxCommitted.get(k) ?? -1));
    }
    return {
      persisted: () => {
        if (!stillLive()) return;
        for (const [queue, offset] of positions) {
          const k = key(group, queue);
          this.floor.set(k, Math.max(offset, this.floor.get(k) ?? -1));
        }
      },
    };
  }

  /** After a reopen: the group's committed offset of a queue (-1: none) and its max offset. */
  committedAfterReopen(group: string, q: QueueRef, committed: number, maxOffset: number,
    ending: Ending): void {
    const k = key(group, queueName(q));
    const floor = this.floor.get(k) ?? -1;
    const mem = this.memCommitted.get(k) ?? -1;
    const where = `${group}: committed offset of ${queueName(q)} after a ${ending} reopen is ` +
      `${committed}`;
    if (committed > maxOffset) violated(`${where}, past the queue's max offset ${maxOffset}`);
    if (committed < floor) violated(`${where}, below ${floor} that a finished persist wrote`);
    if (committed > (this.maxCommitted.get(k) ?? -1)) violated(`${where}, never committed`);
    if (ending === 'clean' && committed !== mem) {
      violated(`${where}, but ${mem} was committed before the clean close`);
    }
    if (committed >= 0) this.floor.set(k, committed);
    this.memCommitted.set(k, committed);
    this.nextDelivery.set(k, Math.max(0, committed));
  }
}
