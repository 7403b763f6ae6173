/**
 * Reading the message trace back: a message's events from the trace topic, found by msgId.
 */
import { CorruptDataError, PocketMQError } from '../../errors.js';
import { limits } from '../../limits.js';
import type { MessageExt } from '../message.js';
import { TRACE_TOPIC, type TraceEvent, type TraceEventType } from './trace-events.js';

const ORDER: Readonly<Record<TraceEventType, number>> = { PUB: 0, SUB: 1, DLQ: 2 };

/** Messages of `topic` with `key`, newest first, at most `maxNum`. */
export type KeyQuery = (topic: string, key: string, maxNum: number) => MessageExt[];

/**
 * The trace events of `msgId`, oldest first: found by key in RMQ_SYS_TRACE_TOPIC (at most
 * `limits.traceQueryRecords` records, newest first), keeping the events about that message.
 */
export function queryTrace(query: KeyQuery, msgId: string): TraceEvent[] {
  if (typeof msgId !== 'string') {
    throw new PocketMQError('INVALID_OPTION', 'queryTrace takes a msgId string',
      { property: 'msgId' });
  }
  const id = msgId.toUpperCase();
  if (id === '' || /\s/.test(id)) return [];
  const records = query(TRACE_TOPIC, id, limits.traceQueryRecords);
  const events: TraceEvent[] = [];
  for (const record of records) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(record.body.toString('utf8'));
    } catch (err) {
      throw new CorruptDataError(`trace record at ${record.commitLogOffset} is not JSON`,
        { cause: err, offset: record.commitLogOffset, topic: TRACE_TOPIC });
    }
    if (!Array.isArray(parsed)) continue;
    for (const event of parsed as TraceEvent[]) {
      if (event !== null && typeof event === 'object' && event.msgId === id) events.push(event);
    }
  }
  return events.sort((a, b) => a.timestamp - b.timestamp || ORDER[a.type] - ORDER[b.type] ||
    reconsumeOf(a) - reconsumeOf(b));
}

function reconsumeOf(event: TraceEvent): number {
  return event.type === 'PUB' ? -1 : event.reconsumeTimes;
}
