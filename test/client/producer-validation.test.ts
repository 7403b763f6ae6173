import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  MessageStore, PocketMQError, type Message, type MessageStoreOptions, type Producer,
} from '../../lib/index.js';
import { useTempDirs } from '../support/backends.js';
import { backendOptions } from '../support/test-backend.js';
import { storeInternals } from '../../lib/internal.js';

const tmp = useTempDirs();

interface Ctx {
  readonly store: MessageStore;
  readonly producer: Producer;
  /** Rejects `send(message)` with `code`, and checks that nothing new was stored. */
  refuse(code: string, message: unknown): Promise<PocketMQError>;
  /** Runs `fn` and checks that the store holds exactly what it held before. */
  unchangedBy(fn: () => Promise<void>): Promise<void>;
}

/**
 * A store holding one message of topic 'v' on each of its 4 queues, and a producer. Every
 * rejection must leave the commit log and each queue's max offset as they were, and the
 * first message readable.
 */
async function withStore(options: MessageStoreOptions, fn: (ctx: Ctx) => Promise<void>):
  Promise<void> {
  const dir = tmp.make();
  const store = await MessageStore.open(dir,
    { commitLogSegmentSize: 4 * 2 ** 20, ...backendOptions(dir), ...options });
  try {
    const producer = store.createProducer({ group: 'pg' });
    const first = await producer.send({ topic: 'v', body: 'kept' });
    const rest = [1, 2, 3].map((i) => producer.send({ topic: 'v', body: 'kept' },
      { selector: (n) => (first.queueId + i) % n }));
    await Promise.all(rest);
    const state = async (): Promise<number[]> => [storeInternals(store).engine.commitLogMaxOffset,
      ...await Promise.all([0, 1, 2, 3].map((q) => store.maxOffset('v', q)))];
    const unchangedBy = async (run: () => Promise<void>): Promise<void> => {
      const before = await state();
      await run();
      expect(await state()).toEqual(before);
      expect((await store.viewMessage(first.msgId))!.body.toString()).toBe('kept');
    };
    const refuse = async (code: string, message: unknown): Promise<PocketMQError> => {
      let err: unknown = null;
      await unchangedBy(async () => {
        err = await producer.send(message as Message).then(() => null, (e: unknown) => e);
      });
      const what = JSON.stringify(message, replacer);
      expect(err, what).toBeInstanceOf(PocketMQError);
      expect((err as PocketMQError).code, what).toBe(code);
      return err as PocketMQError;
    };
    await fn({ store, producer, refuse, unchangedBy });
  } finally {
    await store.close();
  }
}

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'string' && value.length > 40) return `${value.slice(0, 40)}...`;
  if (typeof value === 'bigint' || typeof value === 'function') return String(value);
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

function syncCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PocketMQError);
    return (err as PocketMQError).code;
  }
  return 'no error';
}

async function asyncCode(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(PocketMQError);
  return (err as PocketMQError).code;
}

describe('Producer topic validation', () => {
  it('refuses invalid topic names and reserved prefixes with INVALID_TOPIC', async () => {
    await withStore({}, async ({ refuse }) => {
      const bad: unknown[] = ['', 'a b', 'a/b', '../x', '..', 'x'.repeat(128), 'é', 'a.b',
        'tab\t', 5, null, undefined, ['v']];
      for (const topic of bad) await refuse('INVALID_TOPIC', { topic, body: 'x' });
      for (const topic of ['%RETRY%x', '%DLQ%x', 'SCHEDULE_TOPIC_x', 'RMQ_SYS_x']) {
        const err = await refuse('INVALID_TOPIC', { topic, body: 'x' });
        expect(err.topic).toBe(topic);
      }
      await refuse('INVALID_TOPIC', { topic: 'x'.repeat(128), body: 'x' });
    });
  });

  it('refuses a reserved topic even after the broker made it', async () => {
    await withStore({}, async ({ store, producer, refuse }) => {
      // The broker makes %DLQ%cg when it moves a message there.
      const sent = await producer.send({ topic: 't', body: 'dead' });
      const failed = await storeInternals(store).broker.deadLetter('cg', 'c1',
        [(await store.viewMessage(sent.msgId))!]);
      expect(failed).toEqual([]);
      expect(store.topics().map((t) => t.topic)).toContain('%DLQ%cg');
      const dlqEnd = await store.maxOffset('%DLQ%cg', 0);
      await refuse('INVALID_TOPIC', { topic: '%DLQ%cg', body: 'x' });
      await refuse('INVALID_TOPIC', { topic: '%RETRY%cg', body: 'x' });
      expect(syncCode(() => producer.sendOneway({ topic: '%DLQ%cg', body: 'x' })))
        .toBe('INVALID_TOPIC');
      expect(await asyncCode(producer.sendBatch([{ topic: '%DLQ%cg', body: 'x' }])))
        .toBe('INVALID_TOPIC');
      expect(await store.maxOffset('%DLQ%cg', 0)).toBe(dlqEnd);
    });
  });
});

describe('Producer body validation', () => {
  it('refuses bodies that are not non-empty strings or bytes', async () => {
    await withStore({}, async ({ refuse }) => {
      const bodies: unknown[] = [{ a: 1 }, [1, 2], ['x'], 42, null, undefined, '',
        Buffer.alloc(0), new Uint8Array(0), true, new ArrayBuffer(4)];
      for (const body of bodies) await refuse('INVALID_MESSAGE', { topic: 'v', body });
      for (const message of [null, undefined, 'v', 7]) await refuse('INVALID_MESSAGE', message);
    });
  });

  it('accepts string and Uint8Array bodies and reads them back as Buffers', async () => {
    await withStore({}, async ({ store, producer }) => {
      const bytes = new Uint8Array([0, 1, 2, 254, 255]);
      const a = await producer.send({ topic: 'w', body: bytes });
      const b = await producer.send({ topic: 'w', body: 'héllo ✓' });
      const ma = await store.viewMessage(a.msgId);
      const mb = await store.viewMessage(b.msgId);
      expect(Buffer.isBuffer(ma!.body) && Buffer.isBuffer(mb!.body)).toBe(true);
      expect([...ma!.body]).toEqual([0, 1, 2, 254, 255]);
      expect(mb!.body.toString('utf8')).toBe('héllo ✓');
    });
  });

  it('refuses a body over maxMessageSize, counted in bytes before compression', async () => {
    await withStore({ maxMessageSize: 1024 }, async ({ store, producer, refuse }) => {
      const random = await refuse('MESSAGE_TOO_LARGE', { topic: 'v', body: randomBytes(1025) });
      expect(random).toMatchObject({ limit: 1024, actual: 1025 });
      // Compressible: its deflated form would fit, but the limit is on the body as sent.
      const small = await producer.send({ topic: 'w', body: Buffer.alloc(1024, 'a') });
      expect((await store.viewMessage(small.msgId))!.body.length).toBe(1024);
      await refuse('MESSAGE_TOO_LARGE', { topic: 'v', body: Buffer.alloc(5000, 'a') });
      // 600 characters, 1200 UTF-8 bytes.
      await refuse('MESSAGE_TOO_LARGE', { topic: 'v', body: 'é'.repeat(600) });
    });
  });
});

describe('Producer property, key and tag validation', () => {
  it('refuses oversized properties with MESSAGE_TOO_LARGE', async () => {
    await withStore({}, async ({ refuse }) => {
      await refuse('MESSAGE_TOO_LARGE',
        { topic: 'v', body: 'x', properties: { big: 'x'.repeat(65_536) } });
      await refuse('MESSAGE_TOO_LARGE',
        { topic: 'v', body: 'x', properties: { a: 'x'.repeat(33_000), b: 'y'.repeat(33_000) } });
      await refuse('MESSAGE_TOO_LARGE', { topic: 'v', body: 'x', tags: 't',
        keys: ['k'.repeat(30_000)], properties: { a: 'x'.repeat(36_000) } });
    });
  });

  it('refuses reserved and malformed property names with INVALID_MESSAGE', async () => {
    await withStore({}, async ({ refuse }) => {
      for (const name of ['TAGS', 'KEYS', 'UNIQ_KEY', 'ORIGIN_MESSAGE_ID', 'RETRY_TOPIC',
        'DELAY', 'REAL_TOPIC', 'TRAN_MSG', 'RECONSUME_TIME']) {
        const err = await refuse('INVALID_MESSAGE',
          { topic: 'v', body: 'x', properties: { [name]: 'v' } });
        expect(err.message).toContain(name);
      }
      await refuse('INVALID_MESSAGE', { topic: 'v', body: 'x', properties: { '': 'v' } });
      await refuse('INVALID_MESSAGE',
        { topic: 'v', body: 'x', properties: { ['n'.repeat(256)]: 'v' } });
    });
  });

  it('refuses property values that are not strings, finite numbers or booleans', async () => {
    await withStore({}, async ({ refuse }) => {
      const values: unknown[] = [{}, { a: 1 }, [], undefined, null, Number.NaN, Infinity,
        -Infinity, 10n, () => 1];
      for (const value of values) {
        await refuse('INVALID_MESSAGE', { topic: 'v', body: 'x', properties: { p: value } });
      }
      const notPlain: unknown[] = [[['a', 'b']], 'a=b', 5, null, new Map([['a', 'b']]),
        new Date(0)];
      for (const properties of notPlain) {
        await refuse('INVALID_MESSAGE', { topic: 'v', body: 'x', properties });
      }
    });
  });

  it('refuses keys with whitespace and tags with whitespace or ||', async () => {
    await withStore({}, async ({ refuse }) => {
      const keys: unknown[] = ['a b', ['ok', 'bad key'], ['tab\tkey'], ['line\n'], [''], '',
        [5], { k: 1 }];
      for (const k of keys) await refuse('INVALID_MESSAGE', { topic: 'v', body: 'x', keys: k });
      const tags: unknown[] = ['a b', 'A||B', '||', ' A', 'A\n', 'A\tB', 5, ['A']];
      for (const t of tags) await refuse('INVALID_MESSAGE', { topic: 'v', body: 'x', tags: t });
    });
  });

  it('refuses a bad delay or delivery time, and one too far ahead', async () => {
    await withStore({ timerMaxDelayMs: 60_000 }, async ({ refuse }) => {
      for (const delayTimeLevel of [-1, 1.5, 'x', Number.NaN]) {
        const err = await refuse('INVALID_MESSAGE', { topic: 'v', body: 'x', delayTimeLevel });
        expect(err.property).toBe('delayTimeLevel');
      }
      for (const deliverAt of [Number.NaN, 'x', -5, Infinity]) {
        const err = await refuse('INVALID_MESSAGE', { topic: 'v', body: 'x', deliverAt });
        expect(err.property).toBe('deliverAt');
      }
      await refuse('INVALID_MESSAGE', { topic: 'v', body: 'x', delayTimeLevel: 2,
        deliverAt: Date.now() + 1000 });
      const far = await refuse('INVALID_MESSAGE',
        { topic: 'v', body: 'x', deliverAt: Date.now() + 90_000 });
      expect(far).toMatchObject({ property: 'deliverAt', limit: 60_000 });
      expect(far.message).toContain('timerMaxDelayMs');
    });
  });
});

describe('Producer options and lifecycle', () => {
  it('refuses bad transaction listeners, bad groups and bad options', async () => {
    await withStore({}, async ({ store }) => {
      const answer = (): 'COMMIT_MESSAGE' => 'COMMIT_MESSAGE';
      for (const listener of [null, 'x', {}, { executeLocalTransaction: answer },
        { executeLocalTransaction: answer, checkLocalTransaction: 'no' }]) {
        expect(syncCode(() => store.createProducer({ group: 'tx',
          transactionListener: listener as never })), JSON.stringify(listener))
          .toBe('INVALID_OPTION');
      }
      expect(syncCode(() => store.createProducer({ group: 'tx', transactionListener:
        { executeLocalTransaction: answer, checkLocalTransaction: answer } }))).toBe('no error');
      // Without a listener, a producer cannot send in a transaction.
      await expect(store.createProducer({ group: 'plain' })
        .sendMessageInTransaction({ topic: 'v', body: 'x' })).rejects
        .toMatchObject({ code: 'INVALID_STATE' });
      const groups: unknown[] = ['', 'a b', '%RETRY%x', 'a|b', 'x'.repeat(121), 5, undefined,
        null, 'é'];
      for (const group of groups) {
        expect(syncCode(() => store.createProducer({ group } as { group: string })), String(group))
          .toBe('INVALID_OPTION');
      }
      expect(syncCode(() => store.createProducer({ group: 'g'.repeat(120) }))).toBe('no error');
      for (const options of [undefined, null, 'pg']) {
        expect(syncCode(() => store.createProducer(options as unknown as { group: string })))
          .toBe('INVALID_OPTION');
      }
      for (const bad of [-1, 1.5, '2', 17]) {
        expect(syncCode(() => store.createProducer({ group: 'pg',
          retryTimesWhenSendFailed: bad as number }))).toBe('INVALID_OPTION');
        expect(syncCode(() => store.createProducer({ group: 'pg',
          compressMsgBodyOverHowmuch: (bad === 17 ? -5 : bad) as number }))).toBe('INVALID_OPTION');
      }
    });
  });

  it('starts harmlessly and refuses every send after shutdown with INVALID_STATE', async () => {
    await withStore({}, async ({ producer, unchangedBy }) => {
      await producer.start();
      await producer.start();
      expect((await producer.send({ topic: 'w', body: 'still sends' })).status).toBe('SEND_OK');
      await producer.shutdown();
      await producer.shutdown();
      const before = { topic: 'v', body: 'x' };
      await unchangedBy(async () => {
        expect(await asyncCode(producer.send(before))).toBe('INVALID_STATE');
        expect(await asyncCode(producer.sendBatch([before]))).toBe('INVALID_STATE');
        expect(syncCode(() => producer.sendOneway(before))).toBe('INVALID_STATE');
        expect(await asyncCode(producer.start())).toBe('INVALID_STATE');
      });
    });
  });

  it('refuses sends after store.close() with STORE_CLOSED', async () => {
    await withStore({}, async ({ store, producer }) => {
      await store.close();
      const msg = { topic: 'v', body: 'x' };
      expect(await asyncCode(producer.send(msg))).toBe('STORE_CLOSED');
      expect(await asyncCode(producer.sendBatch([msg]))).toBe('STORE_CLOSED');
      expect(syncCode(() => producer.sendOneway(msg))).toBe('STORE_CLOSED');
      expect(syncCode(() => store.createProducer({ group: 'late' }))).toBe('STORE_CLOSED');
    });
  });
});

describe('Producer.sendBatch validation', () => {
  it('refuses empty, mixed-topic and partly invalid batches, storing none', async () => {
    await withStore({}, async ({ producer, unchangedBy }) => {
      const ok = (i: number): Message => ({ topic: 'v', body: `b${i}` });
      const cases: [unknown, string][] = [
        [[], 'INVALID_MESSAGE'],
        [null, 'INVALID_MESSAGE'],
        [ok(0), 'INVALID_MESSAGE'],
        [[ok(0), { topic: 'w', body: 'x' }], 'INVALID_MESSAGE'],
        [[ok(0), ok(1), { topic: 'v', body: {} }], 'INVALID_MESSAGE'],
        [[ok(0), { topic: 'v', body: 'x', tags: 'a b' }], 'INVALID_MESSAGE'],
        [[ok(0), { topic: 'v', body: 'x', delayTimeLevel: 2 }], 'INVALID_MESSAGE'],
        [[ok(0), { topic: 'v', body: 'x', properties: { big: 'x'.repeat(70_000) } }],
          'MESSAGE_TOO_LARGE'],
      ];
      for (const [batch, code] of cases) {
        await unchangedBy(async () => {
          expect(await asyncCode(producer.sendBatch(batch as Message[])), code).toBe(code);
        });
      }
    });
  });

  it('refuses an oversize batch with a coded error, storing none', async () => {
    await withStore({}, async ({ producer, unchangedBy }) => {
      const refused = (batch: Message[]): Promise<void> => unchangedBy(async () => {
        expect(await asyncCode(producer.sendBatch(batch))).toBe('MESSAGE_TOO_LARGE');
      });
      await refused(Array.from({ length: 4097 }, (_, i) => ({ topic: 'v', body: `m${i}` })));
      // Three incompressible 1.5 MiB bodies: more than one 4 MiB segment can hold.
      await refused([0, 1, 2].map(() => ({ topic: 'v', body: randomBytes(1.5 * 2 ** 20) })));
      await refused([{ topic: 'v', body: 'x' }, { topic: 'v', body: randomBytes(3 * 2 ** 20) }]);
    });
  });
});
