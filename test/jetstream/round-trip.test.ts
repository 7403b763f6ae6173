/**
 * JetStreamStore on a real 3-node cluster: a message goes in and comes out with its tags,
 * keys, properties and body; ids are stable and viewMessage finds them; sharding keys keep
 * order per key; tag and SQL92 filters run as in the embedded store.
 */
import { describe, expect, it } from 'vitest';
import { MessageSelector, type MessageExt } from '../../lib/index.js';
import { queueOfShardingKey } from '../../lib/broker/sharding.js';
import type { Connection } from '../../lib/jetstream/connection.js';
import { publishMessage } from '../../lib/jetstream/publish.js';
import {
  connectStore, eventually, readFromStart, unique, useNatsCluster,
} from './support.js';

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
      expect(m.properties).toEqual({ region: 'eu', amount: '150', vip: 'true',
        'ключ': 'значение' });
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

describe('JetStreamStore queues and filters', () => {
  it('keeps the order of each sharding key, on the queue the embedded hash picks', async () => {
    const store = await connectStore(cluster(), { defaultTopicQueueNums: 3 });
    try {
      const topic = unique('seq');
      const producer = store.createProducer({ group: 'pg' });
      const keys = ['order-1', 'order-2', 'order-3', 'order-4'];
      const sends = [];
      for (let i = 0; i < 40; i++) {
        const key = keys[i % keys.length]!;
        sends.push(producer.send({ topic, body: `${key}:${i}` }, { shardingKey: key }));
      }
      const results = await Promise.all(sends);
      for (const [i, r] of results.entries()) {
        expect(r.queueId).toBe(queueOfShardingKey(keys[i % keys.length]!, 3));
      }
      const seen = new Map<string, number[]>();
      const consumer = store.createPushConsumer({ group: unique('cg'), orderly: true,
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      consumer.subscribe(topic);
      consumer.registerMessageListener((msgs) => {
        for (const m of msgs) {
          const [key, n] = m.body.toString().split(':');
          seen.set(key!, [...seen.get(key!) ?? [], Number(n)]);
        }
      });
      await consumer.start();
      await eventually('every message', () => [...seen.values()].flat().length === 40);
      for (const [k, list] of seen) {
        const i = keys.indexOf(k);
        expect(list).toEqual(Array.from({ length: 10 }, (_, j) => i + j * keys.length));
      }
    } finally {
      await store.close();
    }
  });

  it('filters by tag and by SQL92 on the consumer, as the embedded store does', async () => {
    const store = await connectStore(cluster());
    try {
      const topic = unique('filtered');
      const producer = store.createProducer({ group: 'pg' });
      const sent = [
        { tags: 'TagA', properties: { region: 'eu', amount: 150 } },
        { tags: 'TagB', properties: { region: 'eu', amount: 50 } },
        { tags: 'TagC', properties: { region: 'us', amount: 500 } },
        { properties: { region: 'eu', amount: '101' } },
      ];
      for (const [i, m] of sent.entries()) await producer.send({ topic, body: `m${i}`, ...m });
      const read = async (selector: string | MessageSelector): Promise<string[]> => {
        const { messages, consumer } = await readFromStart(store, topic, 2, selector);
        expect(await consumer.poll(300)).toEqual([]);
        await consumer.shutdown();
        return messages.map((m) => m.body.toString()).sort();
      };
      expect(await read('TagA || TagC')).toEqual(['m0', 'm2']);
      expect(await read(MessageSelector.bySql("region = 'eu' AND amount > 100")))
        .toEqual(['m0', 'm3']);
    } finally {
      await store.close();
    }
  });
});

describe('JetStreamStore producer retries', () => {
  it('stores a send once however often it is tried (Nats-Msg-Id)', async () => {
    const store = await connectStore(cluster());
    try {
      const topic = unique('dedup');
      const connection = (store as unknown as { connection: Connection }).connection;
      await connection.topicForSend(topic);
      const request = { message: { topic, body: Buffer.from('once'), tags: undefined, keys: [],
        properties: {} }, queueId: 1, natsMsgId: 'producer-x.1', bornMs: Date.now(),
      retry: true };
      const first = await publishMessage(connection, request);
      const again = await publishMessage(connection, request);
      expect(first.duplicate).toBe(false);
      expect(again).toEqual({ sequence: first.sequence, duplicate: true });
      const other = await publishMessage(connection, { ...request, natsMsgId: 'producer-x.2' });
      expect(other.sequence).toBe(first.sequence + 1);
    } finally {
      await store.close();
    }
  });
});

describe('JetStreamStore limits', () => {
  it('says NOT_SUPPORTED for what JetStream cannot carry yet, and checks input', async () => {
    const store = await connectStore(cluster());
    try {
      const topic = unique('limits');
      const producer = store.createProducer({ group: 'pg' });
      const code = async (p: Promise<unknown>): Promise<unknown> =>
        p.then(() => 'resolved', (e: { code?: unknown }) => e.code);
      expect(await code(producer.sendBatch([{ topic, body: 'a' }]))).toBe('NOT_SUPPORTED');
      expect(await code(producer.send({ topic, body: 'a', delayTimeLevel: 3 })))
        .toBe('NOT_SUPPORTED');
      expect(await code(producer.send({ topic, body: 'a', deliverAt: Date.now() + 1000 })))
        .toBe('NOT_SUPPORTED');
      expect(() => store.createProducer({ group: 'tx', transactionListener: {} as never }))
        .toThrow(expect.objectContaining({ code: 'NOT_SUPPORTED' }));
      expect(await code(store.queryMessage({ topic, key: 'k' }))).toBe('NOT_SUPPORTED');
      expect(await code(producer.send({ topic: '%DLQ%x', body: 'a' }))).toBe('INVALID_TOPIC');
      expect(await code(producer.send({ topic, body: '' }))).toBe('INVALID_MESSAGE');
      expect(await code(producer.send({ topic, body: Buffer.alloc(2 * 2 ** 20) })))
        .toBe('MESSAGE_TOO_LARGE');
      const pull = store.createPullConsumer({ group: unique('pull') });
      pull.subscribe(topic);
      expect(() => pull.seek({ topic, queueId: 0 }, 0))
        .toThrow(expect.objectContaining({ code: 'NOT_SUPPORTED' }));
      expect(() => pull.subscribe(topic, MessageSelector.bySql('a >')))
        .toThrow(expect.objectContaining({ code: 'INVALID_FILTER' }));
      await pull.shutdown();
    } finally {
      await store.close();
    }
    expect(() => store.createProducer({ group: 'late' }))
      .toThrow(expect.objectContaining({ code: 'STORE_CLOSED' }));
  });
});
