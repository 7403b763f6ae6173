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
import { expectHeldUntilProgressWrite, fillSegments, HOUR } from '../support/retention-hold.js';

const tmp = useTempDirs('pmq-schedule-retention-');

/** 64 KiB segments that expire after `hours`; progress written only every hour. */
function open(dir: string, clock: ManualClock, hours = 1): Promise<MessageStore> {
  return openStore(dir, { clock, commitLogSegmentSize: 64 * 1024, fileReservedTimeHours: hours,
    persistConsumerOffsetIntervalMs: HOUR });
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
    await fillSegments(store);
    const level = await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'level',
      delayTimeLevel: 18 }); // 2 h
    const timer = await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'timer',
      deliverAt: clock.now() + 3 * HOUR });
    await fillSegments(store);
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
      await fillSegments(store);
      await engine.flushed();
      clock.advance(1000);
      await until(async () => await store.maxOffset('t', timer.queueId) === 1, 'the delivery');
      await engine.flushed();
      // Expired and delivered, but the progress file still says pending: a crash now would
      // lose a delivery not yet flushed, and then only its record could bring it back. The
      // hourly progress write lets it go.
      await expectHeldUntilProgressWrite(engine, clock, timer.commitLogOffset,
        'the record deleted');
    } finally {
      await store.close();
    }
  });
});
