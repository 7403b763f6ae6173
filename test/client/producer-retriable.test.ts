/**
 * Store failures a producer retries, end to end through the public API: a transient I/O error
 * (EAGAIN from the simulated disk) on the first attempt is retried and the send resolves
 * SEND_OK with the message stored once; EIO is not retried. (test/store-retriable.test.ts:
 * which store failures are retriable.)
 */
import { describe, expect, it } from 'vitest';
import { MessageStore } from '../../lib/index.js';
import { useTempDirs } from '../support/backends.js';
import { rejection } from '../support/errors.js';
import { failFirstQueueFile } from '../support/faults.js';
import { SimBackend } from '../support/sim-backend.js';

const tmp = useTempDirs();
const SEGMENT = 4 * 2 ** 20;

async function storedCount(store: MessageStore, queues: number): Promise<number> {
  let n = 0;
  for (let q = 0; q < queues; q++) n += await store.maxOffset('t', q);
  return n;
}

describe('producer retries of store failures', () => {
  it('a transient I/O error on the first attempt is retried: SEND_OK, stored once', async () => {
    const sim = new SimBackend({ seed: 11 });
    const store = await MessageStore.open(tmp.make(), { backend: sim,
      commitLogSegmentSize: SEGMENT });
    try {
      await store.createTopic('t', { queueNums: 2 });
      const { opens } = failFirstQueueFile(sim, 'EAGAIN');
      const producer = store.createProducer({ group: 'pg', retryTimesWhenSendFailed: 2 });
      const result = await producer.send({ topic: 't', body: 'hello', keys: 'k1' });
      expect(result.status).toBe('SEND_OK');
      expect(sim.faultsFired).toBe(1);
      // The failed attempt's queue file, then only the retry's (on the next queue).
      const failedQueue = (result.queueId + 1) % 2;
      expect(opens[0]).toContain(`/consumequeue/t/${failedQueue}/`);
      expect(opens.length).toBeGreaterThan(1);
      for (const later of opens.slice(1)) {
        expect(later).toContain(`/consumequeue/t/${result.queueId}/`);
      }
      expect(await storedCount(store, 2)).toBe(1);
      const found = await store.queryMessage({ topic: 't', key: 'k1' });
      expect(found.map((m) => m.body.toString())).toEqual(['hello']);
    } finally {
      await store.close();
    }
  });

  it('a non-retriable I/O error is not retried and stores nothing', async () => {
    const sim = new SimBackend({ seed: 12 });
    const store = await MessageStore.open(tmp.make(), { backend: sim,
      commitLogSegmentSize: SEGMENT });
    try {
      await store.createTopic('t', { queueNums: 2 });
      const { opens } = failFirstQueueFile(sim, 'EIO');
      const producer = store.createProducer({ group: 'pg', retryTimesWhenSendFailed: 2 });
      const err = await rejection(producer.send({ topic: 't', body: 'lost' }));
      expect(err).toMatchObject({ code: 'IO_ERROR', retriable: false });
      expect(opens).toHaveLength(1);
      expect(await storedCount(store, 2)).toBe(0);
      expect((await producer.send({ topic: 't', body: 'next' })).status).toBe('SEND_OK');
    } finally {
      await store.close();
    }
  });
});
