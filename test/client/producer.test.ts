import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Broker } from '../../lib/broker/broker.js';
import {
  MessageStore, PocketMQError, type Message, type MessageExt, type MessageStoreOptions,
  type SendResult,
} from '../../lib/index.js';
import type { SendRequest } from '../../lib/broker/port.js';
import { useTempDirs } from '../support/backends.js';
import { backendOptions } from '../support/test-backend.js';
import { rejection } from '../support/errors.js';
import { storeInternals } from '../../lib/internal.js';

const tmp = useTempDirs();

async function withStore(options: MessageStoreOptions,
  fn: (store: MessageStore) => Promise<void>): Promise<void> {
  const dir = tmp.make();
  const store = await MessageStore.open(dir,
    { commitLogSegmentSize: 4 * 2 ** 20, ...backendOptions(dir), ...options });
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

/** The store's broker: the object every producer of the store sends through. */
function brokerOf(store: MessageStore): Broker {
  return storeInternals(store).broker;
}

/** Wait for an asynchronous outcome; fails with `what` after a generous deadline. */
async function until(predicate: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Java's String.hashCode, written out here so the test does not trust the code under test. */
function javaHash(s: string): number {
  let h = 0;
  for (const ch of s) h = (h * 31 + ch.charCodeAt(0)) % 2 ** 32;
  return h >= 2 ** 31 ? h - 2 ** 32 : h;
}

function counts(results: readonly SendResult[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of results) out.set(r.queueId, (out.get(r.queueId) ?? 0) + 1);
  return out;
}

describe('Producer.send', () => {
  it('returns a receipt whose msgId views the same message', async () => {
    await withStore({}, async (store) => {
      const producer = store.createProducer({ group: 'pg' });
      const r = await producer.send({ topic: 'orders', tags: 'TagA', keys: ['k1', 'k2'],
        body: 'hello', properties: { region: 'eu', amount: 150, vip: true, ratio: 1.5 } });
      expect(r.status).toBe('SEND_OK');
      expect(r.topic).toBe('orders');
      expect(r.msgId).toMatch(/^[0-9A-F]{24}$/);
      expect(r.queueId).toBeGreaterThanOrEqual(0);
      expect(r.queueId).toBeLessThan(4);
      expect(r.queueOffset).toBe(0);
      expect(r.commitLogOffset).toBe(0);
      const second = await producer.send({ topic: 'orders', body: 'again' },
        { selector: () => r.queueId });
      expect(second.queueOffset).toBe(1);
      expect(second.commitLogOffset).toBeGreaterThan(r.commitLogOffset);
      expect(second.msgId).not.toBe(r.msgId);

      const m = await store.viewMessage(r.msgId);
      expect(m).not.toBeNull();
      expect(Buffer.isBuffer(m!.body)).toBe(true);
      expect(m!.body.toString()).toBe('hello');
      expect(m!).toMatchObject({ topic: 'orders', tags: 'TagA', keys: ['k1', 'k2'],
        msgId: r.msgId, queueId: r.queueId, queueOffset: 0, commitLogOffset: 0 });
      expect(m!.properties).toEqual({ region: 'eu', amount: '150', vip: 'true', ratio: '1.5' });
      expect((await store.viewMessage(second.msgId))!.body.toString()).toBe('again');
    });
  });

  it('resolves null for unknown, malformed and stale ids', async () => {
    await withStore({}, async (store) => {
      const r = await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'x' });
      const offsetPart = r.msgId.slice(0, 16);
      const sumPart = r.msgId.slice(16);
      const wrongSum = ((Number.parseInt(sumPart, 16) ^ 1) >>> 0).toString(16)
        .toUpperCase().padStart(8, '0');
      const end = storeInternals(store).engine.commitLogMaxOffset;
      const pastEnd = (end + 4096).toString(16).toUpperCase().padStart(16, '0') + sumPart;
      const atEnd = end.toString(16).toUpperCase().padStart(16, '0') + sumPart;
      const midRecord = '0000000000000001' + sumPart;
      const ids: unknown[] = ['', 'nope', r.msgId.slice(1), `${r.msgId}0`,
        `${r.msgId.slice(0, 23)}G`, offsetPart + wrongSum, pastEnd, atEnd, midRecord,
        'FFFFFFFFFFFFFFFF' + sumPart, null, undefined, 42, {}];
      for (const id of ids) {
        expect(await store.viewMessage(id as string), String(id)).toBeNull();
      }
      expect((await store.viewMessage(r.msgId))!.body.toString()).toBe('x');
    });
  });

  it('reports SEND_OK under SYNC_FLUSH once the record is flushed', async () => {
    await withStore({ flushDiskType: 'SYNC_FLUSH' }, async (store) => {
      const r = await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'durable' });
      expect(r.status).toBe('SEND_OK');
      const m = await store.viewMessage(r.msgId);
      expect(storeInternals(store).engine.commitLogFlushedOffset)
        .toBeGreaterThanOrEqual(r.commitLogOffset + m!.storeSize);
    });
  });

  it('reads a single key back as a list and finds it with queryMessage', async () => {
    await withStore({}, async (store) => {
      const producer = store.createProducer({ group: 'pg' });
      const r = await producer.send({ topic: 't', keys: 'k', body: 'keyed' });
      await producer.send({ topic: 't', keys: 'other', body: 'not this one' });
      expect((await store.viewMessage(r.msgId))!.keys).toEqual(['k']);
      const found = await store.queryMessage({ topic: 't', key: 'k' });
      expect(found.map((m) => m.msgId)).toEqual([r.msgId]);
      expect(await store.queryMessage({ topic: 'elsewhere', key: 'k' })).toEqual([]);
    });
  });
});

describe('Producer queue choice', () => {
  it('spreads sends round robin over every queue of the topic', async () => {
    await withStore({}, async (store) => {
      const producer = store.createProducer({ group: 'pg' });
      const results: SendResult[] = [];
      for (let i = 0; i < 12; i++) {
        results.push(await producer.send({ topic: 'rr', body: `m${i}` }));
      }
      expect([...counts(results).entries()].sort()).toEqual([[0, 3], [1, 3], [2, 3], [3, 3]]);
      for (let i = 1; i < results.length; i++) {
        expect(results[i]!.queueId).toBe((results[i - 1]!.queueId + 1) % 4);
      }
    });
  });

  it('sends one sharding key to one queue: |javaHashCode(key)| % queueNums', async () => {
    await withStore({}, async (store) => {
      await store.createTopic('sharded', { queueNums: 7 });
      const producer = store.createProducer({ group: 'pg' });
      // 'polygenelubricants' hashes to Integer.MIN_VALUE; 'order-42' is an ordinary key.
      const keys = ['order-1', 'order-42', 'Aa', 'polygenelubricants', 'zzzzzzzzzz'];
      expect(keys.some((k) => javaHash(k) < 0)).toBe(true);
      for (const key of keys) {
        const expected = Math.abs(javaHash(key)) % 7;
        for (let i = 0; i < 3; i++) {
          const r = await producer.send({ topic: 'sharded', body: `${key}-${i}` },
            { shardingKey: key });
          expect(r.queueId, key).toBe(expected);
        }
      }
      expect(Math.abs(javaHash('Aa')) % 7).toBe(2112 % 7);
    });
  });

  it('lets a selector pick the queue, handing it (queueCount, message, arg)', async () => {
    await withStore({}, async (store) => {
      const producer = store.createProducer({ group: 'pg' });
      const seen: unknown[][] = [];
      const msg: Message = { topic: 'sel', body: 'picked' };
      const r = await producer.send(msg, {
        arg: 3001,
        selector: (queueCount, message, arg) => {
          seen.push([queueCount, message, arg]);
          return (arg as number) % queueCount;
        },
      });
      expect(seen).toEqual([[4, msg, 3001]]);
      expect(seen[0]![1]).toBe(msg);
      expect(r.queueId).toBe(1);
      expect(await store.maxOffset('sel', 1)).toBe(1);
    });
  });

  it('refuses a selector result outside the queues and stores nothing', async () => {
    await withStore({}, async (store) => {
      const producer = store.createProducer({ group: 'pg' });
      for (const bad of [4, -1, 1.5, Number.NaN, '1']) {
        const err = await rejection(producer.send({ topic: 'sel', body: 'x' },
          { selector: () => bad as number }));
        expect(err.code).toBe('INVALID_OPTION');
        expect(err.property).toBe('selector');
      }
      const notAFunction = await rejection(producer.send({ topic: 'sel', body: 'x' },
        { selector: 3 as unknown as () => number }));
      expect(notAFunction.code).toBe('INVALID_OPTION');
      expect(storeInternals(store).engine.commitLogMaxOffset).toBe(0);
    });
  });
});

describe('Producer.sendOneway', () => {
  it('returns undefined at once and stores the message soon after', async () => {
    await withStore({}, async (store) => {
      const producer = store.createProducer({ group: 'pg' });
      const returned: unknown = producer.sendOneway({ topic: 'ow', keys: 'one', body: 'fire' });
      expect(returned).toBeUndefined();
      await until(async () => (await store.queryMessage({ topic: 'ow', key: 'one' })).length === 1,
        'the oneway message to be stored');
      const [m] = await store.queryMessage({ topic: 'ow', key: 'one' });
      expect(m!.body.toString()).toBe('fire');
    });
  });

  it('throws a coded error at once for bad input', async () => {
    await withStore({}, async (store) => {
      const producer = store.createProducer({ group: 'pg' });
      const codeOf = (fn: () => void): string => {
        try {
          fn();
        } catch (err) {
          expect(err).toBeInstanceOf(PocketMQError);
          return (err as PocketMQError).code;
        }
        return 'no error';
      };
      expect(codeOf(() => producer.sendOneway({ topic: 'ow', body: {} as string })))
        .toBe('INVALID_MESSAGE');
      expect(codeOf(() => producer.sendOneway({ topic: '%DLQ%g', body: 'x' })))
        .toBe('INVALID_TOPIC');
      expect(codeOf(() => producer.sendOneway({ topic: 'ow', body: 'x' },
        { selector: () => 9 }))).toBe('INVALID_OPTION');
      await producer.shutdown();
      expect(codeOf(() => producer.sendOneway({ topic: 'ow', body: 'x' }))).toBe('INVALID_STATE');
      expect(storeInternals(store).engine.commitLogMaxOffset).toBe(0);
    });
  });
});

describe('Producer.sendBatch', () => {
  it('appends to one queue at consecutive offsets, one result per message in order', async () => {
    await withStore({}, async (store) => {
      const producer = store.createProducer({ group: 'pg' });
      await producer.send({ topic: 'batch', body: 'before' }, { selector: () => 2 });
      const results = await producer.sendBatch([
        { topic: 'batch', body: 'b0', keys: 'bk0' },
        { topic: 'batch', body: 'b1', tags: 'T' },
        { topic: 'batch', body: 'b2', properties: { n: 2 } },
      ], { selector: () => 2 });
      expect(results.map((r) => [r.status, r.topic, r.queueId, r.queueOffset])).toEqual([
        ['SEND_OK', 'batch', 2, 1], ['SEND_OK', 'batch', 2, 2], ['SEND_OK', 'batch', 2, 3]]);
      for (let i = 1; i < results.length; i++) {
        expect(results[i]!.commitLogOffset).toBeGreaterThan(results[i - 1]!.commitLogOffset);
      }
      const bodies = await Promise.all(results.map((r) => store.viewMessage(r.msgId)));
      expect(bodies.map((m) => m!.body.toString())).toEqual(['b0', 'b1', 'b2']);
      expect(bodies[1]!.tags).toBe('T');
      expect(bodies[2]!.properties).toEqual({ n: '2' });
      expect((await store.queryMessage({ topic: 'batch', key: 'bk0' }))[0]!.msgId)
        .toBe(results[0]!.msgId);
    });
  });

  it('keeps a round-robin batch on a single queue', async () => {
    await withStore({}, async (store) => {
      const results = await store.createProducer({ group: 'pg' }).sendBatch(
        Array.from({ length: 10 }, (_, i) => ({ topic: 'rrb', body: `m${i}` })));
      expect(new Set(results.map((r) => r.queueId)).size).toBe(1);
      expect(results.map((r) => r.queueOffset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });
  });
});

describe('Producer compression', () => {
  it('stores a large compressible body compressed and reads it back byte-identical', async () => {
    await withStore({}, async (store) => {
      const body = Buffer.from('pocketmq compresses repetitive bodies. '.repeat(400));
      expect(body.length).toBeGreaterThan(4096);
      const r = await store.createProducer({ group: 'pg' }).send({ topic: 'z', body });
      const m = await store.viewMessage(r.msgId);
      expect(m!.storeSize).toBeLessThan(body.length / 4);
      expect(storeInternals(store).engine.lookMessageByOffset(r.commitLogOffset)!.size)
        .toBe(m!.storeSize);
      expect(m!.body.equals(body)).toBe(true);

      const consumer = store.createPullConsumer({ group: 'zc',
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      consumer.subscribe('z', '*');
      await consumer.start();
      const got: MessageExt[] = [];
      for (let i = 0; i < 20 && got.length === 0; i++) got.push(...await consumer.poll(500));
      expect(got).toHaveLength(1);
      expect(got[0]!.body.equals(body)).toBe(true);
      expect(got[0]!.msgId).toBe(r.msgId);
    });
  });

  it('compresses only bodies over the threshold, which is an option', async () => {
    await withStore({}, async (store) => {
      const body = (n: number): Buffer => Buffer.alloc(n, 'a');
      const dflt = store.createProducer({ group: 'pg' });
      const sendAndView = async (n: number): Promise<number> =>
        (await store.viewMessage((await dflt.send({ topic: 'z', body: body(n) })).msgId))!
          .storeSize;
      const at4096 = { storeSize: await sendAndView(4096) };
      const at4097 = { storeSize: await sendAndView(4097) };
      expect(at4096.storeSize).toBeGreaterThan(4096);
      expect(at4097.storeSize).toBeLessThan(1000);

      const eager = store.createProducer({ group: 'pg2', compressMsgBodyOverHowmuch: 100 });
      const small = await eager.send({ topic: 'z', body: body(1000) });
      const smallMsg = await store.viewMessage(small.msgId);
      expect(smallMsg!.storeSize).toBeLessThan(500);
      expect(smallMsg!.body.equals(body(1000))).toBe(true);
      const plain = await dflt.send({ topic: 'z', body: body(1000) });
      expect((await store.viewMessage(plain.msgId))!.storeSize).toBeGreaterThan(1000);
    });
  });

  it('stores an incompressible body as it is', async () => {
    await withStore({}, async (store) => {
      const body = randomBytes(20_000);
      const r = await store.createProducer({ group: 'pg' }).send({ topic: 'z', body });
      const m = await store.viewMessage(r.msgId);
      expect(m!.storeSize).toBeGreaterThan(body.length);
      expect(m!.body.equals(body)).toBe(true);
    });
  });
});

/**
 * Failure injection: a producer sends through the store's one Broker object, so giving that
 * object its own `send` (shadowing Broker.prototype.send, the port call of `send`) makes every
 * send of the test go through the fake, which records the queue of each attempt and fails as
 * the test says.
 */
function injectPutFailures(store: MessageStore, fail: (attempt: number) => Error | null):
  number[] {
  const broker = brokerOf(store);
  const realSend = broker.send.bind(broker);
  const queues: number[] = [];
  broker.send = (request: SendRequest) => {
    queues.push(request.queueId);
    const err = fail(queues.length);
    return err === null ? realSend(request) : Promise.reject(err);
  };
  return queues;
}

describe('Producer retries', () => {
  it('retries a retriable error on the next queue, then succeeds', async () => {
    await withStore({}, async (store) => {
      const attempts = injectPutFailures(store, (n) =>
        (n === 1 ? new PocketMQError('BUSY', 'busy') : n === 2
          ? new PocketMQError('TIMEOUT', 'slow') : null));
      const r = await store.createProducer({ group: 'pg' }).send({ topic: 'rt', body: 'x' });
      expect(attempts).toHaveLength(3);
      expect(attempts[1]).toBe((attempts[0]! + 1) % 4);
      expect(attempts[2]).toBe((attempts[1]! + 1) % 4);
      expect(r.queueId).toBe(attempts[2]);
      expect(await store.maxOffset('rt', r.queueId)).toBe(1);
      expect((await store.viewMessage(r.msgId))!.body.toString()).toBe('x');
    });
  });

  it('gives up after retryTimesWhenSendFailed extra attempts', async () => {
    await withStore({}, async (store) => {
      const attempts = injectPutFailures(store, () => new PocketMQError('BUSY', 'busy'));
      const err = await rejection(store.createProducer({ group: 'pg', retryTimesWhenSendFailed: 3 })
        .send({ topic: 'rt', body: 'x' }));
      expect(err.code).toBe('BUSY');
      expect(attempts).toHaveLength(4);
      attempts.length = 0;
      const once = store.createProducer({ group: 'pg0', retryTimesWhenSendFailed: 0 });
      const none = await rejection(once.send({ topic: 'rt', body: 'x' }));
      expect(none.code).toBe('BUSY');
      expect(attempts).toHaveLength(1);
      expect(storeInternals(store).engine.commitLogMaxOffset).toBe(0);
    });
  });

  it('keeps a pinned send on its queue while retrying', async () => {
    await withStore({}, async (store) => {
      const attempts = injectPutFailures(store, (n) =>
        (n % 3 === 0 ? null : new PocketMQError('TIMEOUT', 'slow')));
      const producer = store.createProducer({ group: 'pg' });
      const byKey = await producer.send({ topic: 'rt', body: 'k' }, { shardingKey: 'order-7' });
      expect(attempts).toEqual([byKey.queueId, byKey.queueId, byKey.queueId]);
      const bySelector = await producer.send({ topic: 'rt', body: 's' }, { selector: () => 2 });
      expect(attempts.slice(3)).toEqual([2, 2, 2]);
      expect(bySelector.queueId).toBe(2);
    });
  });

  it('throws a non-retriable error at once', async () => {
    await withStore({}, async (store) => {
      const failures = [new PocketMQError('DISK_FULL', 'full'), new Error('plain'),
        new PocketMQError('IO_ERROR', 'eio')];
      let which = 0;
      const attempts = injectPutFailures(store, () => failures[which]!);
      const producer = store.createProducer({ group: 'pg', retryTimesWhenSendFailed: 5 });
      for (which = 0; which < failures.length; which++) {
        attempts.length = 0;
        const err = await producer.send({ topic: 'rt', body: 'x' }).then(() => null, (e) => e);
        expect(err).toBe(failures[which]);
        expect(attempts).toHaveLength(1);
      }
    });
  });
});
