/**
 * Store failures a producer retries, end to end through the public API: a transient I/O error
 * (EAGAIN from the simulated disk) on the first attempt is retried and the send resolves
 * SEND_OK with the message stored once; EIO is not retried. (test/store-retriable.test.ts:
 * which store failures are retriable.)
 */
import { describe, expect, it } from 'vitest';
import { MessageStore, type Producer } from '../../lib/index.js';
import { useTempDirs } from '../support/backends.js';
import { rejection } from '../support/errors.js';
import { failFirstQueueFile } from '../support/faults.js';
import { SimBackend, type FaultCode } from '../support/sim-backend.js';

const tmp = useTempDirs();
const SEGMENT = 4 * 2 ** 20;

async function storedCount(store: MessageStore, queues: number): Promise<number> {
  let n = 0;
  for (let q = 0; q < queues; q++) n += await store.maxOffset('t', q);
  return n;
}

/** A store on the simulated disk with topic t (2 queues) whose first queue file fails. */
async function withFailingStore(code: FaultCode, fn: (store: MessageStore, sim: SimBackend,
  producer: Producer, opens: string[]) => Promise<void>): Promise<void> {
  const sim = new SimBackend({ seed: 11 });
  const store = await MessageStore.open(tmp.make(), { backend: sim,
    commitLogSegmentSize: SEGMENT });
  try {
    await store.createTopic('t', { queueNums: 2 });
    const { opens } = failFirstQueueFile(sim, code);
    await fn(store, sim, store.createProducer({ group: 'pg', retryTimesWhenSendFailed: 2 }),
      opens);
  } finally {
    await store.close();
  }
}

describe('producer retries of store failures', () => {
  it('a transient I/O error on the first attempt is retried: SEND_OK, stored once', async () => {
    await withFailingStore('EAGAIN', async (store, sim, producer, opens) => {
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
    });
  });

  it('a non-retriable I/O error is not retried and stores nothing', async () => {
    await withFailingStore('EIO', async (store, _sim, producer, opens) => {
      const err = await rejection(producer.send({ topic: 't', body: 'lost' }));
      expect(err).toMatchObject({ code: 'IO_ERROR', retriable: false });
      expect(opens).toHaveLength(1);
      expect(await storedCount(store, 2)).toBe(0);
      expect((await producer.send({ topic: 't', body: 'next' })).status).toBe('SEND_OK');
    });
  });
});
