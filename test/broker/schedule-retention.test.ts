/**
 * Retention and scheduled messages (simulator seed 45): a delayed message's record outlives
 * `fileReservedTimeHours` until its delivery is on disk. The store's first retention pass at
 * open used to run before the broker held the schedule queues' records, and deleted a segment
 * with a message due an hour later; a delivery only in memory (progress not yet written) could
 * lose its record too.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock, storeInternals } from '../../lib/internal.js';
import type { MessageStore } from '../../lib/index.js';
import { useTempDirs } from '../support/backends.js';
import { openStore, Recorder, startPush, until } from '../support/messaging.js';

const tmp = useTempDirs('pmq-schedule-retention-');
const HOUR = 3_600_000;

/** 64 KiB segments that expire after `hours`; progress written only every hour. */
function open(dir: string, clock: ManualClock, hours = 1): Promise<MessageStore> {
  return openStore(dir, { clock, commitLogSegmentSize: 64 * 1024, fileReservedTimeHours: hours,
    persistConsumerOffsetIntervalMs: HOUR });
}

/** Fill a few segments (so a scheduled record's segment is neither the last nor new). */
async function fill(store: MessageStore): Promise<void> {
  const producer = store.createProducer({ group: 'filler' });
  for (let i = 0; i < 2000; i++) await producer.send({ topic: 'u', body: 'y'.repeat(100) });
}

async function consume(store: MessageStore): Promise<Recorder> {
  const rec = new Recorder();
  await startPush(store, { group: 'cg', consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' }, 't',
    rec.listener);
  return rec;
}

describe('retention and scheduled messages', () => {
  it('the open\'s retention pass keeps a message due later (seed 45)', async () => {
    const clock = new ManualClock();
    const dir = tmp.make();
    let store = await open(dir, clock);
    await fill(store);
    const level = await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'level',
      delayTimeLevel: 18 }); // 2 h
    const timer = await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'timer',
      deliverAt: clock.now() + 3 * HOUR });
    await fill(store);
    await store.close();
    clock.advance(1.5 * HOUR);
    store = await open(dir, clock);
    try {
      const engine = storeInternals(store).engine;
      expect(engine.commitLogMinOffset).toBeGreaterThan(0); // the pass ran: the older filler went
      expect(engine.commitLogMinOffset).toBeLessThanOrEqual(level.commitLogOffset);
      const rec = await consume(store);
      clock.advance(HOUR);
      await until(() => rec.calls.length === 1, 'the delayed message');
      // Timers are taken in a window at a time: let the clock run in steps.
      await until(() => {
        if (rec.calls.length === 2) return true;
        clock.advance(30_000);
        return false;
      }, 'the timer message');
      expect(rec.messages.map((m) => m.msgId)).toEqual([level.msgId, timer.msgId]);
    } finally {
      await store.close();
    }
  });

  it('keeps a delivered message\'s record until its progress is on disk', async () => {
    const clock = new ManualClock();
    const store = await open(tmp.make(), clock, 0.25);
    try {
      const engine = storeInternals(store).engine;
      const timer = await store.createProducer({ group: 'pg' }).send({ topic: 't',
        body: 'timer', deliverAt: clock.now() + 1000 });
      await fill(store);
      await engine.flushed();
      clock.advance(1000);
      await until(async () => await store.maxOffset('t', timer.queueId) === 1, 'the delivery');
      await engine.flushed();
      // Expired and delivered, but the progress file still says pending: a crash now would
      // lose a delivery not yet flushed, and then only its record could bring it back.
      clock.advance(HOUR / 2);
      expect((await engine.runRetention()).deletedSegments).toBe(0);
      expect(engine.commitLogMinOffset).toBe(0);
      // The hourly progress write: now it may go.
      clock.advance(HOUR / 2);
      await until(async () => {
        await engine.runRetention();
        return engine.commitLogMinOffset > timer.commitLogOffset;
      }, 'the record deleted');
    } finally {
      await store.close();
    }
  });
});
