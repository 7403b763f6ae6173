/**
 * The operator's side of a MessageStore (issue 4): stats(), browse, resetConsumerOffset and
 * resendDeadLetters, with their refusals (bad input, running consumers, read-only stores).
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/store/clock.js';
import { useTempDirs } from '../support/backends.js';
import { backendOptions } from '../support/test-backend.js';
import { errorOf, rejection } from '../support/errors.js';
import type { PocketMQError } from '../../lib/errors.js';
import {
  openStore, Recorder, sendMany, settle, startPush, until,
} from '../support/messaging.js';
import { MessageStore } from '../../lib/message-store.js';
import { storeInternals } from '../../lib/internal.js';

const tmp = useTempDirs();

function codeOf(x: (() => unknown) | PocketMQError): string {
  return typeof x === 'function' ? errorOf(x).code : x.code;
}

describe('stats()', () => {
  it('counts appends, times appends and flushes, and sizes topics and group backlogs', async () => {
    const store = await openStore(tmp.make());
    try {
      await store.createTopic('t', { queueNums: 2 });
      const producer = store.createProducer({ group: 'pg' });
      const before = await store.stats();
      expect(before.appended).toEqual({ messages: 0, bytes: 0 });
      await sendMany(producer, 't', 100);
      await storeInternals(store).engine.flushed();
      const pull = store.createPullConsumer({ group: 'cg',
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      pull.subscribe('t', '*');
      let got = 0;
      while (got < 30) got += (await pull.poll(1000)).length;
      await pull.commit();
      const s = await store.stats();
      expect(s.role).toBe('owner');
      expect(s.appended.messages).toBe(100);
      expect(s.appended.bytes).toBe(s.commitLog.maxOffset);
      // One append in 16 is timed.
      expect(s.appendLatency.count).toBe(6);
      expect(s.flushLatency.count).toBeGreaterThanOrEqual(1);
      expect(s.commitLog.flushedOffset).toBe(s.commitLog.maxOffset);
      expect(s.commitLog.segments).toBe(1);
      // Files take what they hold (they grow as they fill): the log and a little more.
      expect(s.disk.storeBytes).toBeGreaterThanOrEqual(s.commitLog.maxOffset);
      expect(s.disk.storeBytes).toBeLessThan(4 * 2 ** 20);
      expect(s.disk.usedRatio).toBeGreaterThan(0);
      expect(s.topics).toEqual([{ topic: 't', queues: 2, messages: 100, maxOffset: 100 }]);
      expect(s.groups).toEqual([{ group: 'cg', topics: ['t'], lag: 100 - got, consumers: 1 }]);
      await pull.shutdown();
    } finally {
      await store.close();
    }
  });
});

describe('browse', () => {
  it('pages through a queue from any offset, clamped into [min, max]', async () => {
    const store = await openStore(tmp.make());
    try {
      await store.createTopic('t', { queueNums: 1 });
      await sendMany(store.createProducer({ group: 'pg' }), 't', 10, (i) => ({ keys: `k${i}` }));
      const first = await store.browse({ topic: 't', queueId: 0, maxNum: 4 });
      expect(first.messages.map((m) => m.body.toString())).toEqual(['m0', 'm1', 'm2', 'm3']);
      expect(first).toMatchObject({ nextOffset: 4, minOffset: 0, maxOffset: 10 });
      expect(first.originTopics).toEqual([null, null, null, null]);
      const next = await store.browse({ topic: 't', offset: first.nextOffset, maxNum: 100 });
      expect(next.messages.map((m) => m.queueOffset)).toEqual([4, 5, 6, 7, 8, 9]);
      expect(next.messages[5]!.keys).toEqual(['k9']);
      const past = await store.browse({ topic: 't', offset: 99 });
      expect(past).toMatchObject({ messages: [], nextOffset: 10 });
      const unknown = await store.browse({ topic: 'nope' });
      expect(unknown).toMatchObject({ messages: [], nextOffset: 0, maxOffset: 0 });
      for (const bad of [{ topic: 't', maxNum: 0 }, { topic: 't', offset: -1 },
        { topic: 't', queueId: 1.5 }, { topic: '../x' }]) {
        expect(['INVALID_OPTION', 'INVALID_TOPIC'])
          .toContain(codeOf(await rejection(store.browse(bad))));
      }
    } finally {
      await store.close();
    }
  });
});

describe('resetConsumerOffset', () => {
  it('moves a group to the earliest, the latest, or a time, and consumers start there',
    async () => {
      const clock = new ManualClock();
      const t0 = clock.now();
      const store = await openStore(tmp.make(), { clock });
      try {
        await store.createTopic('t', { queueNums: 1 });
        const producer = store.createProducer({ group: 'pg' });
        await sendMany(producer, 't', 5);
        clock.advance(60_000);
        await sendMany(producer, 't', 5);
        expect(await store.resetConsumerOffset('cg', 't', 'latest'))
          .toEqual([{ queueId: 0, before: -1, after: 10 }]);
        expect(await store.resetConsumerOffset('cg', 't', { timestamp: t0 + 30_000 }))
          .toEqual([{ queueId: 0, before: 10, after: 5 }]);
        expect((await store.consumerProgress('cg'))[0]).toMatchObject({ consumerOffset: 5,
          lag: 5 });
        const pull = store.createPullConsumer({ group: 'cg' });
        pull.subscribe('t', '*');
        const batch = await pull.poll(1000);
        expect(batch[0]!.queueOffset).toBe(5);
        // A group with a running consumer in this process is refused: its offsets would win.
        expect(codeOf(await rejection(store.resetConsumerOffset('cg', 't', 'earliest'))))
          .toBe('BUSY');
        await pull.shutdown();
        expect((await store.resetConsumerOffset('cg', 't', 'earliest'))[0]!.after).toBe(0);
        for (const [group, topic, to] of [['cg', 'nope', 'latest'], ['bad group', 't', 'latest'],
          ['cg', 't', 'soon'], ['cg', 't', { timestamp: -1 }]] as const) {
          const err = await rejection(store.resetConsumerOffset(group, topic, to as never));
          expect(['INVALID_TOPIC', 'INVALID_OPTION']).toContain(codeOf(err));
        }
      } finally {
        await store.close();
      }
    });

  it('is written at once: a reopened store has the reset offsets', async () => {
    const dir = tmp.make();
    let store = await openStore(dir);
    await sendMany(store.createProducer({ group: 'pg' }), 't', 8);
    await store.resetConsumerOffset('cg', 't', 'latest');
    await store.close();
    store = await openStore(dir);
    try {
      const progress = await store.consumerProgress('cg');
      expect(progress.map((p) => p.lag)).toEqual([0, 0, 0, 0]);
      expect(progress.reduce((n, p) => n + p.consumerOffset, 0)).toBe(8);
    } finally {
      await store.close();
    }
  });
});

describe('resendDeadLetters', () => {
  it('sends dead letters back to their topic once, keeping body, keys and msgId', async () => {
    const store = await openStore(tmp.make(), { messageDelayLevel: '1ms 1ms 1ms 1ms' });
    try {
      await store.createTopic('t', { queueNums: 2 });
      let poisoned = true;
      const rec = new Recorder((msgs) => (poisoned && msgs[0]!.body.toString() === 'poison'
        ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS'));
      const push = await startPush(store, { group: 'g', maxReconsumeTimes: 0 }, 't', rec.listener);
      const producer = store.createProducer({ group: 'pg' });
      const sent = await producer.send({ topic: 't', body: 'poison', keys: 'pk', tags: 'P',
        properties: { why: 'test' } });
      await until(async () => await store.maxOffset('%DLQ%g', 0) === 1, 'a dead letter');
      // A dead letter's browse names the topic it was first sent to.
      const dead = await store.browse({ topic: '%DLQ%g' });
      expect(dead.originTopics).toEqual(['t']);
      expect(dead.messages.map((m) => [m.msgId, m.topic])).toEqual([[sent.msgId, '%DLQ%g']]);
      expect(codeOf(await rejection(store.resendDeadLetters('g')))).toBe('BUSY');
      await push.shutdown();
      expect(await store.resendDeadLetters('g')).toEqual({ resent: 1, remaining: 0 });
      expect(await store.resendDeadLetters('g')).toEqual({ resent: 0, remaining: 0 });
      const copies = await store.queryMessage({ topic: 't', key: 'pk' });
      expect(copies).toHaveLength(2);
      expect(copies[0]).toMatchObject({ msgId: sent.msgId, topic: 't', tags: 'P', keys: ['pk'],
        properties: { why: 'test' }, reconsumeTimes: 0 });
      expect(copies[0]!.body.toString()).toBe('poison');
      // The group consumes it again, now that the listener is fixed.
      poisoned = false;
      const again = new Recorder(() => 'CONSUME_SUCCESS');
      const push2 = await startPush(store, { group: 'g' }, 't', again.listener);
      await until(() => again.messages.some((m) => m.msgId === sent.msgId), 'the resent message');
      await settle();
      await push2.shutdown();
    } finally {
      await store.close();
    }
  });
});

describe('a read-only store refuses every write', () => {
  it('throws STORE_READ_ONLY and still answers reads', async () => {
    const dir = tmp.make();
    const owner = await openStore(dir);
    await sendMany(owner.createProducer({ group: 'pg' }), 't', 3, (i) => ({ keys: `k${i}` }));
    await owner.close();
    const ro = await MessageStore.openReadOnly(dir, backendOptions(dir));
    try {
      expect(ro.role).toBe('readonly');
      expect(codeOf(() => ro.createProducer({ group: 'pg' }))).toBe('STORE_READ_ONLY');
      expect(codeOf(() => ro.createPullConsumer({ group: 'cg' }))).toBe('STORE_READ_ONLY');
      expect(codeOf(() => ro.createPushConsumer({ group: 'cg' }))).toBe('STORE_READ_ONLY');
      expect(codeOf(await rejection(ro.createTopic('u')))).toBe('STORE_READ_ONLY');
      expect(codeOf(await rejection(ro.resetConsumerOffset('cg', 't', 'earliest'))))
        .toBe('STORE_READ_ONLY');
      expect(codeOf(await rejection(ro.resendDeadLetters('cg')))).toBe('STORE_READ_ONLY');
      expect(codeOf(await rejection(storeInternals(ro).engine.putMessage({ topic: 't', queueId: 0,
        body: Buffer.from('x') })))).toBe('STORE_READ_ONLY');
      expect((await ro.queryMessage({ topic: 't', key: 'k2' }))[0]!.body.toString()).toBe('m2');
      expect((await ro.stats()).role).toBe('readonly');
    } finally {
      await ro.close();
    }
  });
});
