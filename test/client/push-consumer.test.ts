/**
 * PushConsumer basics (RocketMQ's DefaultMQPushConsumer): lifecycle and its errors, what the
 * listener is handed, long polling, tag and SQL92 filters, where a new group starts, batch size,
 * the bound on listener calls in flight, shutdown waiting for them, resuming after reopen, and
 * consumerProgress.
 */
import { describe, expect, it } from 'vitest';
import { MessageSelector } from '../../lib/broker/filter/message-selector.js';
import { ManualClock } from '../../lib/store/clock.js';
import { useTempDirs } from '../support/backends.js';
import { storeFiles } from '../support/test-backend.js';
import {
  counts, Gate, openStore, Recorder, sendMany, settle, startPush, until,
} from '../support/messaging.js';

const tmp = useTempDirs();

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('PushConsumer lifecycle', () => {
  it('refuses start without a listener or a subscription, and changes after start', async () => {
    const store = await openStore(tmp.make());
    try {
      const a = store.createPushConsumer({ group: 'g1' });
      a.subscribe('t', '*');
      await expect(a.start()).rejects.toMatchObject({ code: 'INVALID_STATE' });
      const b = store.createPushConsumer({ group: 'g2' });
      b.registerMessageListener(() => 'CONSUME_SUCCESS');
      await expect(b.start()).rejects.toMatchObject({ code: 'INVALID_STATE' });
      a.registerMessageListener(() => 'CONSUME_SUCCESS');
      await a.start();
      expect(codeOf(() => a.subscribe('t2', '*'))).toBe('INVALID_STATE');
      expect(codeOf(() => a.registerMessageListener(() => 'CONSUME_SUCCESS')))
        .toBe('INVALID_STATE');
      await expect(a.start()).rejects.toMatchObject({ code: 'INVALID_STATE' });
      await a.shutdown();
      await a.shutdown(); // idempotent
      expect(codeOf(() => a.subscribe('t3', '*'))).toBe('INVALID_STATE');
    } finally {
      await store.close();
    }
  });

  it('throws INVALID_FILTER at subscribe for a malformed expression', async () => {
    const store = await openStore(tmp.make());
    try {
      const c = store.createPushConsumer({ group: 'g' });
      expect(codeOf(() => c.subscribe('t', 'TagA ||'))).toBe('INVALID_FILTER');
      expect(codeOf(() => c.subscribe('t', 'TagA | TagB'))).toBe('INVALID_FILTER');
      const rawSql = { type: 'SQL92', expression: 'a IN ()' } as unknown as MessageSelector;
      expect(codeOf(() => c.subscribe('t', rawSql))).toBe('INVALID_FILTER');
      expect(codeOf(() => c.subscribe('t', MessageSelector.bySql('a >')))).toBe('INVALID_FILTER');
      // Nothing was subscribed: start still refuses.
      c.registerMessageListener(() => 'CONSUME_SUCCESS');
      await expect(c.start()).rejects.toMatchObject({ code: 'INVALID_STATE' });
    } finally {
      await store.close();
    }
  });
});

describe('PushConsumer delivery', () => {
  it('hands the listener MessageExt[] with every field, and its context', async () => {
    const store = await openStore(tmp.make());
    try {
      await store.createTopic('orders', { queueNums: 2 });
      const rec = new Recorder();
      const c = store.createPushConsumer({ group: 'cg' });
      c.subscribe('orders', '*');
      c.registerMessageListener(rec.listener);
      await c.start();
      expect(c.assignment().map((q) => q.queueId).sort()).toEqual([0, 1]);
      const producer = store.createProducer({ group: 'pg' });
      // Sent after start: long polling wakes the fetch, no clock advance needed.
      const sent = await producer.send({ topic: 'orders', tags: 'TagA', keys: ['k1', 'k2'],
        body: 'hello', properties: { region: 'eu', amount: 7 } });
      await until(() => rec.calls.length === 1, 'the first delivery');
      const [call] = rec.calls;
      expect(call!.messages).toHaveLength(1);
      const m = call!.messages[0]!;
      expect(m).toMatchObject({
        topic: 'orders', tags: 'TagA', keys: ['k1', 'k2'],
        properties: { region: 'eu', amount: '7' },
        msgId: sent.msgId, queueId: sent.queueId, queueOffset: sent.queueOffset,
        commitLogOffset: sent.commitLogOffset, reconsumeTimes: 0,
      });
      expect(Buffer.isBuffer(m.body)).toBe(true);
      expect(m.body.toString()).toBe('hello');
      expect(m.storeSize).toBeGreaterThan(5);
      expect(m.bornTimestamp).toBeGreaterThan(0);
      expect(m.storeTimestamp).toBeGreaterThanOrEqual(m.bornTimestamp);
      expect(call!.context).toEqual({
        messageQueue: { topic: 'orders', queueId: sent.queueId }, group: 'cg', orderly: false,
      });
      await c.shutdown();
    } finally {
      await store.close();
    }
  });

  it('delivers to a consumer started before its topic existed', async () => {
    const store = await openStore(tmp.make());
    try {
      const rec = new Recorder();
      const c = store.createPushConsumer({ group: 'cg' });
      c.subscribe('fresh', '*');
      c.registerMessageListener(rec.listener);
      await c.start();
      expect(c.assignment()).toEqual([]);
      const producer = store.createProducer({ group: 'pg' });
      await sendMany(producer, 'fresh', 12);
      await until(() => rec.messages.length === 12, '12 messages of a topic made after start');
      expect(new Set(rec.bodies).size).toBe(12);
    } finally {
      await store.close();
    }
  });

  it('tag and SQL92 filters deliver only matching messages', async () => {
    const store = await openStore(tmp.make());
    try {
      await store.createTopic('t', { queueNums: 2 });
      const tags = new Recorder();
      const sql = new Recorder();
      const c1 = store.createPushConsumer({ group: 'tags' });
      c1.subscribe('t', 'TagA || TagC');
      c1.registerMessageListener(tags.listener);
      const c2 = store.createPushConsumer({ group: 'sql' });
      c2.subscribe('t', MessageSelector.bySql("region = 'eu' AND amount > 100"));
      c2.registerMessageListener(sql.listener);
      await c1.start();
      await c2.start();
      const producer = store.createProducer({ group: 'pg' });
      const tagOf = ['TagA', 'TagB', 'TagC', undefined];
      await sendMany(producer, 't', 40, (i) => ({
        tags: tagOf[i % 4], properties: { region: i % 2 === 0 ? 'eu' : 'us', amount: i * 10 },
      }));
      const wantTags = [...Array(40).keys()].filter((i) => i % 4 === 0 || i % 4 === 2);
      const wantSql = [...Array(40).keys()].filter((i) => i % 2 === 0 && i * 10 > 100);
      await until(() => tags.messages.length >= wantTags.length &&
        sql.messages.length >= wantSql.length, 'filtered deliveries');
      await settle();
      const idx = (bodies: string[]): number[] =>
        bodies.map((b) => Number(b.slice(1))).sort((a, b) => a - b);
      expect(idx(tags.bodies)).toEqual(wantTags);
      expect(idx(sql.bodies)).toEqual(wantSql);
      for (const m of tags.messages) expect(['TagA', 'TagC']).toContain(m.tags);
    } finally {
      await store.close();
    }
  });

  it('a new group starts at the last offset by default, or first, or a timestamp', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const store = await openStore(tmp.make(), { clock });
    try {
      await store.createTopic('t', { queueNums: 1 });
      const producer = store.createProducer({ group: 'pg' });
      await sendMany(producer, 't', 3, () => ({ tags: 'old' }));
      clock.advance(60_000);
      const cutoff = clock.now();
      await sendMany(producer, 't', 2, () => ({ tags: 'mid' }));
      const start = async (group: string, extra: object): Promise<Recorder> => {
        const rec = new Recorder();
        const c = store.createPushConsumer({ group, ...extra });
        c.subscribe('t', '*');
        c.registerMessageListener(rec.listener);
        await c.start();
        return rec;
      };
      const last = await start('last', {});
      const first = await start('first', { consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      const ts = await start('ts', { consumeFromWhere: 'CONSUME_FROM_TIMESTAMP',
        consumeTimestamp: cutoff });
      await sendMany(producer, 't', 1, () => ({ tags: 'new' }));
      await until(() => first.messages.length === 6 && ts.messages.length === 3 &&
        last.messages.length === 1, 'each group reaches the new message');
      await settle();
      expect(last.messages.map((m) => m.tags)).toEqual(['new']);
      expect(first.messages.map((m) => m.tags)).toEqual(['old', 'old', 'old', 'mid', 'mid', 'new']);
      expect(ts.messages.map((m) => m.tags)).toEqual(['mid', 'mid', 'new']);
    } finally {
      await store.close();
    }
  });
});

describe('PushConsumer batches and concurrency', () => {
  it('batches never exceed consumeMessageBatchMaxSize and fill up with a backlog', async () => {
    const store = await openStore(tmp.make());
    try {
      await store.createTopic('t', { queueNums: 2 });
      const producer = store.createProducer({ group: 'pg' });
      await sendMany(producer, 't', 200);
      const rec = new Recorder();
      const c = store.createPushConsumer({ group: 'cg', consumeMessageBatchMaxSize: 8,
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      c.subscribe('t', '*');
      c.registerMessageListener(rec.listener);
      await c.start();
      await until(() => rec.messages.length >= 200, '200 messages');
      const sizes = rec.calls.map((call) => call.messages.length);
      expect(Math.max(...sizes)).toBe(8);
      expect(sizes.filter((n) => n === 8).length).toBeGreaterThanOrEqual(200 / 8 - 8);
      expect(new Set(rec.bodies).size).toBe(200);
      for (const call of rec.calls) {
        // One batch, one queue, ascending offsets.
        const q = call.context.messageQueue.queueId;
        expect(call.messages.every((m) => m.queueId === q)).toBe(true);
        const offsets = call.messages.map((m) => m.queueOffset);
        expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
      }
    } finally {
      await store.close();
    }
  });

  it('never has more listener calls in flight than consumeThreadMax', async () => {
    const store = await openStore(tmp.make());
    try {
      await store.createTopic('t', { queueNums: 4 });
      const producer = store.createProducer({ group: 'pg' });
      await sendMany(producer, 't', 120);
      const gate = new Gate();
      const rec = new Recorder(async () => {
        await gate.promise;
        return 'CONSUME_SUCCESS';
      });
      const c = store.createPushConsumer({ group: 'cg', consumeThreadMax: 3,
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      c.subscribe('t', '*');
      c.registerMessageListener(rec.listener);
      await c.start();
      await until(() => rec.inFlight === 3, '3 calls in flight');
      await settle();
      expect(rec.inFlight).toBe(3);
      gate.open();
      await until(() => rec.messages.length >= 120, 'all 120 messages');
      expect(rec.maxInFlight).toBe(3);
    } finally {
      await store.close();
    }
  });
});

/** The group's offsets as written in config/consumerOffset.json. */
function offsetsOnDisk(dir: string, group: string): Record<string, unknown> {
  type File = { data: { offsets: Record<string, Record<string, Record<string, unknown>>> } };
  const text = storeFiles(dir).readFile('config/consumerOffset.json')!.toString('utf8');
  const file = JSON.parse(text) as File;
  return file.data.offsets[group]?.['t'] ?? {};
}

describe('PushConsumer shutdown and resume', () => {
  it('shutdown waits for calls in flight and writes offsets; a reopened group resumes',
    async () => {
      const dir = tmp.make();
      // The timed offset write never runs on this clock: only shutdown can write them.
      let store = await openStore(dir, { clock: new ManualClock() });
      const handled: string[] = [];
      try {
        await store.createTopic('t', { queueNums: 2 });
        await sendMany(store.createProducer({ group: 'pg' }), 't', 100);
        const gate = new Gate();
        let finished = 0;
        const rec = new Recorder(async (msgs) => {
          if (handled.length >= 40) await gate.promise;
          handled.push(...msgs.map((m) => m.body.toString()));
          finished++;
          return 'CONSUME_SUCCESS';
        });
        const c = await startPush(store, { group: 'g', consumeThreadMax: 5,
          consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' }, 't', rec.listener);
        await until(() => rec.inFlight === 5 && handled.length >= 40, 'five calls blocked');
        const stopping = c.shutdown();
        let stopped = false;
        void stopping.then(() => {
          stopped = true;
        });
        await settle();
        expect(stopped).toBe(false);
        gate.open();
        await stopping;
        expect(rec.inFlight).toBe(0);
        expect(finished).toBe(rec.calls.length); // every call started also ended
        expect(handled.length).toBeLessThan(100);
        const onDisk = offsetsOnDisk(dir, 'g');
        const committed = Object.values(onDisk).map((e) => (e as { offset: number }).offset);
        expect(committed.reduce((a, b) => a + b, 0)).toBe(handled.length);
      } finally {
        await store.close();
      }
      store = await openStore(dir, { clock: new ManualClock() });
      try {
        const rec = new Recorder();
        // Default CONSUME_FROM_LAST_OFFSET: the group's offsets win over it.
        await startPush(store, { group: 'g' }, 't', rec.listener);
        await until(() => handled.length + rec.messages.length >= 100, 'the rest');
        await settle();
        const all = counts([...handled, ...rec.bodies]);
        expect(all.size).toBe(100);
        expect([...all.values()].every((n) => n === 1)).toBe(true);
      } finally {
        await store.close();
      }
    });

  it('consumerProgress reports brokerOffset, consumerOffset and lag per queue', async () => {
    const store = await openStore(tmp.make());
    try {
      await store.createTopic('t', { queueNums: 4 });
      await sendMany(store.createProducer({ group: 'pg' }), 't', 40);
      const gate = new Gate();
      const rec = new Recorder(async () => {
        await gate.promise;
        return 'CONSUME_SUCCESS';
      });
      await startPush(store, { group: 'g', consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' }, 't',
        rec.listener);
      await until(() => rec.inFlight > 0, 'a call in flight');
      const before = await store.consumerProgress('g');
      expect(before.map((p) => p.queueId)).toEqual([0, 1, 2, 3]);
      for (const p of before) {
        expect(p.topic).toBe('t');
        expect(p.brokerOffset).toBe(10);
        expect(p.lag).toBe(p.brokerOffset - p.consumerOffset);
      }
      expect(before.reduce((n, p) => n + p.lag, 0)).toBe(40);
      gate.open();
      await until(() => rec.messages.length === 40, 'all 40');
      await until(async () => (await store.consumerProgress('g')).every((p) => p.lag === 0),
        'lag 0');
      for (const p of await store.consumerProgress('g')) {
        expect(p).toMatchObject({ brokerOffset: 10, consumerOffset: 10, lag: 0 });
      }
    } finally {
      await store.close();
    }
  });
});

describe('PushConsumer shutdown called twice', () => {
  it('store.close during a consumer shutdown waits for the listener too', async () => {
    const dir = tmp.make();
    let store = await openStore(dir, { clock: new ManualClock() });
    try {
      await store.createTopic('t', { queueNums: 1 });
      await sendMany(store.createProducer({ group: 'pg' }), 't', 10);
      const gate = new Gate();
      let ended = false;
      const rec = new Recorder(async () => {
        await gate.promise;
        ended = true;
        return 'CONSUME_SUCCESS';
      });
      const c = await startPush(store, { group: 'g', consumeThreadMax: 1,
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' }, 't', rec.listener);
      await until(() => rec.inFlight === 1, 'a call in flight');
      const first = c.shutdown();
      const second = c.shutdown();
      const closing = store.close();
      let closed = false;
      void closing.then(() => {
        closed = true;
      });
      await settle();
      expect(closed).toBe(false);
      gate.open();
      await Promise.all([first, second, closing]);
      expect(ended).toBe(true);
      expect(rec.calls).toHaveLength(1);
    } finally {
      await store.close();
    }
    store = await openStore(dir);
    try {
      // The call that ended during close was committed and written.
      const [p] = await store.consumerProgress('g');
      expect(p).toMatchObject({ consumerOffset: 1, lag: 9 });
    } finally {
      await store.close();
    }
  });
});
