/**
 * Storing due scheduled messages in their topics, shared by the level and timer schedulers.
 */
import type { Clock } from '../../store/clock.js';
import type { Logger } from '../../store/options.js';
import type { RecordInput } from '../../store/record-codec.js';
import type { StoreEngine } from '../../store/store-engine.js';
import type { ScheduleProgress } from './progress.js';
import { restoredRecord } from './schedule-record.js';

/** What a scheduler works with. */
export interface SchedulerHost {
  readonly engine: StoreEngine;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly progress: ScheduleProgress;
  /** The queue count of `topic`, made if missing (a system topic with one queue). */
  ensureTopic(topic: string): Promise<number>;
}

/**
 * What became of one due record: stored in its topic, skipped (gone, or naming no topic: it can
 * never be delivered), or not stored, with the error (of its read or its append).
 */
export type Delivery = 'delivered' | 'skipped' | { readonly error: unknown };

/**
 * Store the due records at these commit-log offsets in their topics, in the order given, all
 * appended in one turn. Resolves with each one's outcome; it never rejects. The caller refuses
 * to cancel them meanwhile: one may be in its topic already.
 *
 * The appends do not wait for a flush: the progress that says a record was delivered is written
 * only after the log is flushed (progress.ts), and that is what a crash goes back to. A record
 * whose append succeeded is delivered, whatever a flush does afterwards: trying it again
 * would add a copy each time (simulator seed 87: a failed fdatasync rejected every SYNC_FLUSH
 * wait, and each retry of the timer appended one more copy).
 */
export async function deliverAll(host: SchedulerHost, physicalOffsets: readonly number[]):
  Promise<Delivery[]> {
  const outcomes: Delivery[] = physicalOffsets.map(() => 'skipped');
  const inputs: [number, RecordInput][] = [];
  for (const [i, offset] of physicalOffsets.entries()) {
    let record;
    try {
      record = host.engine.lookMessageByOffset(offset);
    } catch (error) {
      outcomes[i] = { error }; // a failed read (CORRUPT_DATA, IO_ERROR) may succeed later
      continue;
    }
    const input = record === null ? null : restoredRecord(record);
    if (input === null) {
      host.logger.error(`pocketmq: scheduled message at commit-log offset ${offset} cannot be ` +
        'delivered (unreadable, or it names no topic): skipped');
      continue;
    }
    inputs.push([i, input]);
  }
  const queueNums = new Map<string, number>();
  try {
    for (const [, input] of inputs) {
      if (!queueNums.has(input.topic)) {
        queueNums.set(input.topic, await host.ensureTopic(input.topic));
      }
    }
  } catch (error) {
    for (const [i] of inputs) outcomes[i] = { error };
    return outcomes;
  }
  const appends = inputs.map(([i, input]) =>
    Promise.resolve(host.engine.putUnconfirmed({ ...input,
      queueId: input.queueId % queueNums.get(input.topic)! })).then(() => {
      outcomes[i] = 'delivered';
    }, (error: unknown) => {
      outcomes[i] = { error };
    }));
  await Promise.all(appends);
  return outcomes;
}

/** The first failure among `outcomes`, or null. */
export function firstFailure(outcomes: readonly Delivery[]): { readonly error: unknown } | null {
  for (const o of outcomes) if (typeof o === 'object') return o;
  return null;
}
