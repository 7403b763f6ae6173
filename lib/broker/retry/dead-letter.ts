/**
 * Dead letters: a message that failed `1 + maxReconsumeTimes` times goes to `%DLQ%<group>` (one
 * queue), keeping its id (ORIGIN_MESSAGE_ID), its topic (RETRY_TOPIC), tags, keys, properties
 * and reconsumeTimes. Each move publishes on `pocketmq:dlq` and, when the store traces, records
 * a DLQ event.
 */
import { channel } from 'node:diagnostics_channel';
import { channels } from '../../channels.js';
import { limits } from '../../limits.js';
import type { BrokerCore } from '../core.js';
import { PROPERTY_ORIGIN_MESSAGE_ID, PROPERTY_RETRY_TOPIC, type MessageExt } from '../message.js';
import { dlqTopic } from '../names.js';
import type { Tracer } from '../trace/tracer.js';

const dlqChannel = channel(channels.dlq);

/** Move one message to the group's DLQ; resolves once it is stored. */
export async function moveToDeadLetter(core: BrokerCore, group: string,
  message: MessageExt): Promise<void> {
  const topic = dlqTopic(group);
  await core.systemTopic(topic, 1);
  await core.engine.putMessage({
    topic, queueId: 0, body: message.body, tags: message.tags, keys: message.keys,
    properties: { ...message.properties, [PROPERTY_ORIGIN_MESSAGE_ID]: message.msgId,
      [PROPERTY_RETRY_TOPIC]: message.topic },
    reconsumeTimes: Math.min(message.reconsumeTimes, limits.maxReconsumeTimes),
    bornTimestamp: message.bornTimestamp,
  });
  if (dlqChannel.hasSubscribers) {
    dlqChannel.publish({ group, topic: message.topic, msgId: message.msgId,
      reconsumeTimes: message.reconsumeTimes });
  }
}

/**
 * Move messages to the group's DLQ one after another; resolves those whose move failed (each
 * failure reported through `onError`), so the caller can try them again later.
 */
export async function deadLetterAll(core: BrokerCore, tracer: Tracer | null, group: string,
  clientId: string, messages: readonly MessageExt[],
  onError: (what: string, err: unknown) => void): Promise<MessageExt[]> {
  const failed: MessageExt[] = [];
  for (const m of messages) {
    try {
      await moveToDeadLetter(core, group, m);
      tracer?.deadLettered(m, group, clientId);
    } catch (err) {
      onError('move to the dead-letter queue failed (tried again later)', err);
      failed.push(m);
    }
  }
  return failed;
}
