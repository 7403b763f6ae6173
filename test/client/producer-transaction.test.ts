/**
 * Transactional producers (`sendMessageInTransaction`, lib/client/producer.ts and
 * lib/broker/transaction/): a message is invisible until its transaction commits, then
 * delivered once with the half's msgId, tags, keys and properties; a rollback drops it; an
 * UNKNOWN (or a throw) leaves it to the check-back, which asks a live producer of the group
 * after `transactionTimeoutMs`, every `transactionCheckIntervalMs`, up to `transactionCheckMax`
 * times before the message goes to the check-max topic.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock, storeInternals } from '../../lib/internal.js';
import {
  TRANS_CHECK_MAX_TOPIC, type MessageStore, type MessageStoreOptions,
} from '../../lib/index.js';
import { useTempDirs } from '../support/backends.js';
import { openStore, Recorder, settle, startPush, until } from '../support/messaging.js';
import { advanceUntil, keptLogger, TxListener } from '../support/transactions.js';

const tmp = useTempDirs('pmq-tx-');

interface Ctx {
  readonly store: MessageStore;
  readonly clock: ManualClock;
  readonly rec: Recorder;
  readonly logs: string[];
}

/** A store on a manual clock (timeout 6 s, checks every 5 s) with a push consumer of 't'. */
async function withStore(options: MessageStoreOptions, fn: (ctx: Ctx) => Promise<void>):
  Promise<void> {
  const clock = new ManualClock();
  const logger = keptLogger();
  const store = await openStore(tmp.make(), { clock, logger, ...options });
  try {
    const rec = new Recorder();
    await startPush(store, { group: 'cg', consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' }, 't',
      rec.listener);
    await fn({ store, clock, rec, logs: logger.lines });
  } finally {
    await store.close();
  }
}

describe('ending a transaction', () => {
  it('COMMIT_MESSAGE delivers the message once, with the half\'s id, tags, keys, properties',
    async () => {
      await withStore({}, async ({ store, clock, rec }) => {
        const listener = new TxListener();
        const producer = store.createProducer({ group: 'txg', transactionListener: listener });
        const r = await producer.sendMessageInTransaction({ topic: 't', body: 'paid',
          tags: 'Pay', keys: ['order-1', 'user-9'], properties: { region: 'eu', n: 3 } },
        { orderId: 1 });
        expect(r).toMatchObject({ status: 'SEND_OK', topic: 't',
          localTransactionState: 'COMMIT_MESSAGE' });
        expect(listener.executed).toHaveLength(1);
        expect(listener.executed[0]!.arg).toEqual({ orderId: 1 });
        expect(listener.executed[0]!.message).toMatchObject({ topic: 't', body: 'paid',
          msgId: r.msgId, tags: 'Pay' });
        await until(() => rec.calls.length === 1, 'the committed message');
        const m = rec.messages[0]!;
        expect(m).toMatchObject({ msgId: r.msgId, topic: 't', queueId: r.queueId, tags: 'Pay',
          keys: ['order-1', 'user-9'], properties: { region: 'eu', n: '3' }, reconsumeTimes: 0 });
        expect(m.body.toString()).toBe('paid');
        const found = await store.queryMessage({ topic: 't', key: 'order-1' });
        expect(found.map((f) => f.msgId)).toEqual([r.msgId]);
        // Resolved: never checked back, never delivered again.
        clock.advance(60_000);
        await settle();
        expect(listener.checked).toEqual([]);
        expect(rec.calls).toHaveLength(1);
      });
    });

  it('ROLLBACK_MESSAGE drops the message; it is never checked back', async () => {
    await withStore({}, async ({ store, clock, rec }) => {
      const listener = new TxListener(() => 'ROLLBACK_MESSAGE', () => 'COMMIT_MESSAGE');
      const producer = store.createProducer({ group: 'txg', transactionListener: listener });
      const r = await producer.sendMessageInTransaction({ topic: 't', body: 'cancelled' });
      expect(r.localTransactionState).toBe('ROLLBACK_MESSAGE');
      await producer.send({ topic: 't', body: 'plain' });
      clock.advance(60_000);
      await until(() => rec.calls.length === 1, 'the plain message');
      await settle();
      expect(rec.bodies).toEqual(['plain']);
      expect(listener.checked).toEqual([]);
    });
  });

  it('a message stays invisible until its transaction commits', async () => {
    await withStore({}, async ({ store, clock, rec }) => {
      let commit = false;
      const listener = new TxListener(() => 'UNKNOWN',
        () => (commit ? 'COMMIT_MESSAGE' : 'UNKNOWN'));
      const producer = store.createProducer({ group: 'txg', transactionListener: listener });
      const r = await producer.sendMessageInTransaction({ topic: 't', body: 'later',
        tags: 'T', keys: 'k', properties: { p: 'v' } });
      expect(r.localTransactionState).toBe('UNKNOWN');
      // Not checked before transactionTimeoutMs (6 s) is up; the first round is at 5 s.
      clock.advance(5_999);
      await settle();
      expect(listener.checked).toEqual([]);
      expect(await store.queryMessage({ topic: 't', key: 'k' })).toEqual([]);
      await advanceUntil(clock, 1000, () => listener.checked.length === 1, 'the first check');
      const asked = listener.checked[0]!;
      expect(asked).toMatchObject({ msgId: r.msgId, topic: 't', queueId: r.queueId, tags: 'T',
        keys: ['k'], properties: { p: 'v' } });
      expect(asked.body.toString()).toBe('later');
      await settle();
      expect(rec.calls).toEqual([]);
      commit = true;
      await advanceUntil(clock, 1000, () => rec.calls.length === 1, 'the commit by check-back');
      expect(rec.messages[0]).toMatchObject({ msgId: r.msgId, tags: 'T', keys: ['k'],
        properties: { p: 'v' } });
      const checks = listener.checked.length;
      clock.advance(60_000);
      await settle();
      expect(listener.checked).toHaveLength(checks);
      expect(rec.calls).toHaveLength(1);
    });
  });

  it('UNKNOWN then a check-back rollback drops the message', async () => {
    await withStore({}, async ({ store, clock, rec }) => {
      const listener = new TxListener(() => 'UNKNOWN', () => 'ROLLBACK_MESSAGE');
      const producer = store.createProducer({ group: 'txg', transactionListener: listener });
      await producer.sendMessageInTransaction({ topic: 't', body: 'dropped' });
      await advanceUntil(clock, 1000, () => listener.checked.length === 1, 'the check');
      clock.advance(60_000);
      await settle();
      expect(listener.checked).toHaveLength(1);
      expect(rec.calls).toEqual([]);
    });
  });

  it('a throwing executeLocalTransaction counts as UNKNOWN and is logged', async () => {
    await withStore({}, async ({ store, clock, rec, logs }) => {
      const listener = new TxListener(() => {
        throw new Error('local database down');
      }, () => 'COMMIT_MESSAGE');
      const producer = store.createProducer({ group: 'txg', transactionListener: listener });
      const r = await producer.sendMessageInTransaction({ topic: 't', body: 'retried' });
      expect(r.localTransactionState).toBe('UNKNOWN');
      expect(logs.join('\n')).toMatch(/executeLocalTransaction of producer group txg threw.*local database down/s);
      await advanceUntil(clock, 1000, () => rec.calls.length === 1, 'the commit by check-back');
      expect(rec.messages[0]!.msgId).toBe(r.msgId);
    });
  });

  it('an answer that is no state counts as UNKNOWN and is logged', async () => {
    await withStore({}, async ({ store, logs }) => {
      const listener = new TxListener(() => 'COMMIT' as never);
      const producer = store.createProducer({ group: 'txg', transactionListener: listener });
      const r = await producer.sendMessageInTransaction({ topic: 't', body: 'x' });
      expect(r.localTransactionState).toBe('UNKNOWN');
      expect(logs.join('\n')).toContain('returned COMMIT, not COMMIT_MESSAGE');
    });
  });
});

describe('the check-back', () => {
  it('asks up to transactionCheckMax times, then moves the half to the check-max topic',
    async () => {
      await withStore({ transactionCheckMax: 3 }, async ({ store, clock, rec, logs }) => {
        const listener = new TxListener(() => 'UNKNOWN', () => 'UNKNOWN');
        const producer = store.createProducer({ group: 'txg', transactionListener: listener });
        const r = await producer.sendMessageInTransaction({ topic: 't', body: 'stuck',
          tags: 'S', keys: 'stuck-1', properties: { p: 'v' } });
        await advanceUntil(clock, 1000, () => listener.checked.length === 3, 'three checks');
        const broker = storeInternals(store).broker;
        await advanceUntil(clock, 1000, async () => (await store.maxOffset(
          TRANS_CHECK_MAX_TOPIC, 0)) === 1, 'the move to the check-max topic');
        clock.advance(120_000);
        await settle();
        expect(listener.checked).toHaveLength(3);
        expect(rec.calls).toEqual([]);
        expect(broker.transactionsInMemory).toEqual({ checking: 0, inFlight: 0 });
        const { messages } = await store.browse({ topic: TRANS_CHECK_MAX_TOPIC });
        expect(messages).toHaveLength(1);
        expect(messages[0]).toMatchObject({ msgId: r.msgId, tags: 'S', keys: ['stuck-1'],
          properties: { p: 'v' } });
        expect(logs.join('\n')).toContain('still unknown after 3 checks');
      });
    });

  it('asks only live producers of the half\'s group, each in turn', async () => {
    await withStore({}, async ({ store, clock, rec }) => {
      const sender = new TxListener(() => 'UNKNOWN', () => 'UNKNOWN');
      const other = new TxListener(() => 'UNKNOWN', () => 'COMMIT_MESSAGE');
      const producer = store.createProducer({ group: 'txg', transactionListener: sender });
      store.createProducer({ group: 'other', transactionListener: other });
      await producer.sendMessageInTransaction({ topic: 't', body: 'mine' });
      await advanceUntil(clock, 1000, () => sender.checked.length === 1, 'a check');
      await producer.shutdown();
      const next = new TxListener(() => 'UNKNOWN', () => 'COMMIT_MESSAGE');
      store.createProducer({ group: 'txg', transactionListener: next });
      await advanceUntil(clock, 1000, () => rec.calls.length === 1, 'the commit');
      expect(sender.checked).toHaveLength(1);
      expect(next.checked).toHaveLength(1);
      expect(other.checked).toEqual([]);
    });
  });

  it('a check-back waiting on a producer that shuts down counts as UNKNOWN', async () => {
    await withStore({}, async ({ store, clock }) => {
      const listener = new TxListener(() => 'UNKNOWN', () => new Promise(() => undefined));
      const producer = store.createProducer({ group: 'txg', transactionListener: listener });
      await producer.sendMessageInTransaction({ topic: 't', body: 'x' });
      await advanceUntil(clock, 1000, () => listener.checked.length === 1, 'a check');
      const broker = storeInternals(store).broker;
      expect(broker.transactionsInMemory.inFlight).toBe(1);
      await producer.shutdown();
      await until(() => broker.transactionsInMemory.inFlight === 0, 'the call to settle');
    });
  });

  it('works on the real clock too', async () => {
    const store = await openStore(tmp.make(), { transactionTimeoutMs: 30,
      transactionCheckIntervalMs: 10 });
    try {
      const rec = new Recorder();
      await startPush(store, { group: 'cg', consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' }, 't',
        rec.listener);
      const listener = new TxListener(() => 'UNKNOWN', () => 'COMMIT_MESSAGE');
      const producer = store.createProducer({ group: 'txg', transactionListener: listener });
      const sent = await Promise.all([1, 2, 3].map((i) =>
        producer.sendMessageInTransaction({ topic: 't', body: `m${i}` })));
      await until(() => rec.calls.length === 3, 'three commits by check-back');
      expect(rec.messages.map((m) => m.msgId).sort()).toEqual(sent.map((r) => r.msgId).sort());
      for (const m of listener.checked) {
        expect(m.storeTimestamp + 30).toBeLessThanOrEqual(Date.now());
      }
    } finally {
      await store.close();
    }
  });
});

describe('sending in a transaction', () => {
  it('under SYNC_FLUSH the half is durable before the local transaction runs', async () => {
    await withStore({ flushDiskType: 'SYNC_FLUSH' }, async ({ store, rec }) => {
      const engine = storeInternals(store).engine;
      let flushedPast = false;
      const listener = new TxListener((m) => {
        const offset = Number.parseInt(m.msgId.slice(0, 16), 16);
        flushedPast = engine.commitLogFlushedOffset > offset;
        return 'COMMIT_MESSAGE';
      });
      const producer = store.createProducer({ group: 'txg', transactionListener: listener });
      await producer.sendMessageInTransaction({ topic: 't', body: 'durable' });
      expect(flushedPast).toBe(true);
      await until(() => rec.calls.length === 1, 'the message');
    });
  });

  it('many at once: each committed one delivered once, no rolled-back one', async () => {
    await withStore({}, async ({ store, rec }) => {
      const listener = new TxListener(async (m) => {
        await settle(1);
        return Number(m.body) % 3 === 0 ? 'ROLLBACK_MESSAGE' : 'COMMIT_MESSAGE';
      });
      const producer = store.createProducer({ group: 'txg', transactionListener: listener });
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) =>
        producer.sendMessageInTransaction({ topic: 't', body: String(i) })));
      const committed = results.filter((r) => r.localTransactionState === 'COMMIT_MESSAGE');
      expect(committed).toHaveLength(133);
      await until(() => rec.calls.length === 133, 'every committed message');
      await settle();
      expect(rec.messages.map((m) => m.msgId).sort())
        .toEqual(committed.map((r) => r.msgId).sort());
    });
  });

  it('refuses delays, and options out of range', async () => {
    await withStore({}, async ({ store }) => {
      const producer = store.createProducer({ group: 'txg',
        transactionListener: new TxListener() });
      for (const extra of [{ delayTimeLevel: 2 }, { deliverAt: Date.now() + 60_000 }]) {
        await expect(producer.sendMessageInTransaction({ topic: 't', body: 'x', ...extra }))
          .rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
      }
    });
    for (const bad of [{ transactionTimeoutMs: -1 }, { transactionCheckIntervalMs: 0 },
      { transactionCheckMax: 0 }, { transactionCheckMax: 1.5 },
      { transactionCheckIntervalMs: 86_400_001 }]) {
      await expect(openStore(tmp.make(), bad)).rejects.toMatchObject({ code: 'INVALID_OPTION',
        property: Object.keys(bad)[0] });
    }
  });
});
