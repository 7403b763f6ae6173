/**
 * Handlers as Node users expect them (SPEC §6): a listener that resolves undefined succeeded;
 * 'RECONSUME_LATER' or a throw asks for redelivery; the error reaches the application with its
 * stack (onError, the 'error' event, else one process warning); `await using` closes.
 */
import { describe, expect, it } from 'vitest';
import type { ConsumerErrorContext } from '../../lib/client/consumer-options.js';
import { ManualClock } from '../../lib/internal.js';
import type { MessageExt } from '../../lib/index.js';
import { useTempDirs } from '../support/backends.js';
import { errorOf } from '../support/errors.js';
import { lagOf, openStore, sendMany, startPush, until } from '../support/messaging.js';

const tmp = useTempDirs('pmq-consumer-errors-');

describe('listener results', () => {
  it('an async listener without return has consumed its messages: none redelivered', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock, messageDelayLevel: '1ms 1ms 1ms' });
    try {
      await store.createTopic('t', { queueNums: 2 });
      const seen: string[] = [];
      await startPush(store, { group: 'g', consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' }, 't',
        async (msgs) => {
          for (const m of msgs) seen.push(m.body.toString());
        });
      await sendMany(store.createProducer({ group: 'pg' }), 't', 4);
      await until(async () => await lagOf(store, 'g', 't') === 0, 'every message consumed');
      clock.advance(60_000);
      await until(() => seen.length >= 4, 'four calls');
      expect(seen.sort()).toEqual(['m0', 'm1', 'm2', 'm3']);
      expect(await store.maxOffset('%DLQ%g', 0)).toBe(0);
    } finally {
      await store.close();
    }
  });

  it('RECONSUME_LATER and a throw redeliver with reconsumeTimes counted up', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock, messageDelayLevel: '1ms 1ms 1ms' });
    try {
      await store.createTopic('t', { queueNums: 1 });
      const calls: [string, number][] = [];
      const consumer = await startPush(store, { group: 'g', onError: () => undefined }, 't',
        (msgs) => {
          const m = msgs[0]!;
          calls.push([m.body.toString(), m.reconsumeTimes]);
          if (m.reconsumeTimes === 0 && m.body.toString() === 'later') return 'RECONSUME_LATER';
          if (m.reconsumeTimes === 0) throw new Error('boom');
          return undefined;
        });
      const producer = store.createProducer({ group: 'pg' });
      await producer.send({ topic: 't', body: 'later' });
      await producer.send({ topic: 't', body: 'throws' });
      await until(() => {
        clock.advance(1);
        return calls.length === 4;
      }, 'two deliveries each');
      expect(calls).toEqual(expect.arrayContaining([['later', 0], ['later', 1], ['throws', 0],
        ['throws', 1]]));
      await until(async () => await lagOf(store, 'g', 't') === 0, 'both acknowledged');
      await consumer.shutdown();
    } finally {
      await store.close();
    }
  });
});

describe('listener errors reach the application', () => {
  async function failOnce(options: { onError?: (err: unknown, ctx: ConsumerErrorContext) => void },
    onEvent?: (err: unknown, ctx: ConsumerErrorContext) => void): Promise<void> {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock, messageDelayLevel: '1ms 1ms 1ms' });
    try {
      await store.createTopic('t', { queueNums: 1 });
      const consumer = store.createPushConsumer({ group: 'g', ...options });
      if (onEvent !== undefined) consumer.on('error', onEvent);
      consumer.subscribe('t');
      let thrown = 0;
      consumer.registerMessageListener(function failingListener() {
        if (thrown++ === 0) throw new TypeError('listener bug');
      });
      await consumer.start();
      await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'x' });
      await until(() => {
        clock.advance(1);
        return thrown === 2;
      }, 'the redelivery');
    } finally {
      await store.close();
    }
  }

  function checkError(err: unknown, ctx: ConsumerErrorContext): void {
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toBe('listener bug');
    expect((err as Error).stack).toContain('failingListener');
    expect(ctx).toMatchObject({ group: 'g', during: 'listener' });
    expect(ctx.messages!.map((m: MessageExt) => m.body.toString())).toEqual(['x']);
  }

  it('as thrown, with its stack, to the onError option', async () => {
    const seen: [unknown, ConsumerErrorContext][] = [];
    await failOnce({ onError: (err, ctx) => seen.push([err, ctx]) });
    expect(seen).toHaveLength(1);
    checkError(...seen[0]!);
  });

  it("and as an 'error' event", async () => {
    const seen: [unknown, ConsumerErrorContext][] = [];
    await failOnce({}, (err, ctx) => seen.push([err, ctx]));
    expect(seen).toHaveLength(1);
    checkError(...seen[0]!);
  });

  it('with neither, as one process warning per consumer', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      if ((w as { code?: string }).code === 'POCKETMQ_CONSUMER_ERROR') warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      await failOnce({});
      await until(() => warnings.length > 0, 'the warning');
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toContain('listener bug');
    expect(warnings[0]!.message).toContain('failingListener');
  });

  it('refuses an onError that is not a function', async () => {
    const store = await openStore(tmp.make());
    try {
      expect(errorOf(() => store.createPushConsumer({ group: 'g', onError: 'x' as never })))
        .toMatchObject({ code: 'INVALID_OPTION', property: 'onError' });
    } finally {
      await store.close();
    }
  });
});

describe('await using', () => {
  it('closes the store, and shuts down consumers and producers, at the end of the block',
    async () => {
      const dir = tmp.make();
      let outside: { store?: unknown } = {};
      {
        await using store = await openStore(dir);
        await using pull = store.createPullConsumer({ group: 'g' });
        pull.subscribe('t');
        await pull.start();
        await using producer = store.createProducer({ group: 'pg' });
        await producer.send({ topic: 't', body: 'x' });
        outside = { store };
        expect(store.createProducer({ group: 'pg2' })).toBeDefined();
      }
      const store = outside.store as Awaited<ReturnType<typeof openStore>>;
      expect(errorOf(() => store.createProducer({ group: 'pg' })).code).toBe('STORE_CLOSED');
      const again = await openStore(dir); // the lock was released
      await again.close();
    });
});
