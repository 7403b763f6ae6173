import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Broker } from '../../lib/broker/broker.js';
import type { FetchRequest, FetchResult } from '../../lib/broker/port.js';
import {
  MessageSelector, MessageStore, type Message, type MessageStoreOptions, type Producer,
} from '../../lib/index.js';
import { ManualClock } from '../../lib/internal.js';
import { useTempDirs } from '../support/backends.js';
import { backendOptions } from '../support/test-backend.js';
import { storeInternals } from '../../lib/internal.js';

const tmp = useTempDirs();
const Q0 = { topic: 't', queueId: 0 };
const Q1 = { topic: 't', queueId: 1 };

interface Ctx {
  readonly store: MessageStore;
  readonly broker: Broker;
  readonly clock: ManualClock;
  readonly producer: Producer;
  /** Send to one queue of the topic. */
  put(queueId: number, message: Message): Promise<void>;
  fetch(request: Partial<FetchRequest>): FetchResult;
}

/** A store on a ManualClock, its broker (storeInternals) and a producer. */
async function withBroker(options: MessageStoreOptions, fn: (ctx: Ctx) => Promise<void>):
  Promise<void> {
  const clock = new ManualClock();
  const dir = tmp.make();
  const store = await MessageStore.open(dir,
    { commitLogSegmentSize: 4 * 2 ** 20, clock, ...backendOptions(dir), ...options });
  try {
    const broker = storeInternals(store).broker;
    const producer = store.createProducer({ group: 'pg' });
    const put = async (queueId: number, message: Message): Promise<void> => {
      await producer.send(message, { selector: () => queueId });
    };
    const fetch = (request: Partial<FetchRequest>): FetchResult => broker.fetch({
      topic: 't', queueId: 0, offset: 0, maxMessages: 32, selector: MessageSelector.byTag('*'),
      ...request });
    await fn({ store, broker, clock, producer, put, fetch });
  } finally {
    await store.close();
  }
}

const bodies = (r: FetchResult): string[] => r.messages.map((m) => m.body.toString());

/** Let pending promise callbacks and setImmediate work run. */
async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('Broker.fetch statuses', () => {
  it('finds messages of one queue from an offset', async () => {
    await withBroker({}, async ({ put, fetch }) => {
      for (let i = 0; i < 3; i++) await put(0, { topic: 't', body: `m${i}` });
      await put(1, { topic: 't', body: 'other queue' });
      const all = fetch({});
      expect(all).toMatchObject({ status: 'FOUND', nextBeginOffset: 3, minOffset: 0,
        maxOffset: 3 });
      expect(bodies(all)).toEqual(['m0', 'm1', 'm2']);
      expect(all.messages.map((m) => [m.topic, m.queueId, m.queueOffset]))
        .toEqual([['t', 0, 0], ['t', 0, 1], ['t', 0, 2]]);
      const one = fetch({ offset: 1, maxMessages: 1 });
      expect([one.status, bodies(one), one.nextBeginOffset]).toEqual(['FOUND', ['m1'], 2]);
    });
  });

  it('says NO_NEW_MSG for an empty queue and at the max offset', async () => {
    await withBroker({}, async ({ store, put, fetch }) => {
      await store.createTopic('t', { queueNums: 2 });
      expect(fetch({})).toMatchObject({ status: 'NO_NEW_MSG', messages: [], nextBeginOffset: 0 });
      expect(fetch({ topic: 'unknown' })).toMatchObject({ status: 'NO_NEW_MSG', messages: [],
        nextBeginOffset: 0 });
      await put(0, { topic: 't', body: 'a' });
      await put(0, { topic: 't', body: 'b' });
      expect(fetch({ offset: 2 })).toMatchObject({ status: 'NO_NEW_MSG', messages: [],
        nextBeginOffset: 2, maxOffset: 2 });
      expect(fetch({ queueId: 1 })).toMatchObject({ status: 'NO_NEW_MSG', nextBeginOffset: 0 });
    });
  });

  it('says OFFSET_TOO_BIG past the max offset and corrects to the max', async () => {
    await withBroker({}, async ({ put, fetch }) => {
      for (let i = 0; i < 3; i++) await put(0, { topic: 't', body: `m${i}` });
      expect(fetch({ offset: 4 })).toMatchObject({ status: 'OFFSET_TOO_BIG', messages: [],
        nextBeginOffset: 3, maxOffset: 3 });
      expect(fetch({ offset: 1_000_000 })).toMatchObject({ status: 'OFFSET_TOO_BIG',
        nextBeginOffset: 3 });
      expect(bodies(fetch({ offset: fetch({ offset: 99 }).nextBeginOffset - 1 }))).toEqual(['m2']);
    });
  });

  it('corrects an offset past the max of an empty queue to 0', async () => {
    // A consumer offset persisted before a crash lost the tail: waiting at offset 5 of an
    // empty queue would skip the first five messages that arrive.
    await withBroker({}, async ({ store, fetch }) => {
      await store.createTopic('t', { queueNums: 1 });
      const r = fetch({ offset: 5 });
      expect(r.status).toBe('OFFSET_TOO_BIG');
      expect(r.nextBeginOffset).toBe(0);
    });
  });

  it('says OFFSET_TOO_SMALL once retention removed the start of the queue', async () => {
    await withBroker({ commitLogSegmentSize: 64 * 1024, fileReservedTimeHours: 1 },
      async ({ store, clock, put, fetch }) => {
        // 16 KiB incompressible bodies: three per 64 KiB segment, so 12 fill several segments.
        for (let i = 0; i < 12; i++) await put(0, { topic: 't', body: randomBytes(16 * 1024) });
        await storeInternals(store).engine.flushed();
        // Retention runs every cleanResourceIntervalMs, so advancing the clock runs it too.
        clock.advance(2 * 3_600_000);
        await storeInternals(store).engine.runRetention();
        expect(storeInternals(store).engine.commitLogMinOffset).toBeGreaterThan(0);
        const r = fetch({ offset: 0 });
        expect(r.minOffset).toBeGreaterThan(0);
        expect(r).toMatchObject({ status: 'OFFSET_TOO_SMALL', messages: [],
          nextBeginOffset: r.minOffset });
        const resumed = fetch({ offset: r.nextBeginOffset });
        expect(resumed.status).toBe('FOUND');
        expect(resumed.messages[0]!.queueOffset).toBe(r.minOffset);
      });
  });
});

describe('Broker.fetch filters', () => {
  it('says NO_MATCHED_MSG and moves past messages the filter rejects', async () => {
    await withBroker({}, async ({ put, fetch }) => {
      for (let i = 0; i < 3; i++) await put(0, { topic: 't', tags: 'A', body: `a${i}` });
      await put(0, { topic: 't', body: 'untagged' });
      const none = fetch({ selector: MessageSelector.byTag('B') });
      expect(none).toMatchObject({ status: 'NO_MATCHED_MSG', messages: [], nextBeginOffset: 4 });
      await put(0, { topic: 't', tags: 'B', body: 'b0' });
      await put(0, { topic: 't', tags: 'A', body: 'a3' });
      const b = fetch({ offset: none.nextBeginOffset, selector: MessageSelector.byTag('B') });
      expect([b.status, bodies(b), b.nextBeginOffset]).toEqual(['FOUND', ['b0'], 6]);
      const both = fetch({ selector: MessageSelector.byTag('A || B') });
      expect(bodies(both)).toEqual(['a0', 'a1', 'a2', 'b0', 'a3']);
      expect(bodies(fetch({ selector: MessageSelector.byTag('*') }))).toHaveLength(6);
    });
  });

  it('re-checks the tag string after the hash: Aa never matches a BB filter', async () => {
    expect(hash('Aa')).toBe(hash('BB'));
    await withBroker({}, async ({ put, fetch }) => {
      await put(0, { topic: 't', tags: 'Aa', body: 'aa-0' });
      await put(0, { topic: 't', tags: 'Aa', body: 'aa-1' });
      const onlyAa = fetch({ selector: MessageSelector.byTag('BB') });
      expect(onlyAa).toMatchObject({ status: 'NO_MATCHED_MSG', messages: [], nextBeginOffset: 2 });
      await put(0, { topic: 't', tags: 'BB', body: 'bb-0' });
      await put(0, { topic: 't', tags: 'Aa', body: 'aa-2' });
      const bb = fetch({ selector: MessageSelector.byTag('BB') });
      expect(bodies(bb)).toEqual(['bb-0']);
      expect(bb.nextBeginOffset).toBe(4);
      expect(bodies(fetch({ selector: MessageSelector.byTag('Aa') })))
        .toEqual(['aa-0', 'aa-1', 'aa-2']);
      expect(bodies(fetch({ selector: MessageSelector.byTag('BB') })))
        .toEqual(['bb-0']);
    });
  });

  it('filters by SQL92 over properties', async () => {
    await withBroker({}, async ({ put, fetch }) => {
      const send = (body: string, properties?: Record<string, string | number>): Promise<void> =>
        put(0, { topic: 't', body, tags: 'T', properties });
      await send('eu-150', { region: 'eu', amount: 150 });
      await send('eu-50', { region: 'eu', amount: 50 });
      await send('us-500', { region: 'us', amount: 500 });
      await send('none');
      await send('eu-101', { region: 'eu', amount: '101' });
      const filter = MessageSelector.bySql("region = 'eu' AND amount > 100");
      const r = fetch({ selector: filter });
      expect([r.status, bodies(r), r.nextBeginOffset]).toEqual(['FOUND', ['eu-150', 'eu-101'], 5]);
      const none = fetch({ selector: MessageSelector.bySql("region = 'jp'") });
      expect(none).toMatchObject({ status: 'NO_MATCHED_MSG', nextBeginOffset: 5 });
    });
  });

  it('stops at maxBytes but returns at least one message', async () => {
    await withBroker({}, async ({ put, fetch }) => {
      for (let i = 0; i < 5; i++) {
        await put(0, { topic: 't', body: `${i}`.repeat(1000) });
      }
      const size = fetch({ maxMessages: 1 }).messages[0]!.storeSize;
      const one = fetch({ maxBytes: 1 });
      expect([one.status, one.messages.length, one.nextBeginOffset]).toEqual(['FOUND', 1, 1]);
      const two = fetch({ maxBytes: 2 * size });
      expect(two.messages.map((m) => m.queueOffset)).toEqual([0, 1]);
      expect(two.nextBeginOffset).toBe(2);
      expect(fetch({ maxBytes: 2 * size + 1 }).messages).toHaveLength(3);
      expect(fetch({ offset: 3, maxBytes: 10 * size }).messages).toHaveLength(2);
      expect(fetch({ maxBytes: 10 * size, maxMessages: 4 }).messages).toHaveLength(4);
    });
  });
});

describe('Broker.waitForMessage', () => {
  it('resolves true when a send reaches the queue, without moving the clock', async () => {
    await withBroker({}, async ({ broker, put }) => {
      await put(0, { topic: 't', body: 'first' });
      const wait = broker.waitForMessage(Q0, 1, 30_000);
      const other = broker.waitForMessage(Q1, 0, 30_000);
      let settled = false;
      void wait.then(() => { settled = true; });
      await put(2, { topic: 't', body: 'elsewhere' });
      await turns();
      expect(settled).toBe(false);
      await put(0, { topic: 't', body: 'second' });
      expect(await wait).toBe(true);
      expect(await broker.waitForMessage(Q0, 0, 30_000)).toBe(true);
      await put(1, { topic: 't', body: 'q1' });
      expect(await other).toBe(true);
    });
  });

  it('resolves false once a ManualClock passes the timeout', async () => {
    await withBroker({}, async ({ broker, clock }) => {
      let result: boolean | null = null;
      const wait = broker.waitForMessage(Q0, 0, 5000).then((r) => { result = r; });
      clock.advance(4999);
      await turns();
      expect(result).toBeNull();
      clock.advance(1);
      await wait;
      expect(result).toBe(false);
      expect(await broker.waitForMessage(Q0, 0, 0)).toBe(false);
    });
  });

  it('resolves false when its signal aborts', async () => {
    await withBroker({}, async ({ broker, put }) => {
      const controller = new AbortController();
      const wait = broker.waitForMessage(Q0, 0, 60_000, controller.signal);
      controller.abort();
      expect(await wait).toBe(false);
      expect(await broker.waitForMessage(Q0, 0, 60_000, controller.signal)).toBe(false);
      await put(0, { topic: 't', body: 'late' });
      expect(await broker.waitForMessage(Q0, 0, 60_000, controller.signal)).toBe(true);
    });
  });

  it('waits an unbounded timeout instead of ending at once (system clock)', async () => {
    const store = await MessageStore.open(tmp.make(), { commitLogSegmentSize: 4 * 2 ** 20 });
    try {
      const broker = storeInternals(store).broker;
      let result: boolean | null = null;
      const wait = broker.waitForMessage(Q0, 0, Infinity).then((r) => { result = r; });
      // Node turns an over-large delay into 1 ms; a correct wait is still pending after 20 ms.
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(result).toBeNull();
      await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'x' },
        { selector: () => 0 });
      await wait;
      expect(result).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('releases every waiter with false when the store closes', async () => {
    const store = await MessageStore.open(tmp.make(),
      { commitLogSegmentSize: 4 * 2 ** 20, clock: new ManualClock() });
    const broker = storeInternals(store).broker;
    const waits = [0, 1].map((q) => broker.waitForMessage({ topic: 't', queueId: q }, 0, 60_000));
    await store.close();
    expect(await Promise.all(waits)).toEqual([false, false]);
    expect(await broker.waitForMessage(Q0, 0, 60_000)).toBe(false);
  });
});

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}
