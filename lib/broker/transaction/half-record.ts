/**
 * Transactional messages as records (RocketMQ's half and Op messages):
 *
 * - A half message waits in `RMQ_SYS_TRANS_HALF_TOPIC`, queue 0, invisible to consumers: the
 *   message's body, tags, keys and properties, plus REAL_TOPIC and REAL_QID (where it goes once
 *   committed), TRAN_MSG, PGROUP (its producer group) and TAGS_CODE (the time it was stored,
 *   kept as its ConsumeQueue tag code, so the check-back finds old halves without reading
 *   records). The scheduled-message record, with the store time as its "due" time.
 * - An Op record in `RMQ_SYS_TRANS_OP_HALF_TOPIC`, queue 0, says a half is resolved: its body is
 *   the half's queue offset in decimal, its tag `d` (RocketMQ's REMOVE tag).
 * - A committed half is stored again, restored, in its topic with the half's id
 *   (ORIGIN_MESSAGE_ID), as a scheduled message is at its time.
 * - A half still unresolved after `transactionCheckMax` checks is stored in
 *   `RMQ_SYS_TRANS_CHECK_MAX_TIME_TOPIC`, queue 0, as it was (REAL_TOPIC and all), to inspect.
 */
import {
  SYSFLAG_COMPRESSED, TX_COMMIT, TX_PREPARED, type RecordInput,
} from '../../store/record-codec.js';
import type { StoredRecord } from '../../store/record-decoder.js';
import { createMessageId } from '../message-id.js';
import {
  PROPERTY_ORIGIN_MESSAGE_ID, toMessageExt, type MessageExt, type NormalizedMessage,
} from '../message.js';
import {
  PROPERTY_DUE, PROPERTY_REAL_QUEUE_ID, PROPERTY_REAL_TOPIC, restoredRecord, scheduledRecord,
} from '../schedule/schedule-record.js';

export const TRANS_HALF_TOPIC = 'RMQ_SYS_TRANS_HALF_TOPIC';
export const TRANS_OP_HALF_TOPIC = 'RMQ_SYS_TRANS_OP_HALF_TOPIC';
export const TRANS_CHECK_MAX_TOPIC = 'RMQ_SYS_TRANS_CHECK_MAX_TIME_TOPIC';

export const PROPERTY_TRAN_MSG = 'TRAN_MSG';
export const PROPERTY_PRODUCER_GROUP = 'PGROUP';
/** Properties the codec writes from record fields (tags, keys) or that only a half needs. */
const STORED_APART = new Set([PROPERTY_DUE, 'TAGS', 'KEYS', 'UNIQ_KEY']);
/** The Op record's tag: the half it names is removed from the check-back. */
const OP_TAG = 'd';

/** The record that holds `message`, bound for `realQueueId`, until its transaction ends. */
export function halfRecord(message: NormalizedMessage, realQueueId: number, body: Uint8Array,
  sysFlag: number, group: string, nowMs: number): RecordInput {
  const input = scheduledRecord(message, realQueueId, body, sysFlag,
    { topic: TRANS_HALF_TOPIC, queueId: 0, dueMs: nowMs, mark: [PROPERTY_TRAN_MSG, 'true'] },
    { [PROPERTY_PRODUCER_GROUP]: group });
  return { ...input, sysFlag: sysFlag | TX_PREPARED };
}

/** The Op record that resolves the half at `halfQueueOffset`. */
export function opRecord(halfQueueOffset: number): RecordInput {
  return { topic: TRANS_OP_HALF_TOPIC, queueId: 0, tags: OP_TAG,
    body: Buffer.from(String(halfQueueOffset), 'latin1') };
}

/** The half queue offset an Op record's body names, or null when it names none. */
export function opHalfOffset(body: Uint8Array): number | null {
  if (body.length === 0 || body.length > 16) return null;
  const text = Buffer.from(body.buffer, body.byteOffset, body.length).toString('latin1');
  if (!/^\d+$/.test(text)) return null;
  const offset = Number(text);
  return Number.isSafeInteger(offset) ? offset : null;
}

/** Whether a record is a half message (what an end of transaction may name). */
export function isHalf(record: StoredRecord): boolean {
  return record.topic === TRANS_HALF_TOPIC &&
    record.properties[PROPERTY_REAL_TOPIC] !== undefined;
}

/** The producer group that sent a half message. */
export function groupOf(record: StoredRecord): string | undefined {
  return record.properties[PROPERTY_PRODUCER_GROUP];
}

/** The committed message: restored to its topic, the half's id kept. Null when it names none. */
export function committedRecord(half: StoredRecord): RecordInput | null {
  const input = restoredRecord(half);
  return input === null ? null : { ...input, sysFlag: (input.sysFlag ?? 0) | TX_COMMIT };
}

/** The half as stored for inspection once its checks ran out: its properties and id kept. */
export function checkMaxRecord(half: StoredRecord): RecordInput {
  const properties = Object.fromEntries(Object.entries(half.properties)
    .filter(([key]) => !STORED_APART.has(key)));
  properties[PROPERTY_ORIGIN_MESSAGE_ID] = createMessageId(half.physicalOffset, half.checksum);
  return { topic: TRANS_CHECK_MAX_TOPIC, queueId: 0, body: half.body,
    sysFlag: half.sysFlag & SYSFLAG_COMPRESSED, tags: half.tags,
    keys: half.keys.length > 0 ? half.keys : undefined, properties,
    bornTimestamp: half.bornTimestamp };
}

/**
 * A half message as its producer's `checkLocalTransaction` sees it: the topic and queue it goes
 * to, the half's id (the id the committed message will carry), its body, tags, keys and
 * properties; queueOffset and commitLogOffset are the half's.
 */
export function halfView(half: StoredRecord): MessageExt {
  const view = toMessageExt(half);
  const queueId = Number(half.properties[PROPERTY_REAL_QUEUE_ID] ?? '0');
  return { ...view, topic: half.properties[PROPERTY_REAL_TOPIC] ?? view.topic,
    queueId: Number.isInteger(queueId) ? queueId : 0 };
}
