/**
 * Delayed and scheduled delivery (lib/broker/schedule/): delay levels and deliverAt deliver each
 * message once, at its time, to its topic with its id, tags, keys and properties; cancelling
 * stops one; progress survives a reopen; retention keeps what is still pending.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock, storeInternals } from '../../lib/internal.js';
import type { MessageExt, MessageStore } from '../../lib/index.js';
import { useTempDirs } from '../support/backends.js';
import { openStore, Recorder, settle, startPush, until } from '../support/messaging.js';

const tmp = useTempDirs('pmq-schedule-');
const LEVELS = '1s 5s 10s';

async function consume(store: MessageStore, group = 'cg'): Promise<Recorder> {
  const rec = new Recorder();
  await startPush(store, { group, consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' }, 't',
    rec.listener);
  return rec;
}

/** Advance the clock in steps of `stepMs` until `done`, letting deliveries run in between. */
async function advanceUntil(clock: ManualClock, stepMs: number, done: () => boolean,
  what: string): Promise<void> {
  await until(() => {
    if (done()) return true;
    clock.advance(stepMs);
    return false;
  }, what);
}

describe('delay levels', () => {
  it('deliver after the level\'s delay, as sent, and not before', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock, messageDelayLevel: LEVELS });
    try {
      await store.createTopic('t', { queueNums: 2 });
      const rec = await consume(store);
      const producer = store.createProducer({ group: 'pg' });
      const sent = await producer.send({ topic: 't', body: 'later', tags: 'A', keys: 'k1',
        properties: { p: 'v' }, delayTimeLevel: 2 }, { selector: () => 1 });
      expect(sent).toMatchObject({ status: 'SEND_OK', topic: 't', queueId: 1 });
      clock.advance(4_999);
      await settle();
      expect(rec.calls).toHaveLength(0);
      clock.advance(1);
      await until(() => rec.calls.length === 1, 'the delayed message');
      const m = rec.messages[0]!;
      expect(m).toMatchObject({ msgId: sent.msgId, topic: 't', queueId: 1, tags: 'A',
        keys: ['k1'], properties: { p: 'v' }, reconsumeTimes: 0 });
      expect(m.body.toString()).toBe('later');
      expect(await store.viewMessage(sent.msgId)).not.toBeNull();
      clock.advance(60_000);
      await settle();
      expect(rec.calls).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  it('a level above the last waits the last; level 0 is no delay', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock, messageDelayLevel: LEVELS });
    try {
      const rec = await consume(store);
      const producer = store.createProducer({ group: 'pg' });
      await producer.send({ topic: 't', body: 'now', delayTimeLevel: 0 });
      await producer.send({ topic: 't', body: 'ten', delayTimeLevel: 18 });
      await until(() => rec.bodies.includes('now'), 'the undelayed one');
      clock.advance(9_999);
      await settle();
      expect(rec.bodies).toEqual(['now']);
      clock.advance(1);
      await until(() => rec.bodies.includes('ten'), 'after the last level, 10 s');
    } finally {
      await store.close();
    }
  });
});

describe('deliverAt', () => {
  it('delivers each message once, in time order, none early', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock });
    try {
      const rec = await consume(store);
      const producer = store.createProducer({ group: 'pg' });
      const t0 = clock.now();
      const dues = [7000, 500, 120_000, 3000, 3000, 45_000, 90_000_000];
      for (const [i, d] of dues.entries()) {
        await producer.send({ topic: 't', body: `m${i}`, deliverAt: t0 + d });
      }
      const seenAt = new Map<string, number>();
      rec.handle = (msgs: MessageExt[]) => {
        for (const m of msgs) seenAt.set(m.body.toString(), clock.now());
        return 'CONSUME_SUCCESS';
      };
      await advanceUntil(clock, 250, () => seenAt.size === 6, 'the first six');
      for (const [i, d] of dues.entries()) {
        if (d > 200_000) continue;
        expect(seenAt.get(`m${i}`)! - t0, `m${i}`).toBeGreaterThanOrEqual(d);
        expect(seenAt.get(`m${i}`)! - t0, `m${i}`).toBeLessThan(d + 500);
      }
      expect(rec.bodies).not.toContain('m6');
      expect(rec.calls).toHaveLength(6);
    } finally {
      await store.close();
    }
  });

  it('a time not in the future is delivered at once', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock });
    try {
      const rec = await consume(store);
      const sent = await store.createProducer({ group: 'pg' })
        .send({ topic: 't', body: 'past', deliverAt: clock.now() - 1000 });
      await until(() => rec.calls.length === 1, 'the message');
      expect(rec.messages[0]!.msgId).toBe(sent.msgId);
    } finally {
      await store.close();
    }
  });
});

describe('cancelScheduled', () => {
  it('stops a delayed or timer message before it is due, once', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock, messageDelayLevel: LEVELS });
    try {
      const rec = await consume(store);
      const producer = store.createProducer({ group: 'pg' });
      const level = await producer.send({ topic: 't', body: 'level', delayTimeLevel: 1 });
      const keepLevel = await producer.send({ topic: 't', body: 'kept-level', delayTimeLevel: 1 });
      const timer = await producer.send({ topic: 't', body: 'timer',
        deliverAt: clock.now() + 2000 });
      const keep = await producer.send({ topic: 't', body: 'kept', deliverAt: clock.now() + 2000 });
      expect(await producer.cancelScheduled(level.msgId)).toBe(true);
      expect(await store.cancelScheduled(timer.msgId)).toBe(true);
      expect(await store.cancelScheduled(timer.msgId)).toBe(false);
      expect(await store.cancelScheduled('not an id')).toBe(false);
      const plain = await producer.send({ topic: 't', body: 'plain' });
      expect(await store.cancelScheduled(plain.msgId)).toBe(false);
      await advanceUntil(clock, 500, () => rec.calls.length >= 3, 'the kept ones');
      clock.advance(60_000);
      await settle();
      expect(rec.bodies.sort()).toEqual(['kept', 'kept-level', 'plain']);
      expect(await store.cancelScheduled(keep.msgId)).toBe(false); // delivered already
      expect(await store.cancelScheduled(keepLevel.msgId)).toBe(false);
    } finally {
      await store.close();
    }
  });
});

describe('across a reopen', () => {
  it('pending messages are delivered once after a clean reopen', async () => {
    const clock = new ManualClock();
    const dir = tmp.make();
    let store = await openStore(dir, { clock, messageDelayLevel: LEVELS });
    const producer = store.createProducer({ group: 'pg' });
    await producer.send({ topic: 't', body: 'level-early', delayTimeLevel: 1 });
    await producer.send({ topic: 't', body: 'timer-early', deliverAt: clock.now() + 500 });
    await producer.send({ topic: 't', body: 'level-late', delayTimeLevel: 3 });
    await producer.send({ topic: 't', body: 'timer-late', deliverAt: clock.now() + 20_000 });
    clock.advance(1000);
    await until(async () => await store.maxOffset('t', 0) + await store.maxOffset('t', 1) +
      await store.maxOffset('t', 2) + await store.maxOffset('t', 3) === 2, 'the early two');
    await store.close();
    store = await openStore(dir, { clock, messageDelayLevel: LEVELS });
    try {
      const rec = await consume(store);
      await until(() => rec.calls.length === 2, 'the early two, read from their topic');
      clock.advance(30_000);
      await until(() => rec.calls.length === 4, 'the late two');
      await settle();
      expect(rec.bodies.sort()).toEqual(['level-early', 'level-late', 'timer-early',
        'timer-late']);
    } finally {
      await store.close();
    }
  });
});

describe('what scheduled messages cost', () => {
  it('holds in memory only the timers due within the window', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock });
    try {
      const producer = store.createProducer({ group: 'pg' });
      const t0 = clock.now();
      const n = 20_000;
      const sends: Promise<unknown>[] = [];
      // Spread over an hour: about 1/60 of them fall in each minute.
      for (let i = 0; i < n; i++) {
        const deliverAt = t0 + 1 + (i * 3_600_000) / n;
        sends.push(producer.send({ topic: 't', body: 'x', deliverAt }));
      }
      await Promise.all(sends);
      const broker = storeInternals(store).broker;
      await settle();
      expect(broker.timersInMemory).toBeGreaterThan(0);
      expect(broker.timersInMemory).toBeLessThanOrEqual(n / 60 + 1);
      const rec = await consume(store);
      await advanceUntil(clock, 20_000, () => rec.calls.length === n, 'every timer');
      expect(new Set(rec.messages.map((m) => m.msgId)).size).toBe(n);
    } finally {
      await store.close();
    }
  });

  it('retention keeps the segment of a message not yet due', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock, commitLogSegmentSize: 64 * 1024,
      fileReservedTimeHours: 1 });
    try {
      const producer = store.createProducer({ group: 'pg' });
      const timer = await producer.send({ topic: 't', body: 'x'.repeat(100),
        deliverAt: clock.now() + 3 * 3_600_000 });
      for (let i = 0; i < 2000; i++) await producer.send({ topic: 'u', body: 'y'.repeat(100) });
      const engine = storeInternals(store).engine;
      await engine.flushed();
      clock.advance(2 * 3_600_000);
      await engine.runRetention();
      expect(engine.commitLogMinOffset).toBeLessThanOrEqual(timer.commitLogOffset);
      const rec = await consume(store);
      await advanceUntil(clock, 60_000, () => rec.calls.length === 1, 'the timer message');
      expect(rec.messages[0]!.msgId).toBe(timer.msgId);
    } finally {
      await store.close();
    }
  });
});
