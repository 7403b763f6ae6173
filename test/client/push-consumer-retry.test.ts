/**
 * Concurrent push consumers' retries (RocketMQ's ConsumeMessageConcurrentlyService): a failed
 * message goes to the group's retry topic through the delay of level 3 + reconsumeTimes and
 * comes back with reconsumeTimes counted up and everything else as sent, while its queue moves
 * on at once; it survives a restart; after maxReconsumeTimes redeliveries it goes to
 * %DLQ%<group>, where pull and push consumers and queryMessage find it with its msgId.
 * Broadcasting never retries.
 */
import { describe, expect, it } from 'vitest';
import type { MessageExt } from '../../lib/broker/message.js';
import { limits } from '../../lib/limits.js';
import { storeInternals } from '../../lib/internal.js';
import { ManualClock } from '../../lib/store/clock.js';
import { useTempDirs } from '../support/backends.js';
import {
  lagOf, openStore, Recorder, sendMany, settle, startPush, until,
} from '../support/messaging.js';

const tmp = useTempDirs();

function pick(m: MessageExt): object {
  return { msgId: m.msgId, topic: m.topic, tags: m.tags, keys: m.keys, properties: m.properties,
    body: m.body.toString() };
}

describe('concurrent retry', () => {
  it('redelivers after level 3 + reconsumeTimes, counting up, as sent', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock }); // levels 1s 5s 10s 30s 1m ...
    try {
      await store.createTopic('t', { queueNums: 2 });
      const rec = new Recorder((msgs) => {
        const m = msgs[0]!;
        if (m.body.toString() !== 'fail') return 'CONSUME_SUCCESS';
        if (m.reconsumeTimes === 0) return 'RECONSUME_LATER';
        if (m.reconsumeTimes === 1) throw new Error('listener failure');
        return 'CONSUME_SUCCESS';
      });
      await startPush(store, { group: 'g' }, 't', rec.listener);
      const producer = store.createProducer({ group: 'pg' });
      const sent = await producer.send({ topic: 't', tags: 'T', keys: ['k1', 'k2'], body: 'fail',
        properties: { a: '1' } });
      await until(() => rec.calls.length === 1, 'the first delivery');
      // Other messages flow while the failed one waits.
      await sendMany(producer, 't', 20);
      await until(() => rec.calls.length === 21, 'the other 20');
      clock.advance(9_999);
      await settle();
      expect(rec.calls).toHaveLength(21);
      clock.advance(1);
      await until(() => rec.calls.length === 22, 'redelivery 1 after 10 s (level 3)');
      clock.advance(29_999);
      await settle();
      expect(rec.calls).toHaveLength(22);
      clock.advance(1);
      await until(() => rec.calls.length === 23, 'redelivery 2 after 30 s (level 4)');
      clock.advance(3_600_000);
      await settle();
      expect(rec.calls).toHaveLength(23); // it succeeded: never again
      const tries = rec.messages.filter((m) => m.msgId === sent.msgId);
      expect(tries.map((m) => m.reconsumeTimes)).toEqual([0, 1, 2]);
      for (const m of tries) {
        expect(pick(m)).toEqual({ msgId: sent.msgId, topic: 't', tags: 'T', keys: ['k1', 'k2'],
          properties: { a: '1' }, body: 'fail' });
      }
      expect([tries[0]!.queueId, tries[0]!.queueOffset]).toEqual([sent.queueId,
        sent.queueOffset]);
      // The redeliveries came from the group's retry topic.
      expect(rec.calls.filter((c) => c.messages[0]!.msgId === sent.msgId)
        .map((c) => c.context.messageQueue.topic)).toEqual(['t', '%RETRY%g', '%RETRY%g']);
      const progress = await store.consumerProgress('g');
      expect(progress.map((p) => [p.topic, p.lag])).toEqual([['%RETRY%g', 0], ['t', 0],
        ['t', 0]]);
    } finally {
      await store.close();
    }
  });

  it('the queue moves on at once; the failed message comes back after a restart', async () => {
    const clock = new ManualClock();
    const dir = tmp.make();
    let store = await openStore(dir, { clock });
    try {
      await store.createTopic('t', { queueNums: 1 });
      const rec = new Recorder((msgs) =>
        msgs[0]!.body.toString() === 'm2' && msgs[0]!.reconsumeTimes === 0
          ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS');
      await startPush(store, { group: 'g' }, 't', rec.listener);
      const producer = store.createProducer({ group: 'pg' });
      await sendMany(producer, 't', 6);
      await until(() => rec.calls.length === 6, 'six deliveries');
      await until(async () => (await store.consumerProgress('g'))
        .some((p) => p.topic === 't' && p.consumerOffset === 6), 'the offset past m2');
      await store.close();
      // A restart before the retry is due: it is on disk, due 10 s after the failure.
      store = await openStore(dir, { clock });
      const next = new Recorder();
      await startPush(store, { group: 'g' }, 't', next.listener);
      await settle();
      expect(next.calls).toHaveLength(0);
      clock.advance(10_000);
      await until(() => next.calls.length === 1, 'm2 again');
      expect(next.bodies).toEqual(['m2']);
      expect(next.messages[0]!.reconsumeTimes).toBe(1);
      await until(async () => await lagOf(store, 'g', '%RETRY%g') === 0, 'retry acknowledged');
    } finally {
      await store.close();
    }
  });

  it('after maxReconsumeTimes redeliveries the message goes to %DLQ%<group>', async () => {
    const store = await openStore(tmp.make(), {
      messageDelayLevel: '1ms 1ms 2ms 2ms 3ms 3ms 4ms',
    });
    try {
      await store.createTopic('t', { queueNums: 2 });
      const rec = new Recorder((msgs) =>
        msgs[0]!.body.toString() === 'poison' ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS');
      await startPush(store, { group: 'g', maxReconsumeTimes: 3 }, 't', rec.listener);
      const producer = store.createProducer({ group: 'pg' });
      const poison = await producer.send({ topic: 't', body: 'poison', keys: 'pk', tags: 'P',
        properties: { why: 'test' } });
      await sendMany(producer, 't', 10);
      const tries = (): MessageExt[] => rec.messages.filter((m) => m.msgId === poison.msgId);
      await until(() => tries().length === 4, '1 + maxReconsumeTimes deliveries');
      expect(tries().map((m) => m.reconsumeTimes)).toEqual([0, 1, 2, 3]);
      await until(async () => (await store.queryMessage({ topic: '%DLQ%g', key: 'pk' }))
        .length > 0, 'the dead letter');
      await until(async () => await lagOf(store, 'g', 't') === 0, 'lag 0 on t');
      const dead = await store.queryMessage({ topic: '%DLQ%g', key: 'pk' });
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ msgId: poison.msgId, tags: 'P', keys: ['pk'],
        properties: { why: 'test' }, topic: '%DLQ%g' });
      expect(dead[0]!.body.toString()).toBe('poison');
      const progress = await store.consumerProgress('g');
      expect(progress.filter((p) => p.topic === 't').map((p) => p.lag)).toEqual([0, 0]);
      await settle();
      expect(tries()).toHaveLength(4); // never delivered again to the group

      const pull = store.createPullConsumer({ group: 'dlq-pull',
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      pull.subscribe('%DLQ%g', '*');
      const pulled = await pull.poll(5000);
      expect(pulled.map((m) => m.msgId)).toEqual([poison.msgId]);
      await pull.shutdown();
      const fromDlq = new Recorder();
      await startPush(store, { group: 'dlq-push', consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' },
        '%DLQ%g', fromDlq.listener);
      await until(() => fromDlq.messages.length === 1, 'the dead letter through a push consumer');
      expect(fromDlq.messages[0]!.msgId).toBe(poison.msgId);
    } finally {
      await store.close();
    }
  });

  it('BROADCASTING never retries: a failure is dropped and the offset moves on', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock });
    try {
      await store.createTopic('t', { queueNums: 1 });
      const rec = new Recorder(() => 'RECONSUME_LATER');
      const c = await startPush(store, { group: 'bg', messageModel: 'BROADCASTING',
        instanceName: 'one' }, 't', rec.listener);
      const producer = store.createProducer({ group: 'pg' });
      await sendMany(producer, 't', 3);
      await until(() => rec.calls.length === 3, 'three deliveries');
      clock.advance(3 * 3_600_000);
      await settle();
      expect(rec.bodies).toEqual(['m0', 'm1', 'm2']);
      await c.shutdown();
      // The same instance resumes past them: they were acknowledged, not kept for a retry.
      const again = new Recorder();
      await startPush(store, { group: 'bg', messageModel: 'BROADCASTING', instanceName: 'one' },
        't', again.listener);
      await producer.send({ topic: 't', body: 'm3' });
      await until(() => again.calls.length === 1, 'the next message');
      await settle();
      expect(again.bodies).toEqual(['m3']);
    } finally {
      await store.close();
    }
  });
});

describe('a failed move to the DLQ', () => {
  it.each([false, true])('is tried again, the message not stuck (orderly: %s)', async (orderly) => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock, messageDelayLevel: '1ms 1ms 1ms 1ms' });
    try {
      await store.createTopic('t', { queueNums: 1 });
      // The broker's moves to the DLQ go through its deadLetter: the first two fail.
      const broker = storeInternals(store).broker;
      const moveAll = broker.deadLetter.bind(broker);
      let failures = 2;
      broker.deadLetter = async (group, clientId, messages) => {
        if (failures > 0) {
          failures--;
          return [...messages];
        }
        return moveAll(group, clientId, messages);
      };
      const rec = new Recorder((msgs) =>
        msgs[0]!.body.toString() === 'bad' ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS');
      await startPush(store, { group: 'g', orderly, maxReconsumeTimes: 1,
        suspendCurrentQueueTimeMillis: 1 }, 't', rec.listener);
      const producer = store.createProducer({ group: 'pg' });
      const bad = await producer.send({ topic: 't', body: 'bad', keys: 'bk' });
      await sendMany(producer, 't', 3);
      // Two deliveries (1 + maxReconsumeTimes), then the moves fail twice and succeed.
      await until(async () => {
        clock.advance(limits.deadLetterRetryMs / 10);
        return failures === 0 && await lagOf(store, 'g', 't') === 0;
      }, 'the move to the DLQ after two failures');
      await until(async () => {
        clock.advance(limits.deadLetterRetryMs / 10);
        return (await store.queryMessage({ topic: '%DLQ%g', key: 'bk' })).length === 1;
      }, 'the dead letter');
      const dead = await store.queryMessage({ topic: '%DLQ%g', key: 'bk' });
      expect(dead.map((m) => m.msgId)).toEqual([bad.msgId]);
      expect(rec.messages.filter((m) => m.msgId === bad.msgId)).toHaveLength(2);
      expect(rec.bodies.filter((b) => b !== 'bad')).toEqual(['m0', 'm1', 'm2']);
      expect(await lagOf(store, 'g', 't')).toBe(0);
    } finally {
      await store.close();
    }
  });
});
