/**
 * What an operator does to a store, RocketMQ's admin operations: browse a queue, reset a
 * group's offsets, resend dead letters, and the topic and group sections of `stats()`.
 * Changing operations refuse a read-only store (STORE_READ_ONLY) and a group with running
 * consumers in this process (BUSY): their in-memory offsets would overwrite the reset.
 */
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import type { BrokerCore } from './core.js';
import {
  PROPERTY_ORIGIN_MESSAGE_ID, PROPERTY_RETRY_TOPIC, toMessageExt, userProperties,
} from './message.js';
import { checkGroupName, checkTopicName, dlqTopic, isSystemTopic } from './names.js';
import type {
  BrowseResult, GroupStats, QueueProgress, ResetTarget, TopicStats,
} from './port.js';

/** Up to `maxNum` messages of one queue from `offset` (clamped into [min, max]). */
export function browse(broker: BrokerCore, topic: string, queueId: number, offset: number,
  maxNum: number): BrowseResult {
  broker.checkOpen();
  checkTopicName(topic);
  intIn('queueId', queueId, 0, limits.maxQueuesPerTopic - 1);
  intIn('offset', offset, 0, Number.MAX_SAFE_INTEGER);
  intIn('maxNum', maxNum, 1, limits.maxBrowseMessages);
  const engine = broker.engine;
  const min = engine.getMinOffsetInQueue(topic, queueId);
  const max = engine.getMaxOffsetInQueue(topic, queueId);
  const from = Math.min(Math.max(offset, min), max);
  const got = from >= max ? null : engine.getMessage(topic, queueId, from, maxNum);
  const records = got === null ? [] : got.records;
  return { messages: records.map(toMessageExt),
    originTopics: records.map((r) => r.properties[PROPERTY_RETRY_TOPIC] ?? null),
    nextOffset: got === null ? from : got.nextBeginOffset, minOffset: min, maxOffset: max };
}

/** Set the group's offset of every queue of `topic`; returns each queue's before and after. */
export async function resetOffset(broker: BrokerCore, group: string, topic: string,
  to: ResetTarget): Promise<{ queueId: number; before: number; after: number }[]> {
  checkChange(broker, group);
  const config = broker.topics.get(checkTopicName(topic));
  if (config === undefined) {
    throw new PocketMQError('INVALID_TOPIC', `no topic ${topic}`, { topic });
  }
  const at = target(to);
  const out: { queueId: number; before: number; after: number }[] = [];
  for (let queueId = 0; queueId < config.queueNums; queueId++) {
    const engine = broker.engine;
    const after = at === 'earliest' ? engine.getMinOffsetInQueue(topic, queueId)
      : at === 'latest' ? engine.getMaxOffsetInQueue(topic, queueId)
        : engine.getOffsetInQueueByTime(topic, queueId, at);
    out.push({ queueId, before: broker.offsets.query(group, topic, queueId), after });
    broker.offsets.commit(group, topic, queueId, after);
  }
  await broker.offsets.persist();
  return out;
}

function target(to: ResetTarget): 'earliest' | 'latest' | number {
  if (to === 'earliest' || to === 'latest') return to;
  const ts = (to as { timestamp?: unknown } | null)?.timestamp;
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) {
    throw new PocketMQError('INVALID_OPTION', "reset to 'earliest', 'latest' or { timestamp } " +
      '(ms since the epoch)', { property: 'to' });
  }
  return ts;
}

/**
 * Send the group's dead letters again to the topics they came from, as new messages with their
 * body, tags, keys, properties and original msgId, from where the last resend stopped (the
 * group's offset on `%DLQ%<group>`, which advances as they go).
 */
export async function resendDeadLetters(broker: BrokerCore, group: string, maxNum: number):
  Promise<{ resent: number; remaining: number }> {
  checkChange(broker, group);
  intIn('maxNum', maxNum, 1, Number.MAX_SAFE_INTEGER);
  const dlq = dlqTopic(group);
  const engine = broker.engine;
  let offset = Math.max(broker.offsets.query(group, dlq, 0), engine.getMinOffsetInQueue(dlq, 0));
  let resent = 0;
  while (resent < maxNum && offset < engine.getMaxOffsetInQueue(dlq, 0)) {
    const page = Math.min(limits.dlqResendReadRecords, maxNum - resent);
    const got = engine.getMessage(dlq, 0, offset, page);
    if (got.records.length === 0) break;
    for (const record of got.records) {
      const original = record.properties[PROPERTY_RETRY_TOPIC];
      if (original !== undefined && !isSystemTopic(original)) {
        const message = toMessageExt(record);
        const config = broker.topicForSend(original);
        await engine.putMessage({
          topic: original, queueId: resent % config.queueNums, body: message.body,
          tags: message.tags, keys: message.keys,
          properties: { ...userProperties(record.properties),
            [PROPERTY_ORIGIN_MESSAGE_ID]: message.msgId },
          bornTimestamp: message.bornTimestamp,
        });
        resent++;
      }
      offset = record.queueOffset + 1;
      broker.offsets.commit(group, dlq, 0, offset);
    }
  }
  await broker.engine.flushed();
  await broker.offsets.persist();
  return { resent, remaining: Math.max(0, engine.getMaxOffsetInQueue(dlq, 0) - offset) };
}

function checkChange(broker: BrokerCore, group: string): void {
  broker.checkWritable();
  checkGroupName(group);
  if (broker.consumers.members(group).length > 0) {
    throw new PocketMQError('BUSY', `group ${group} has running consumers in this process; ` +
      'shut them down first');
  }
}

/** The topic and group sections of `stats()`. */
export function brokerStats(broker: BrokerCore): { topics: TopicStats[]; groups: GroupStats[] } {
  broker.checkOpen();
  const topics = broker.topics.list().map((config) => {
    let messages = 0;
    let maxOffset = 0;
    for (let q = 0; q < config.queueNums; q++) {
      const max = broker.engine.getMaxOffsetInQueue(config.topic, q);
      messages += max - broker.engine.getMinOffsetInQueue(config.topic, q);
      maxOffset += max;
    }
    return { topic: config.topic, queues: config.queueNums, messages, maxOffset };
  });
  const names = new Set([...broker.offsets.groups(), ...broker.consumers.groupNames()]);
  const groups = [...names].sort().map((group) => {
    const progress = consumerProgress(broker, group);
    return {
      group, topics: [...new Set(progress.map((p) => p.topic))],
      lag: progress.reduce((n, p) => n + p.lag, 0),
      consumers: broker.consumers.members(group).length,
    };
  });
  return { topics, groups };
}

/** Per queue of every topic the group consumes: how far it is behind. */
export function consumerProgress(broker: BrokerCore, group: string): QueueProgress[] {
  broker.checkOpen();
  broker.consumers.flushOffsets(group);
  const committed = new Map<string, { offset: number; lastCommitMs: number }>();
  const topics = new Set<string>();
  for (const q of broker.offsets.offsetsOf(group)) {
    committed.set(`${q.topic}\u0000${q.queueId}`, q);
    topics.add(q.topic);
  }
  for (const member of broker.consumers.members(group)) {
    for (const topic of member.topics()) topics.add(topic);
  }
  const engine = broker.engine;
  const out: QueueProgress[] = [];
  for (const topic of [...topics].sort()) {
    const queueNums = broker.topics.get(topic)?.queueNums ?? 0;
    for (let queueId = 0; queueId < queueNums; queueId++) {
      const max = engine.getMaxOffsetInQueue(topic, queueId);
      const c = committed.get(`${topic}\u0000${queueId}`);
      const consumerOffset = c?.offset ?? engine.getMinOffsetInQueue(topic, queueId);
      out.push({ topic, queueId, brokerOffset: max, consumerOffset,
        lag: Math.max(0, max - consumerOffset), lastTimestamp: c?.lastCommitMs ?? 0 });
    }
  }
  return out;
}

function intIn(property: string, v: unknown, min: number, max: number): void {
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) {
    throw new PocketMQError('INVALID_OPTION',
      `${property} must be an integer in [${min}, ${max}], got ${String(v)}`, { property });
  }
}
