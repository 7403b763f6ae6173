/**
 * The oracle's model of the push consumer group (`sim_push`): at least once, never corrupted.
 *
 * Rules:
 * - every message the listener gets is one that was sent, byte for byte, at the place the log
 *   holds it (checked by the Oracle); a dead process's listener calls count for nothing;
 * - orderly: within a lifetime each queue reaches the listener in offset order (a batch that
 *   asked RECONSUME_LATER comes again), never going back past one it handled;
 * - a message given back for a retry comes back from the group's retry topic as sent, with
 *   reconsumeTimes counted up;
 * - after every reopen the group's committed offset of a queue never passes a message that no
 *   listener handled (CONSUME_SUCCESS) in any lifetime unless the log holds its copy for a
 *   retry (or the dead-letter queue), never goes back, and never passes the queue's max offset;
 * - at the end of a run, with no fault left, every message in the log reaches the listener and
 *   is handled (liveness), even those it asked to see again.
 */
import type { MessageExt } from '../../lib/broker/message.js';
import { idOf, queueName, type QueueRef } from './messages.js';
import type { Oracle } from './oracle.js';
import { violated } from './violation.js';

export const PUSH_GROUP = 'sim_push';

export class PushModel {
  private readonly handled = new Set<number>();
  /** The committed offset each queue had at the last reopen. */
  private readonly committedBefore = new Map<string, number>();
  /** Orderly, in this lifetime: per queue, where the last batch began and the last handled. */
  private lastDelivered = new Map<string, number>();
  private lastHandled = new Map<string, number>();
  stats = { pushed: 0, handled: 0, reconsume: 0 };

  constructor(private readonly oracle: Oracle) {}

  /** A new lifetime's push consumer starts. */
  started(): void {
    this.lastDelivered = new Map();
    this.lastHandled = new Map();
  }

  /** The listener of the live process got `batch` (from the group's retry topic: `retried`). */
  received(batch: readonly MessageExt[], orderly: boolean, retried = false): void {
    for (const ext of batch) {
      if (retried) this.oracle.seenCopy(ext, `push ${PUSH_GROUP} retry`);
      else this.oracle.seen(ext, `push ${PUSH_GROUP}`);
      this.stats.pushed += 1;
    }
    const first = batch[0];
    // The retry queue's order is not its messages' queues' order.
    if (!orderly || first === undefined || retried) return;
    // One queue per batch, in order; a batch starts where the last one did (asked again) or
    // past everything handled.
    const queue = queueName(first);
    const began = this.lastDelivered.get(queue) ?? -1;
    const done = this.lastHandled.get(queue) ?? -1;
    batch.forEach((ext, i) => {
      if (queueName(ext) !== queue || ext.queueOffset !== first.queueOffset + i) {
        violated(`orderly push batch ${batch.map((m) => `${queueName(m)}@${m.queueOffset}`)}` +
          ' is not one run of one queue');
      }
    });
    if (first.queueOffset < began || first.queueOffset <= done) {
      violated(`orderly push got ${queue}@${first.queueOffset} after a batch from ${began} ` +
        `(handled up to ${done})`);
    }
    this.lastDelivered.set(queue, first.queueOffset);
  }

  /** The listener answered for `ext` (delivered from the group's retry topic: `retried`). */
  answered(ext: MessageExt, success: boolean, retried = false): void {
    if (!success) {
      this.stats.reconsume += 1;
      return;
    }
    this.handled.add(idOf(ext));
    this.stats.handled += 1;
    if (retried) return;
    const queue = queueName(ext);
    this.lastHandled.set(queue, Math.max(ext.queueOffset, this.lastHandled.get(queue) ?? -1));
  }

  isHandled(id: number): boolean {
    return this.handled.has(id);
  }

  /**
   * After a reopen, before the push consumer starts: the group's committed offset of `q`
   * (-1: none), the queue's max offset, and the log's records of `q` in offset order.
   */
  afterReopen(q: QueueRef, committed: number, maxOffset: number,
    records: readonly MessageExt[], copies: ReadonlySet<number>): void {
    const queue = queueName(q);
    const where = `${PUSH_GROUP}: committed offset of ${queue} after reopen is ${committed}`;
    if (committed > maxOffset) violated(`${where}, past the queue's max offset ${maxOffset}`);
    const before = this.committedBefore.get(queue) ?? -1;
    if (committed < before) violated(`${where}, it was ${before} at the last reopen`);
    this.committedBefore.set(queue, committed);
    for (const ext of records) {
      if (ext.queueOffset >= committed) break;
      const id = idOf(ext);
      if (!this.handled.has(id) && !copies.has(id)) {
        violated(`${where}, past message ${id} at ${ext.queueOffset} that no listener handled ` +
          'and the log holds no retry of');
      }
    }
  }
}
