/**
 * PullConsumer (RocketMQ's lite pull consumer): poll and its long polling, where a new group
 * starts (consumeFromWhere), and the queue controls seek, position, assign, pause and resume.
 * Commits, `for await` and filters are in pull-consumer-commit.test.ts; groups, restarts and
 * kill -9 in pull-consumer-groups.test.ts and pull-consumer-crash.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { PocketMQError, type MessageQueue } from '../../lib/index.js';
import type { FetchRequest } from '../../lib/broker/port.js';
import { ManualClock, storeInternals } from '../../lib/internal.js';
import { useTempDirs } from '../support/backends.js';
import {
  drain, expectQueueOrder, names, nextTurn, openStore, sendTo, texts, thrownCode, tracked, until,
} from './pull-consumer-helpers.js';

const tmp = useTempDirs();
const FIRST = 'CONSUME_FROM_FIRST_OFFSET';

describe('PullConsumer poll', () => {
  it('returns MessageExt[] with every field, starting the consumer itself', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock });
    try {
      await store.createTopic('T', { queueNums: 1 });
      const producer = store.createProducer({ group: 'pg' });
      const sent = await producer.send({ topic: 'T', tags: 'TagA', keys: ['k-1'], body: 'hello',
        properties: { region: 'eu', amount: 150, vip: true } });
      const consumer = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST });
      consumer.subscribe('T', '*');
      const batch = await consumer.poll(0); // never start()ed, as in the SPEC example
      expect(batch).toHaveLength(1);
      const m = batch[0]!;
      expect(Buffer.isBuffer(m.body)).toBe(true);
      expect(m.body.toString()).toBe('hello');
      expect(m).toMatchObject({ topic: 'T', tags: 'TagA', keys: ['k-1'], msgId: sent.msgId,
        queueId: 0, queueOffset: 0, commitLogOffset: sent.commitLogOffset,
        storeTimestamp: clock.now(), reconsumeTimes: 0 });
      expect(m.storeSize).toBeGreaterThan(m.body.length);
      expect(Number.isSafeInteger(m.bornTimestamp)).toBe(true);
      expect(Object.getPrototypeOf(m.properties)).toBe(Object.prototype);
      expect(m.properties).toEqual({ region: 'eu', amount: '150', vip: 'true' });
      expect(consumer.assignment()).toEqual([{ topic: 'T', queueId: 0 }]);
    } finally {
      await store.close();
    }
  });

  it('delivers each queue in queue-offset order, at most pullBatchSize per poll', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic('T', { queueNums: 2 });
      const producer = store.createProducer({ group: 'pg' });
      await sendTo(producer, 'T', 0, names('a', 12));
      await sendTo(producer, 'T', 1, names('b', 7));
      const consumer = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST,
        pullBatchSize: 5 });
      consumer.subscribe('T', '*');
      const sizes: number[] = [];
      const all = [];
      for (let batch = await consumer.poll(0); batch.length > 0; batch = await consumer.poll(0)) {
        sizes.push(batch.length);
        all.push(...batch);
      }
      expect(Math.max(...sizes)).toBe(5);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(19);
      expectQueueOrder(all);
      expect(texts(all.filter((m) => m.queueId === 0))).toEqual(names('a', 12));
      expect(texts(all.filter((m) => m.queueId === 1))).toEqual(names('b', 7));
    } finally {
      await store.close();
    }
  });

  it('resolves [] once the timeout passes with nothing to read', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock });
    try {
      await store.createTopic('T', { queueNums: 2 });
      const consumer = store.createPullConsumer({ group: 'cg' });
      consumer.subscribe('T', '*');
      await consumer.start();
      const poll = tracked(consumer.poll(5000));
      await nextTurn();
      clock.advance(4999);
      await nextTurn();
      expect(poll.settled).toBe(false);
      clock.advance(1);
      expect(await poll.promise).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('resolves early when a message arrives while it waits (long polling)', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock });
    try {
      await store.createTopic('T', { queueNums: 4 });
      const consumer = store.createPullConsumer({ group: 'cg' });
      consumer.subscribe('T', '*');
      await consumer.start();
      const poll = tracked(consumer.poll(60_000));
      await nextTurn();
      expect(poll.settled).toBe(false);
      await sendTo(store.createProducer({ group: 'pg' }), 'T', 3, ['late']);
      const batch = await poll.promise; // the clock never moved
      expect(texts(batch)).toEqual(['late']);
      expect(batch[0]!.queueId).toBe(3);
    } finally {
      await store.close();
    }
  });

  it('refuses a bad timeout; shutdown ends every waiting poll with []', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      const consumer = store.createPullConsumer({ group: 'cg' });
      consumer.subscribe('T', '*');
      await expect(consumer.poll(-1)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
      await consumer.start();
      const waiting = [tracked(consumer.poll(60_000)), tracked(consumer.poll(60_000))];
      await consumer.shutdown(); // wakes both polls: the clock never moves
      await until('both polls to end', () => waiting.every((w) => w.settled));
      for (const w of waiting) expect(await w.promise).toEqual([]);
      expect(await consumer.poll(0)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  // An in-process broker answers a fetch at once (or throws); a remote one with a promise.
  for (const answer of ['at once', 'with a promise'] as const) {
    it(`a queue that fails after another gave messages (answered ${answer}): those are ` +
      'handed out, the failed queue stays where it was and fails the next poll', async () => {
      const store = await openStore(tmp.make(), { clock: new ManualClock() });
      try {
        await store.createTopic('T', { queueNums: 2 });
        const producer = store.createProducer({ group: 'pg' });
        await sendTo(producer, 'T', 0, names('a', 2));
        await sendTo(producer, 'T', 1, names('b', 2));
        const broker = storeInternals(store).broker;
        const realFetch = broker.fetch.bind(broker);
        let failing = true;
        broker.fetch = (request: FetchRequest) => {
          if (request.queueId === 1 && failing) {
            const err = new PocketMQError('IO_ERROR', 'queue 1 is unreadable');
            if (answer === 'at once') throw err;
            return Promise.reject(err) as never;
          }
          const result = realFetch(request);
          return answer === 'at once' ? result : Promise.resolve(result) as never;
        };
        const consumer = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST });
        consumer.subscribe('T', '*');
        expect(texts(await consumer.poll(0))).toEqual(['a-0', 'a-1']);
        await expect(consumer.poll(0)).rejects.toMatchObject({ code: 'IO_ERROR' });
        failing = false;
        expect(texts(await drain(consumer))).toEqual(['b-0', 'b-1']);
      } finally {
        await store.close();
      }
    });
  }
});

describe('PullConsumer consumeFromWhere', () => {
  it('LAST_OFFSET (default): a new group skips what is stored', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic('T', { queueNums: 2 });
      const producer = store.createProducer({ group: 'pg' });
      await sendTo(producer, 'T', 0, names('old', 3));
      await sendTo(producer, 'T', 1, names('old', 2, 3));
      const consumer = store.createPullConsumer({ group: 'cg' });
      consumer.subscribe('T', '*');
      expect(await consumer.poll(0)).toEqual([]);
      await sendTo(producer, 'T', 1, ['new-0']);
      await sendTo(producer, 'T', 0, ['new-1']);
      expect(texts(await drain(consumer)).sort()).toEqual(['new-0', 'new-1']);
    } finally {
      await store.close();
    }
  });

  it('FIRST_OFFSET: a new group sees everything stored', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic('T', { queueNums: 2 });
      const producer = store.createProducer({ group: 'pg' });
      await sendTo(producer, 'T', 0, names('a', 3));
      await sendTo(producer, 'T', 1, names('b', 2));
      const consumer = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST });
      consumer.subscribe('T', '*');
      const got = await drain(consumer);
      expect(texts(got).sort()).toEqual([...names('a', 3), ...names('b', 2)]);
    } finally {
      await store.close();
    }
  });

  it('TIMESTAMP: starts at the first message stored at or after consumeTimestamp', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock });
    try {
      await store.createTopic('T', { queueNums: 1 });
      const producer = store.createProducer({ group: 'pg' });
      await sendTo(producer, 'T', 0, names('t0', 3));
      clock.advance(10_000);
      const t1 = clock.now();
      await sendTo(producer, 'T', 0, names('t1', 2));
      clock.advance(10_000);
      await sendTo(producer, 'T', 0, ['t2']);
      const at = (group: string, consumeTimestamp: number) => {
        const c = store.createPullConsumer({ group, consumeFromWhere: 'CONSUME_FROM_TIMESTAMP',
          consumeTimestamp });
        c.subscribe('T', '*');
        return drain(c);
      };
      expect(texts(await at('exact', t1))).toEqual(['t1-0', 't1-1', 't2']);
      expect(texts(await at('between', t1 - 5000))).toEqual(['t1-0', 't1-1', 't2']);
      expect(texts(await at('after', t1 + 1))).toEqual(['t2']);
      expect(texts(await at('future', clock.now() + 1))).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

describe('PullConsumer seek and position', () => {
  const q0: MessageQueue = { topic: 'T', queueId: 0 };

  it('seek, seekToBegin and seekToEnd move where the next poll reads', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic('T', { queueNums: 1 });
      await sendTo(store.createProducer({ group: 'pg' }), 'T', 0, names('m', 6));
      const consumer = store.createPullConsumer({ group: 'cg', pullBatchSize: 2 });
      consumer.subscribe('T', '*');
      await consumer.start();
      expect(consumer.position(q0)).toBe(6);
      consumer.seek(q0, 2);
      expect(consumer.position(q0)).toBe(2);
      expect(texts(await consumer.poll(0))).toEqual(['m-2', 'm-3']);
      expect(consumer.position(q0)).toBe(4);
      consumer.seekToBegin(q0);
      expect(consumer.position(q0)).toBe(0);
      expect(texts(await consumer.poll(0))).toEqual(['m-0', 'm-1']);
      consumer.seekToEnd(q0);
      expect(consumer.position(q0)).toBe(6);
      expect(await consumer.poll(0)).toEqual([]);
      consumer.seek(q0, 5);
      expect(texts(await drain(consumer))).toEqual(['m-5']);
    } finally {
      await store.close();
    }
  });

  it('refuses an offset out of range and a queue this consumer does not own', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic('T', { queueNums: 2 });
      await sendTo(store.createProducer({ group: 'pg' }), 'T', 0, names('m', 3));
      const consumer = store.createPullConsumer({ group: 'cg' });
      consumer.assign([q0]);
      expect(thrownCode(() => consumer.seek(q0, 0))).toBe('INVALID_STATE'); // not started
      await consumer.start();
      expect(thrownCode(() => consumer.seek(q0, 4))).toBe('INVALID_OPTION');
      expect(thrownCode(() => consumer.seek(q0, -1))).toBe('INVALID_OPTION');
      expect(thrownCode(() => consumer.seek(q0, 1.5))).toBe('INVALID_OPTION');
      const q1 = { topic: 'T', queueId: 1 };
      expect(thrownCode(() => consumer.seek(q1, 0))).toBe('INVALID_STATE');
      expect(thrownCode(() => consumer.position(q1))).toBe('INVALID_STATE');
      expect(consumer.position(q0)).toBe(3); // the failed seeks moved nothing
    } finally {
      await store.close();
    }
  });
});

describe('PullConsumer assign, pause and resume', () => {
  it('assign reads exactly the queues given', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic('T', { queueNums: 4 });
      const producer = store.createProducer({ group: 'pg' });
      for (let q = 0; q < 4; q++) await sendTo(producer, 'T', q, names(`q${q}`, 3));
      const consumer = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST });
      const mine = [{ topic: 'T', queueId: 1 }, { topic: 'T', queueId: 3 }];
      consumer.assign(mine);
      const got = await drain(consumer);
      expect(consumer.assignment()).toEqual(mine);
      expect(new Set(got.map((m) => m.queueId))).toEqual(new Set([1, 3]));
      expect(texts(got).sort()).toEqual([...names('q1', 3), ...names('q3', 3)]);
      expectQueueOrder(got);
      expect(thrownCode(() => consumer.subscribe('T', '*'))).toBe('INVALID_STATE');
    } finally {
      await store.close();
    }
  });

  it('subscribe then assign is refused, and so is assign then subscribe', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      const subscribed = store.createPullConsumer({ group: 'cg1' });
      subscribed.subscribe('T', '*');
      expect(thrownCode(() => subscribed.assign([{ topic: 'T', queueId: 0 }])))
        .toBe('INVALID_STATE');
      const assigned = store.createPullConsumer({ group: 'cg2' });
      assigned.assign([{ topic: 'T', queueId: 0 }]);
      expect(thrownCode(() => assigned.subscribe('T', '*'))).toBe('INVALID_STATE');
    } finally {
      await store.close();
    }
  });

  it('a paused queue is not read, nor does it end a long poll; resume reads it', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock });
    try {
      await store.createTopic('T', { queueNums: 2 });
      const producer = store.createProducer({ group: 'pg' });
      const q0 = { topic: 'T', queueId: 0 };
      const consumer = store.createPullConsumer({ group: 'cg' });
      consumer.assign([q0, { topic: 'T', queueId: 1 }]);
      await consumer.start();
      consumer.pause([q0]);
      await sendTo(producer, 'T', 0, names('p', 2));
      await sendTo(producer, 'T', 1, names('r', 2));
      expect(texts(await drain(consumer))).toEqual(names('r', 2));
      const waiting = tracked(consumer.poll(60_000));
      await sendTo(producer, 'T', 0, ['p-2']);
      await nextTurn();
      expect(waiting.settled).toBe(false);
      consumer.resume([q0]);
      const resumed = await waiting.promise;
      expect(texts([...resumed, ...await drain(consumer)])).toEqual(names('p', 3));
    } finally {
      await store.close();
    }
  });
});
