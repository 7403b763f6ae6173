/**
 * JetStreamStore on a real 3-node cluster: a message goes in and comes out with its tags,
 * keys, properties and body; ids are stable and viewMessage finds them; sharding keys keep
 * order per key; tag and SQL92 filters run as in the embedded store.
 */
import { describe, expect, it } from 'vitest';
import { MessageSelector, type MessageExt } from '../../lib/index.js';
import { connectStore, eventually, unique, useNatsCluster } from './support.js';

const cluster = useNatsCluster();

describe('JetStreamStore round trip', () => {
  it('delivers a message with its tags, keys, properties and body', async () => {
    const store = await connectStore(cluster());
    try {
      const topic = unique('orders');
      const consumer = store.createPushConsumer({ group: unique('cg'),
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      const got: MessageExt[] = [];
      consumer.subscribe(topic, '*');
      consumer.registerMessageListener(async (msgs) => {
        got.push(...msgs);
      });
      const producer = store.createProducer({ group: 'pg' });
      const sent = await producer.send({ topic, tags: 'TagA', keys: ['order-1', 'ünï'],
        body: 'hello', properties: { region: 'eu', amount: 150, vip: true, 'ключ': 'значение' } });
      expect(sent.status).toBe('SEND_OK');
      expect(sent.topic).toBe(topic);
      await consumer.start();
      await eventually('the message', () => got.length === 1);
      const m = got[0]!;
      expect(m.body.toString()).toBe('hello');
      expect(m.tags).toBe('TagA');
      expect(m.keys).toEqual(['order-1', 'ünï']);
      expect(m.properties).toEqual({ region: 'eu', amount: '150', vip: 'true', 'ключ': 'значение' });
      expect(m.msgId).toBe(sent.msgId);
      expect(m.queueId).toBe(sent.queueId);
      expect(m.queueOffset).toBe(sent.queueOffset);
      expect(m.reconsumeTimes).toBe(0);
      const viewed = await store.viewMessage(sent.msgId);
      expect(viewed?.body.toString()).toBe('hello');
      expect(viewed?.properties.region).toBe('eu');
      expect(await store.viewMessage(`${topic}@999999`)).toBeNull();
      expect(await store.viewMessage('not an id')).toBeNull();
    } finally {
      await store.close();
    }
  });
});
