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
 * Store the due records at these commit-log offsets in their topics, in the order given (one
 * append each, issued together so a SYNC_FLUSH store shares one flush among them). Resolves
 * once every one is stored; a record that cannot be read or names no topic is logged and
 * skipped (it can never be delivered).
 */
export async function deliverAll(host: SchedulerHost, physicalOffsets: readonly number[]):
  Promise<void> {
  const inputs: RecordInput[] = [];
  for (const offset of physicalOffsets) {
    const record = host.engine.lookMessageByOffset(offset);
    const input = record === null ? null : restoredRecord(record);
    if (input === null) {
      host.logger.error(`pocketmq: scheduled message at commit-log offset ${offset} cannot be ` +
        'delivered (unreadable, or it names no topic): skipped');
      continue;
    }
    inputs.push(input);
  }
  const queueNums = new Map<string, number>();
  for (const input of inputs) {
    if (!queueNums.has(input.topic)) {
      queueNums.set(input.topic, await host.ensureTopic(input.topic));
    }
  }
  await Promise.all(inputs.map((input) => host.engine.putMessage({ ...input,
    queueId: input.queueId % queueNums.get(input.topic)! })));
}
