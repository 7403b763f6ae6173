/**
 * Push consumer flow control: with a large backlog and a listener that blocks, the messages a
 * consumer holds per queue (fetched, not yet acknowledged) stay under pullThresholdForQueue (plus
 * one pull batch) and under pullThresholdSizeForQueue, the fetch loop waits instead of spinning,
 * and everything is consumed once the listener is released.
 */
import { describe, expect, it } from 'vitest';
import type { MessageStore } from '../../lib/message-store.js';
import type { ProcessQueue } from '../../lib/client/process-queue.js';
import type { PushConsumer } from '../../lib/client/push-consumer.js';
import { limits } from '../../lib/limits.js';
import { pushConsumerInternals, storeInternals } from '../../lib/internal.js';
import { ManualClock } from '../../lib/store/clock.js';
import { useTempDirs } from '../support/backends.js';
import {
  Gate, lagOf, openStore, Recorder, settle, startPush, until,
} from '../support/messaging.js';

const tmp = useTempDirs();
const QUEUES = 2;
const BACKLOG = 20_000;
const BODY = Buffer.alloc(1024, 0x61);

async function fillBacklog(store: MessageStore): Promise<void> {
  await store.createTopic('big', { queueNums: QUEUES });
  const producer = store.createProducer({ group: 'pg', compressMsgBodyOverHowmuch: 1 << 20 });
  for (let i = 0; i < BACKLOG; i += 100) {
    const batch = [...Array(100).keys()].map((j) => ({ topic: 'big', body: BODY,
      keys: `k${i + j}` }));
    await producer.sendBatch(batch);
  }
}

function processQueues(consumer: PushConsumer): ProcessQueue[] {
  return pushConsumerInternals(consumer).processQueues();
}

/** Counts the broker's fetches, to show that a full consumer stops fetching. */
function countFetches(store: MessageStore): { readonly count: number } {
  const broker = storeInternals(store).broker;
  const fetch = broker.fetch.bind(broker);
  const counter = { count: 0 };
  broker.fetch = (request) => {
    counter.count++;
    return fetch(request);
  };
  return counter;
}

interface Held {
  count: number;
  bytes: number;
}

/** Runs the blocked phase and the release; returns the most held in any queue at any check. */
async function drive(store: MessageStore, consumer: PushConsumer, rec: Recorder, gate: Gate,
  fetches: { readonly count: number }): Promise<Held> {
  const max: Held = { count: 0, bytes: 0 };
  const sample = (): void => {
    for (const pq of processQueues(consumer)) {
      max.count = Math.max(max.count, pq.count);
      max.bytes = Math.max(max.bytes, pq.bytes);
    }
  };
  const handle = rec.handle;
  rec.handle = (msgs, ctx, call) => {
    sample();
    return handle(msgs, ctx, call);
  };
  await until(() => rec.inFlight === 4, 'the listener blocked 4 times');
  await until(() => {
    sample();
    return processQueues(consumer).every((pq) => pq.count > 0);
  }, 'both queues hold messages');
  await settle();
  const before = fetches.count;
  await settle();
  sample();
  // Full: the fetch loops wait for acknowledgements instead of spinning.
  expect(fetches.count).toBe(before);
  const held = processQueues(consumer).reduce((n, pq) => n + pq.count, 0);
  expect(held).toBeLessThan(BACKLOG / 4);
  gate.open();
  await until(() => rec.messages.length >= BACKLOG, 'the whole backlog', 60_000);
  sample();
  await until(async () => await lagOf(store, 'g', 'big') === 0, 'lag 0');
  expect(new Set(rec.messages.map((m) => m.keys[0])).size).toBe(BACKLOG);
  return max;
}

function blockingRecorder(gate: Gate): Recorder {
  return new Recorder(async () => {
    await gate.promise;
    return 'CONSUME_SUCCESS';
  });
}

describe('flow control', () => {
  it('holds at most pullThresholdForQueue + one pull batch per queue', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await fillBacklog(store);
      const fetches = countFetches(store);
      const gate = new Gate();
      const rec = blockingRecorder(gate);
      const c = await startPush(store, { group: 'g', consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET',
        pullThresholdForQueue: 100, pullBatchSize: 32, consumeThreadMax: 4 }, 'big',
      rec.listener);
      const max = await drive(store, c, rec, gate, fetches);
      expect(max.count).toBeGreaterThanOrEqual(100);
      expect(max.count).toBeLessThanOrEqual(100 + 32 - 1);
    } finally {
      await store.close();
    }
  });

  it('pullThresholdSizeForQueue bounds the bytes held per queue', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await fillBacklog(store);
      const fetches = countFetches(store);
      const gate = new Gate();
      const rec = blockingRecorder(gate);
      const c = await startPush(store, { group: 'g', consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET',
        pullThresholdForQueue: 65_535, pullThresholdSizeForQueue: 1, pullBatchSize: 32,
        consumeThreadMax: 4 }, 'big', rec.listener);
      const max = await drive(store, c, rec, gate, fetches);
      const size = rec.messages[0]!.storeSize;
      expect(max.bytes).toBeGreaterThanOrEqual(2 ** 20 - 32 * size);
      expect(max.bytes).toBeLessThanOrEqual(2 ** 20 + 32 * size);
      expect(max.count).toBeLessThan(2 ** 20 / 1024 + 32);
    } finally {
      await store.close();
    }
  });
});

describe('fetch loop errors', () => {
  it('a fetch that throws is tried again after limits.fetchRetryDelayMs, the queue not dropped',
    async () => {
      const clock = new ManualClock();
      const store = await openStore(tmp.make(), { clock });
      try {
        await store.createTopic('t', { queueNums: 1 });
        const broker = storeInternals(store).broker;
        const fetch = broker.fetch.bind(broker);
        let failures = 1;
        broker.fetch = (request) => {
          if (failures > 0 && request.offset > 0) {
            failures--;
            throw new Error('injected read failure');
          }
          return fetch(request);
        };
        const rec = new Recorder();
        const c = await startPush(store, { group: 'g' }, 't', rec.listener);
        const producer = store.createProducer({ group: 'pg' });
        await producer.send({ topic: 't', body: 'm0' });
        await until(() => rec.calls.length === 1, 'm0');
        await producer.send({ topic: 't', body: 'm1' }); // its fetch fails
        await until(() => failures === 0, 'the failed fetch');
        await settle();
        expect(rec.bodies).toEqual(['m0']);
        expect(c.assignment()).toHaveLength(1);
        clock.advance(limits.fetchRetryDelayMs);
        await until(() => rec.calls.length === 2, 'm1 after the retry');
        await producer.send({ topic: 't', body: 'm2' });
        await until(() => rec.calls.length === 3, 'm2 by long polling again');
        expect(rec.bodies).toEqual(['m0', 'm1', 'm2']);
      } finally {
        await store.close();
      }
    });
});
