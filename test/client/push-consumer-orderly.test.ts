/**
 * Orderly push consumers (RocketMQ's ConsumeMessageOrderlyService): messages of one sharding key
 * (one queue) are handled in send order, one batch of a queue at a time, also while a second
 * instance joins and leaves (the queue lock moves a queue only after the old owner's call ended
 * and it committed). RECONSUME_LATER or a throw suspends the queue and retries the same message
 * in place, counting up reconsumeTimes, while later messages of that queue wait behind it.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { MessageExt } from '../../lib/broker/message.js';
import type { ConsumeListener } from '../../lib/client/consume-service.js';
import type { Producer } from '../../lib/client/producer.js';
import type { PushConsumer } from '../../lib/client/push-consumer.js';
import { ManualClock } from '../../lib/store/clock.js';
import { useTempDirs } from '../support/backends.js';
import { mqKey, openStore, Recorder, settle, startPush, until } from '../support/messaging.js';

const tmp = useTempDirs();
const KEYS = 50;
const PER_KEY = 40;

/** Send PER_KEY messages for each of the keys in [from, to) rounds, interleaving keys. */
async function sendRounds(producer: Producer, from: number, to: number): Promise<void> {
  for (let seq = from; seq < to; seq++) {
    for (let k = 0; k < KEYS; k++) {
      await producer.send({ topic: 'o', body: `k${k}:${seq}` }, { shardingKey: `key-${k}` });
    }
  }
}

/** Per key, the sequence numbers in the order the listener got them. */
function sequences(messages: readonly MessageExt[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const m of messages) {
    const [key, seq] = m.body.toString().split(':') as [string, string];
    const list = out.get(key) ?? [];
    list.push(Number(seq));
    out.set(key, list);
  }
  return out;
}

function expectInOrder(messages: readonly MessageExt[], upTo: number): void {
  const seqs = sequences(messages);
  expect(seqs.size).toBe(KEYS);
  const want = [...Array(upTo).keys()];
  for (const [key, list] of seqs) expect(list, key).toEqual(want);
}

/** A listener that takes a few event-loop turns, so calls of different queues overlap. */
function slowly(rec: Recorder): void {
  rec.handle = async () => {
    await yieldToLoop();
    await yieldToLoop();
    return 'CONSUME_SUCCESS';
  };
}

describe('orderly consumption', () => {
  it('handles each sharding key in send order, one batch of a queue at a time', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic('o', { queueNums: 8 });
      const rec = new Recorder();
      slowly(rec);
      const c = await startPush(store, { group: 'og', orderly: true, consumeThreadMax: 8,
        consumeMessageBatchMaxSize: 3 }, 'o', rec.listener);
      const producer = store.createProducer({ group: 'pg' });
      await sendRounds(producer, 0, PER_KEY);
      await until(() => rec.messages.length >= KEYS * PER_KEY, 'every message');
      await settle();
      expectInOrder(rec.messages, PER_KEY);
      expect(rec.maxPerQueue).toBe(1);
      expect(rec.maxInFlight).toBeGreaterThan(1); // queues do run side by side
      expect(rec.maxInFlight).toBeLessThanOrEqual(8);
      for (const call of rec.calls) {
        expect(call.context.orderly).toBe(true);
        expect(call.messages.length).toBeLessThanOrEqual(3);
        const offsets = call.messages.map((m) => m.queueOffset);
        expect(offsets).toEqual(offsets.map((_o, i) => offsets[0]! + i));
      }
      // One key, one queue.
      const queueOfKey = new Map<string, string>();
      for (const m of rec.messages) {
        const key = m.body.toString().split(':')[0]!;
        expect(queueOfKey.get(key) ?? mqKey(m)).toBe(mqKey(m));
        queueOfKey.set(key, mqKey(m));
      }
      await c.shutdown();
    } finally {
      await store.close();
    }
  });

  it('keeps per-key order while a second instance joins and later leaves', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic('o', { queueNums: 8 });
      const rec = new Recorder();
      slowly(rec);
      let handledByB = 0;
      const viaB: ConsumeListener = (msgs, ctx) => {
        handledByB += msgs.length;
        return rec.listener(msgs, ctx);
      };
      const opts = { group: 'og', orderly: true, consumeThreadMax: 4 } as const;
      const a = await startPush(store, opts, 'o', rec.listener);
      const producer = store.createProducer({ group: 'pg' });
      await sendRounds(producer, 0, 10);
      await until(() => rec.messages.length >= 100, 'a has started');
      // b joins while a still has a backlog: queues move mid-way.
      const b: PushConsumer = await startPush(store, opts, 'o', viaB);
      await sendRounds(producer, 10, 25);
      await until(() => handledByB >= 50, 'b handling messages');
      const owned = [...a.assignment(), ...b.assignment()].map(mqKey);
      expect(new Set(owned).size).toBe(owned.length);
      // b leaves while both still have a backlog.
      await sendRounds(producer, 25, PER_KEY);
      await b.shutdown();
      await until(() => a.assignment().length === 8, 'a owning every queue again');
      await until(() => rec.messages.length >= KEYS * PER_KEY, 'every message');
      await settle();
      expect(handledByB).toBeGreaterThan(0);
      expect(handledByB).toBeLessThan(KEYS * PER_KEY);
      expect(rec.maxPerQueue).toBe(1);
      // A clean handover repeats nothing: each key exactly 0..39, in order.
      expectInOrder(rec.messages, PER_KEY);
    } finally {
      await store.close();
    }
  });

  it('RECONSUME_LATER or a throw suspends the queue and retries the message in place',
    async () => {
      const clock = new ManualClock();
      const store = await openStore(tmp.make(), { clock });
      try {
        await store.createTopic('o', { queueNums: 1 });
        const rec = new Recorder((msgs) => {
          const m = msgs[0]!;
          if (m.body.toString() !== 'm1') return 'CONSUME_SUCCESS';
          if (m.reconsumeTimes === 0) return 'RECONSUME_LATER';
          if (m.reconsumeTimes === 1) throw new Error('listener failure');
          return 'CONSUME_SUCCESS';
        });
        await startPush(store, { group: 'og', orderly: true,
          suspendCurrentQueueTimeMillis: 1000 }, 'o', rec.listener);
        const producer = store.createProducer({ group: 'pg' });
        for (let i = 0; i < 5; i++) await producer.send({ topic: 'o', body: `m${i}` });
        await until(() => rec.calls.length === 2, 'm0 and m1');
        await settle();
        // m1 failed: the queue waits, m2 does not overtake it.
        expect(rec.bodies).toEqual(['m0', 'm1']);
        clock.advance(999);
        await settle();
        expect(rec.calls).toHaveLength(2);
        clock.advance(1);
        await until(() => rec.calls.length === 3, 'm1 again');
        await settle();
        expect(rec.calls).toHaveLength(3);
        clock.advance(1000);
        await until(() => rec.messages.length === 7, 'm1 a third time, then the rest');
        expect(rec.bodies).toEqual(['m0', 'm1', 'm1', 'm1', 'm2', 'm3', 'm4']);
        const m1 = rec.messages.filter((m) => m.body.toString() === 'm1');
        expect(m1.map((m) => m.reconsumeTimes)).toEqual([0, 1, 2]);
        expect(new Set(m1.map((m) => m.msgId)).size).toBe(1);
        expect(new Set(m1.map((m) => m.queueOffset)).size).toBe(1);
        const [progress] = await store.consumerProgress('og');
        expect(progress).toMatchObject({ brokerOffset: 5, consumerOffset: 5, lag: 0 });
      } finally {
        await store.close();
      }
    });

  it('an orderly message out of retries goes to the DLQ and the queue moves on', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock });
    try {
      await store.createTopic('o', { queueNums: 1 });
      const rec = new Recorder((msgs) =>
        msgs[0]!.body.toString() === 'bad' ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS');
      await startPush(store, { group: 'og', orderly: true, maxReconsumeTimes: 2,
        suspendCurrentQueueTimeMillis: 10 }, 'o', rec.listener);
      const producer = store.createProducer({ group: 'pg' });
      const bad = await producer.send({ topic: 'o', body: 'bad', keys: 'bad-key' });
      await producer.send({ topic: 'o', body: 'after' });
      // The queue pauses 10 ms (on the clock) after each failure: move time on as it waits.
      await until(() => {
        clock.advance(1);
        return rec.bodies.includes('after');
      }, 'three deliveries, then the next message');
      expect(rec.bodies).toEqual(['bad', 'bad', 'bad', 'after']);
      const dead = await store.queryMessage({ topic: '%DLQ%og', key: 'bad-key' });
      expect(dead.map((m) => m.msgId)).toEqual([bad.msgId]);
    } finally {
      await store.close();
    }
  });
});
