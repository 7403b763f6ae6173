/**
 * Read a reopened store whole, the three ways it can be read, and check they agree: the commit
 * log walked from its start; each ConsumeQueue entry (it must point at the record of its topic,
 * queue and offset, with its size); the reader (`getMessage`, the path consumers take); and a
 * sample of index lookups by key. Returns the log's messages in order for the oracle.
 */
import type { MessageExt } from '../../lib/broker/message.js';
import { toMessageExt } from '../../lib/broker/message.js';
import type { MessageStore } from '../../lib/message-store.js';
import { allQueues, idOf, queueName, type Random } from './messages.js';
import { isLaterTopic, LATER_TOPICS } from './later-model.js';
import { violated } from './violation.js';
import { storeInternals } from '../../lib/internal.js';

export interface ScanResult {
  /** The messages of the simulated topics, in log order. */
  readonly records: MessageExt[];
  /** The messages of LATER_TOPICS and of the broker's own topics, in log order. */
  readonly later: MessageExt[];
  /**
   * Ids of messages the log holds copies of in the broker's own topics: a failed push message
   * on its way back (schedule and retry queues) or given up (dead letters).
   */
  readonly copies: ReadonlySet<number>;
  /** Where the log starts (retention deleted what was before). */
  readonly logMin: number;
  /** Where the log ends (the next append's offset). */
  readonly logEnd: number;
}

const INDEX_SAMPLES = 8;

export function scanStore(store: MessageStore, random: Random): ScanResult {
  const engine = storeInternals(store).engine;
  const records: MessageExt[] = [];
  const later: MessageExt[] = [];
  const copies = new Set<number>();
  const byQueue = new Map<string, MessageExt[]>();
  const brokerQueues: { topic: string; queueId: number }[] = [];
  let end = engine.commitLogMinOffset;
  for (const rec of engine.storage.commitLog.iterate(engine.commitLogMinOffset)) {
    const ext = toMessageExt(rec);
    const queue = queueName(ext);
    if (isBrokerTopic(ext.topic)) {
      copies.add(idOf(ext));
      later.push(ext);
      if (!byQueue.has(queue)) brokerQueues.push({ topic: ext.topic, queueId: ext.queueId });
    } else if (isLaterTopic(ext.topic)) {
      later.push(ext);
    } else {
      records.push(ext);
    }
    let list = byQueue.get(queue);
    if (list === undefined) byQueue.set(queue, (list = []));
    list.push(ext);
    end = rec.physicalOffset + rec.size;
  }
  if (end > engine.commitLogMaxOffset) {
    violated(`the log walk ends at ${end}, past the log's max offset ${engine.commitLogMaxOffset}`);
  }
  const laterQueues = LATER_TOPICS.flatMap(({ topic, queues }) =>
    Array.from({ length: queues }, (_, queueId) => ({ topic, queueId })));
  const queues = [...allQueues(), ...laterQueues, ...brokerQueues];
  const known = new Set(queues.map(queueName));
  for (const queue of byQueue.keys()) {
    if (!known.has(queue)) violated(`the log holds a record of unknown queue ${queue}`);
  }
  for (const q of queues) {
    checkQueue(store, q, byQueue.get(queueName(q)) ?? []);
  }
  checkIndex(store, records, random);
  // Where recovery ended: the broker may append at open (scheduled messages falling due).
  return { records, later, copies, logMin: engine.commitLogMinOffset,
    logEnd: engine.recovery?.endOffset ?? engine.commitLogMaxOffset };
}

/** The broker's own topics: delay and timer queues, retry, dead-letter, transaction topics. */
function isBrokerTopic(topic: string): boolean {
  return topic.startsWith('SCHEDULE_TOPIC_') || topic.startsWith('%RETRY%') ||
    topic.startsWith('%DLQ%') || topic.startsWith('RMQ_SYS_TRANS_');
}

/** The ConsumeQueue and the reader of one queue against the log's records of that queue. */
function checkQueue(store: MessageStore, q: { topic: string; queueId: number },
  logged: readonly MessageExt[]): void {
  const engine = storeInternals(store).engine;
  const name = queueName(q);
  const min = engine.getMinOffsetInQueue(q.topic, q.queueId);
  const max = engine.getMaxOffsetInQueue(q.topic, q.queueId);
  const cq = engine.storage.consumeQueues.get(q.topic, q.queueId);
  // Retention may have deleted the queue's first messages (the oracle checks which): the
  // ConsumeQueue starts at the first one the log holds, or is empty ([max, max)) without any.
  const first = logged[0]?.queueOffset ?? max;
  if (min !== first || max !== first + logged.length) {
    const extra = max > first + logged.length ? cq?.get(first + logged.length) ?? null : null;
    const there = extra === null ? null : engine.lookMessageByOffset(extra.physicalOffset);
    violated(`${name}: ConsumeQueue holds [${min}, ${max}), the log ${logged.length} records ` +
      `from ${first}` + (extra === null ? '' : `; entry ${first + logged.length} points at ` +
        `${extra.physicalOffset}, where the log has ${there === null ? 'no record'
          : `${there.topic}/${there.queueId}@${there.queueOffset}`}`));
  }
  for (const ext of logged) {
    const entry = cq?.get(ext.queueOffset) ?? null;
    if (entry === null || entry.physicalOffset !== ext.commitLogOffset ||
      entry.size !== ext.storeSize) {
      violated(`${name}@${ext.queueOffset}: ConsumeQueue entry ${JSON.stringify(entry)}, the ` +
        `log has the record at ${ext.commitLogOffset} (${ext.storeSize} bytes)`);
    }
  }
  for (let from = min; from < max;) {
    const got = engine.getMessage(q.topic, q.queueId, from, 64);
    if (got.records.length === 0) violated(`${name}: getMessage(${from}) gave ${got.status}`);
    for (const rec of got.records) {
      const want = logged[rec.queueOffset - first];
      if (rec.topic !== q.topic || rec.queueId !== q.queueId || want === undefined ||
        rec.physicalOffset !== want.commitLogOffset || rec.queueOffset !== from) {
        violated(`${name}@${from}: getMessage gave ${rec.topic}/${rec.queueId}@` +
          `${rec.queueOffset} at ${rec.physicalOffset}`);
      }
      from += 1;
    }
  }
}

/** A few keys looked up through the index must find exactly their message. */
function checkIndex(store: MessageStore, records: readonly MessageExt[], random: Random): void {
  const keyed = records.filter((r) => r.keys.length > 0);
  for (let i = 0; i < Math.min(INDEX_SAMPLES, keyed.length); i++) {
    const ext = keyed[Math.floor(random() * keyed.length)]!;
    const key = ext.keys[Math.floor(random() * ext.keys.length)]!;
    const found = storeInternals(store).engine.queryMessage(ext.topic, key, 4);
    const ids = found.map((rec) => idOf(toMessageExt(rec)));
    if (ids.length !== 1 || ids[0] !== idOf(ext)) {
      violated(`index: key ${key} of ${ext.topic} finds ${JSON.stringify(ids)}, ` +
        `want [${idOf(ext)}]`);
    }
  }
}
