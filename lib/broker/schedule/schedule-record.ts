/**
 * Scheduled messages as records (RocketMQ's delay levels and timer messages): a message to be
 * delivered later is stored in a schedule queue instead of its topic, with where it belongs and
 * when it is due in its properties; at its time it is stored again, restored, in its topic.
 *
 * - `SCHEDULE_TOPIC_XXXX`, queue `level - 1`: delay levels (`delayTimeLevel`, and retries at
 *   level 3 + reconsumeTimes). One delay per queue, so each queue is due in order.
 * - `SCHEDULE_TOPIC_TIMER`, queue 0: `deliverAt`, any time; due in no particular order.
 *
 * Properties of a scheduled record: REAL_TOPIC and REAL_QID (where it goes), TAGS_CODE (when it
 * is due, ms since the epoch: the store keeps it as the ConsumeQueue tag code, so schedulers
 * find due entries without reading records), DELAY (the level) or TIMER_DELIVER_MS. A delivered
 * record drops them and carries ORIGIN_MESSAGE_ID, the id its producer was given, so a
 * consumer sees the same msgId.
 */
import { SYSFLAG_COMPRESSED, type RecordInput } from '../../store/record-codec.js';
import type { StoredRecord } from '../../store/record-decoder.js';
import { createMessageId } from '../message-id.js';
import { PROPERTY_ORIGIN_MESSAGE_ID, type NormalizedMessage } from '../message.js';

export const SCHEDULE_TOPIC = 'SCHEDULE_TOPIC_XXXX';
export const TIMER_TOPIC = 'SCHEDULE_TOPIC_TIMER';

export const PROPERTY_REAL_TOPIC = 'REAL_TOPIC';
export const PROPERTY_REAL_QUEUE_ID = 'REAL_QID';
export const PROPERTY_DELAY = 'DELAY';
export const PROPERTY_TIMER_DELIVER_MS = 'TIMER_DELIVER_MS';
export const PROPERTY_DUE = 'TAGS_CODE';

/** Properties only a scheduled (or half) record has; its delivery drops them. */
const SCHEDULING_PROPERTIES = new Set([PROPERTY_REAL_TOPIC, PROPERTY_REAL_QUEUE_ID,
  PROPERTY_DELAY, PROPERTY_TIMER_DELIVER_MS, PROPERTY_DUE, 'TRAN_MSG', 'PGROUP',
  'TAGS', 'KEYS', 'UNIQ_KEY']);

/** Where a scheduled record goes and when. */
export interface Schedule {
  /** The schedule queue: SCHEDULE_TOPIC and level - 1, or TIMER_TOPIC and 0. */
  readonly topic: string;
  readonly queueId: number;
  readonly dueMs: number;
  /** DELAY or TIMER_DELIVER_MS, and their value. */
  readonly mark: readonly [string, string];
}

/** The record that holds `message`, bound for `realTopic`/`realQueueId`, until it is due. */
export function scheduledRecord(message: NormalizedMessage, realQueueId: number, body: Uint8Array,
  sysFlag: number, schedule: Schedule, extra: Readonly<Record<string, string>> = {}):
  RecordInput {
  return {
    topic: schedule.topic, queueId: schedule.queueId, body, sysFlag, tags: message.tags,
    keys: message.keys,
    properties: { ...message.properties, ...extra, [PROPERTY_REAL_TOPIC]: message.topic,
      [PROPERTY_REAL_QUEUE_ID]: String(realQueueId), [PROPERTY_DUE]: String(schedule.dueMs),
      [schedule.mark[0]]: schedule.mark[1] },
  };
}

/** When a scheduled record is due (ms since the epoch), from its properties. */
export function dueOf(record: StoredRecord): number {
  const due = Number(record.properties[PROPERTY_DUE]);
  return Number.isFinite(due) ? due : record.storeTimestamp;
}

/**
 * The record to store when `record` is due: its topic and queue restored, the scheduling
 * properties dropped, the id its producer was given kept. Null when it names no topic.
 */
export function restoredRecord(record: StoredRecord): RecordInput | null {
  const topic = record.properties[PROPERTY_REAL_TOPIC];
  const queueId = Number(record.properties[PROPERTY_REAL_QUEUE_ID] ?? '0');
  if (topic === undefined || !Number.isInteger(queueId) || queueId < 0) return null;
  // fromEntries: a property named `__proto__` stays a property.
  const properties = Object.fromEntries(Object.entries(record.properties)
    .filter(([key]) => !SCHEDULING_PROPERTIES.has(key)));
  if (properties[PROPERTY_ORIGIN_MESSAGE_ID] === undefined) {
    properties[PROPERTY_ORIGIN_MESSAGE_ID] = createMessageId(record.physicalOffset,
      record.checksum);
  }
  return {
    topic, queueId, body: record.body, sysFlag: record.sysFlag & SYSFLAG_COMPRESSED,
    tags: record.tags,
    keys: record.keys.length > 0 ? record.keys : undefined, properties,
    reconsumeTimes: record.reconsumeTimes, bornTimestamp: record.bornTimestamp,
  };
}
