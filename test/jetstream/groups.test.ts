/**
 * Consumer groups on JetStream, on a real 3-node cluster: clustering instances (on two
 * connections, as two processes would be) share a topic's queues by the allocation strategy
 * and take over each other's queues; broadcasting instances each get every message; a failed
 * listener call is redelivered with reconsumeTimes counting up until the message goes to
 * `%DLQ%<group>`; pull consumers resume a group from what was committed.
 */
import { describe, expect, it } from 'vitest';
import type { MessageExt, MessageQueue } from '../../lib/index.js';
import type { JetStreamPushConsumer } from '../../lib/jetstream/index.js';
import {
  connectStore, eventually, readFromStart, unique, useNatsCluster,
} from './support.js';

const cluster = useNatsCluster();

function queueIds(queues: readonly MessageQueue[]): number[] {
  return queues.map((q) => q.queueId).sort((a, b) => a - b);
}

describe('JetStream consumer groups', () => {
  it('shares the queues of a clustering group among its instances', async () => {
    const [a, b] = [await connectStore(cluster()), await connectStore(cluster())];
    try {
      const topic = unique('shared');
      const group = unique('cg');
      await a.createProducer({ group: 'pg' }).send({ topic, body: 'create the topic' });
      const got = new Map<string, string[]>();
      const start = async (store: typeof a, name: string): Promise<JetStreamPushConsumer> => {
        const c = store.createPushConsumer({ group, instanceName: name });
        c.subscribe(topic);
        c.registerMessageListener((msgs) => {
          got.set(name, [...got.get(name) ?? [], ...msgs.map((m) => m.body.toString())]);
        });
        await c.start();
        return c;
      };
      const first = await start(a, 'first');
      const second = await start(b, 'second');
      await eventually('a split of the 4 queues', () =>
        first.assignment().length === 2 && second.assignment().length === 2);
      expect(queueIds([...first.assignment(), ...second.assignment()])).toEqual([0, 1, 2, 3]);
      const producer = b.createProducer({ group: 'pg' });
      for (let i = 0; i < 40; i++) await producer.send({ topic, body: `m${i}` });
      await eventually('40 messages', () => [...got.values()].flat().length >= 40);
      expect(got.get('first')!.length).toBeGreaterThan(0);
      expect(got.get('second')!.length).toBeGreaterThan(0);
      expect(new Set([...got.values()].flat()).size).toBe(40);
      expect([...got.values()].flat().length).toBe(40);
      // One instance leaves: the other takes every queue, and reads what comes next.
      await second.shutdown();
      await eventually('every queue on the first instance', () =>
        first.assignment().length === 4);
      for (let i = 40; i < 48; i++) await producer.send({ topic, body: `m${i}` });
      await eventually('8 more messages', () => got.get('first')!.filter((m) =>
        Number(m.slice(1)) >= 40).length === 8);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('gives every broadcasting instance every message', async () => {
    const store = await connectStore(cluster());
    try {
      const topic = unique('news');
      const group = unique('bc');
      const got: string[][] = [[], []];
      for (const list of got) {
        const c = store.createPushConsumer({ group, messageModel: 'BROADCASTING' });
        c.subscribe(topic);
        c.registerMessageListener((msgs) => {
          list.push(...msgs.map((m) => m.body.toString()));
        });
        await c.start();
      }
      const producer = store.createProducer({ group: 'pg' });
      for (let i = 0; i < 12; i++) await producer.send({ topic, body: `m${i}` });
      await eventually('12 messages on each instance', () =>
        got.every((list) => list.length === 12));
      for (const list of got) expect(new Set(list).size).toBe(12);
    } finally {
      await store.close();
    }
  });

  it('redelivers failed messages with reconsumeTimes, then moves them to the DLQ', async () => {
    const store = await connectStore(cluster());
    try {
      const topic = unique('flaky');
      const group = unique('retry');
      const deliveries: MessageExt[] = [];
      const errors: unknown[] = [];
      const consumer = store.createPushConsumer({ group, maxReconsumeTimes: 2,
        onError: (err) => errors.push(err) });
      consumer.subscribe(topic);
      consumer.registerMessageListener((msgs) => {
        deliveries.push(...msgs);
        const body = msgs[0]!.body.toString();
        if (body === 'throws') throw new Error('listener failed');
        if (body === 'later') return 'RECONSUME_LATER';
        if (body === 'once' && msgs[0]!.reconsumeTimes === 0) return 'RECONSUME_LATER';
        return undefined;
      });
      await consumer.start();
      const producer = store.createProducer({ group: 'pg' });
      const sent = new Map<string, string>();
      for (const body of ['throws', 'later', 'once', 'fine']) {
        sent.set(body, (await producer.send({ topic, body, tags: 'T', keys: [`k-${body}`],
          properties: { p: body } })).msgId);
      }
      const dead = (await readFromStart(store, `%DLQ%${group}`, 2, '*', 20_000)).messages;
      const times = (body: string): number[] => deliveries
        .filter((m) => m.body.toString() === body).map((m) => m.reconsumeTimes);
      expect(times('throws')).toEqual([0, 1, 2]);
      expect(times('later')).toEqual([0, 1, 2]);
      expect(times('once')).toEqual([0, 1]);
      expect(times('fine')).toEqual([0]);
      for (const m of deliveries) expect(m.msgId).toBe(sent.get(m.body.toString()));
      expect(errors.length).toBe(3);
      expect((errors[0] as Error).message).toBe('listener failed');
      expect(dead.map((m) => m.body.toString()).sort()).toEqual(['later', 'throws']);
      for (const m of dead) {
        const body = m.body.toString();
        expect(m.msgId).toBe(sent.get(body));
        expect(m.topic).toBe(`%DLQ%${group}`);
        expect(m.tags).toBe('T');
        expect(m.keys).toEqual([`k-${body}`]);
        expect(m.properties).toEqual({ p: body });
        expect(m.reconsumeTimes).toBe(2);
      }
    } finally {
      await store.close();
    }
  });

  it('retries an orderly batch in place, keeping the queue in order', async () => {
    const store = await connectStore(cluster());
    try {
      const topic = unique('ordered');
      const group = unique('orderly');
      const seen: string[] = [];
      const consumer = store.createPushConsumer({ group, orderly: true, maxReconsumeTimes: 2,
        suspendCurrentQueueTimeMillis: 50, onError: () => undefined });
      consumer.subscribe(topic);
      consumer.registerMessageListener((msgs) => {
        const m = msgs[0]!;
        seen.push(`${m.body.toString()}#${m.reconsumeTimes}`);
        if (m.body.toString() === 'bad') throw new Error('always fails');
        return m.body.toString() === 'slow' && m.reconsumeTimes < 1 ? 'RECONSUME_LATER'
          : 'CONSUME_SUCCESS';
      });
      await consumer.start();
      const producer = store.createProducer({ group: 'pg' });
      for (const body of ['a', 'slow', 'b', 'bad', 'c']) {
        await producer.send({ topic, body }, { shardingKey: 'one' });
      }
      await eventually('c after every retry', () => seen.includes('c#0'));
      expect(seen).toEqual(['a#0', 'slow#0', 'slow#1', 'b#0', 'bad#0', 'bad#1', 'bad#2', 'c#0']);
      const dead = (await readFromStart(store, `%DLQ%${group}`, 1)).messages;
      expect(dead.map((m) => m.body.toString())).toEqual(['bad']);
    } finally {
      await store.close();
    }
  });

  it('resumes a pull group from what it committed, and gives back what it did not', async () => {
    const store = await connectStore(cluster(), { ackWaitMs: 3000 });
    try {
      const topic = unique('pulled');
      const group = unique('pg');
      const producer = store.createProducer({ group: 'pg' });
      for (let i = 0; i < 10; i++) {
        await producer.send({ topic, body: `m${i}` }, { shardingKey: 'one' });
      }
      const open = (): ReturnType<typeof store.createPullConsumer> => {
        const c = store.createPullConsumer({ group, autoCommit: false, pullBatchSize: 4,
          consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
        c.subscribe(topic);
        return c;
      };
      const first = open();
      const pollBodies = async (count: number): Promise<string[]> => {
        const bodies: string[] = [];
        while (bodies.length < count) {
          const batch = await first.poll(5000);
          expect(batch.length).toBeGreaterThan(0);
          expect(batch.length).toBeLessThanOrEqual(4);
          bodies.push(...batch.map((m) => m.body.toString()));
        }
        return bodies;
      };
      // A poll may return fewer than pullBatchSize: at least 4 are taken, at most 7, in order.
      const all = Array.from({ length: 10 }, (_, i) => `m${i}`);
      const taken = await pollBodies(4);
      expect(taken).toEqual(all.slice(0, taken.length));
      await first.commit();
      const committed = all.slice(0, taken.length);
      const more = await pollBodies(1);
      expect(more).toEqual(all.slice(taken.length, taken.length + more.length));
      await first.shutdown();
      // The next instance starts after the commit: what was given back comes again (at least
      // once: JetStream may deliver one of them twice, or hold one until ackWaitMs), and
      // nothing that was committed.
      const second = open();
      const given = all.slice(taken.length);
      const rest = new Set<string>();
      const deadline = Date.now() + 15_000;
      for await (const m of second) {
        expect(committed).not.toContain(m.body.toString());
        rest.add(m.body.toString());
        if (rest.size === given.length || Date.now() > deadline) break;
      }
      expect([...rest].sort()).toEqual(given);
      await second.shutdown();
    } finally {
      await store.close();
    }
  });
});
