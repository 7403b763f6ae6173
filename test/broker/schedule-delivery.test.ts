/**
 * Delivering due scheduled messages when the log cannot be flushed (simulator seed 87): a
 * delivery whose record is in its topic counts as delivered, even when the flush after it fails.
 * Each retry used to store one more copy (a failed fdatasync rejects every SYNC_FLUSH wait from
 * then on), and a crash kept them all.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock, storeInternals } from '../../lib/internal.js';
import type { MessageStore } from '../../lib/index.js';
import { limits } from '../../lib/limits.js';
import { useTempDirs } from '../support/backends.js';
import { openStore, settle, until } from '../support/messaging.js';
import {
  SimBackend, type FaultCode, type SimOp,
} from '../support/sim-backend.js';

const tmp = useTempDirs('pmq-schedule-delivery-');

/** Fail the first `op` on a path holding `part` with `code`; returns whether it fired. */
function failOnce(sim: SimBackend, op: SimOp, part: string, code: FaultCode): () => boolean {
  let armed = true;
  sim.failWhen((e) => {
    if (!armed || e.op !== op || !e.path.includes(part)) return null;
    armed = false;
    return code;
  });
  return () => !armed;
}

/** Messages stored in topic `t` (its four queues). */
function copies(store: MessageStore): number {
  const engine = storeInternals(store).engine;
  let n = 0;
  for (let q = 0; q < 4; q++) n += engine.getMaxOffsetInQueue('t', q);
  return n;
}

describe('delivery of scheduled messages', () => {
  it('stores each once when the flush after it fails (seed 87)', async () => {
    const clock = new ManualClock();
    const sim = new SimBackend({ seed: 87 });
    const store = await openStore(tmp.make(), { backend: sim, clock, flushDiskType: 'SYNC_FLUSH',
      messageDelayLevel: '1s 5s', defaultTopicQueueNums: 4 });
    try {
      const producer = store.createProducer({ group: 'pg' });
      await store.createTopic('t', { queueNums: 4 });
      await producer.send({ topic: 't', body: 'level', delayTimeLevel: 1 });
      await producer.send({ topic: 't', body: 'timer', deliverAt: clock.now() + 2000 });
      // The commit log's next fdatasync fails (what a delivery's append would wait for).
      const fired = failOnce(sim, 'flush', '/commitlog/', 'EIO');
      clock.advance(2000);
      await until(() => copies(store) === 2, 'both delivered');
      // Retries would come every limits.scheduleRetryMs: give them ten chances.
      for (let ms = 0; ms < 10 * limits.scheduleRetryMs; ms += 1000) {
        clock.advance(1000);
        await settle(2);
      }
      expect(fired()).toBe(true);
      expect(copies(store)).toBe(2);
    } finally {
      await store.close().catch(() => undefined);
    }
  });

  it('a level delivers what follows a failed delivery once, and the failed one later', async () => {
    const clock = new ManualClock();
    const sim = new SimBackend({ seed: 1 });
    const store = await openStore(tmp.make(), { backend: sim, clock, messageDelayLevel: '1s' });
    try {
      await store.createTopic('t', { queueNums: 4 });
      const producer = store.createProducer({ group: 'pg' });
      const first = await producer.send({ topic: 'a', body: 'first', delayTimeLevel: 1 });
      const second = await producer.send({ topic: 't', body: 'second', delayTimeLevel: 1 });
      // The first one's ConsumeQueue file cannot be made once: nothing of it is stored.
      const fired = failOnce(sim, 'open', '/consumequeue/a/', 'ENOSPC');
      clock.advance(1000);
      await until(() => copies(store) === 1, 'the second one');
      expect(fired()).toBe(true);
      expect(await store.cancelScheduled(second.msgId)).toBe(false); // delivered already
      clock.advance(limits.scheduleRetryMs);
      const engine = storeInternals(store).engine;
      await until(() => engine.getMaxOffsetInQueue('a', first.queueId) === 1, 'the first one');
      await settle();
      expect(copies(store)).toBe(1);
      expect(await store.cancelScheduled(first.msgId)).toBe(false);
    } finally {
      await store.close();
    }
  });
});
