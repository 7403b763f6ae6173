/**
 * How a transaction ends when an append fails or a flush is slow (lib/broker/transaction/): the
 * Op record that resolves a half is appended only once the committed message is, and the
 * check-back leaves a half alone until its producer has the half's receipt. On the simulated
 * disk, with an injected clock.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock, storeInternals } from '../../lib/internal.js';
import { MessageStore, type MessageStoreOptions } from '../../lib/index.js';
import { useTempDirs } from '../support/backends.js';
import { failFirstQueueFile } from '../support/faults.js';
import { Gate, Recorder, settle, startPush, until } from '../support/messaging.js';
import { SimBackend } from '../support/sim-backend.js';
import { advanceUntil, keptLogger, TxListener } from '../support/transactions.js';

const tmp = useTempDirs('pmq-transaction-end-');
const OP_TOPIC = 'RMQ_SYS_TRANS_OP_HALF_TOPIC';

async function openSim(sim: SimBackend, dir: string, options: MessageStoreOptions):
  Promise<MessageStore> {
  const store = await MessageStore.open(dir, { backend: sim, commitLogSegmentSize: 4 * 2 ** 20,
    ...options });
  await store.createTopic('t', { queueNums: 1 });
  return store;
}

/** A simulated disk whose commit-log flushes wait, while `hold` is on, until `release()`. */
function heldFlushes(seed: number, hold: boolean): { sim: SimBackend; hold(): void;
  release(): void; } {
  const gate = new Gate();
  let holding = hold;
  const sim = new SimBackend({ seed, flushDelay: (p) =>
    (holding && p.includes('/commitlog/') ? gate.promise : Promise.resolve()) });
  return { sim, hold: () => {
    holding = true;
  }, release: () => {
    holding = false;
    gate.open();
  } };
}

async function consume(store: MessageStore): Promise<Recorder> {
  const rec = new Recorder();
  await startPush(store, { group: 'cg', consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' }, 't',
    rec.listener);
  return rec;
}

/** Fail the first open of a file whose path holds `part` (EAGAIN, retriable); counts opens. */
function refuseFirstOpen(sim: SimBackend, part: string): { readonly opens: number } {
  const seen = { opens: 0 };
  sim.failWhen((e) => {
    if (e.op !== 'open' || !e.path.includes(part)) return null;
    return seen.opens++ === 0 ? 'EAGAIN' : null;
  });
  return seen;
}

/** A store on `sim` with a transactional producer whose listener commits. */
async function committing(sim: SimBackend, dir: string, clock: ManualClock) {
  const logger = keptLogger();
  const store = await openSim(sim, dir, { clock, logger });
  const listener = new TxListener(() => 'COMMIT_MESSAGE', () => 'COMMIT_MESSAGE');
  const producer = store.createProducer({ group: 'txg', transactionListener: listener });
  return { store, logger, listener, producer };
}

/** Reopened, the half is resolved (no check-back) and t holds the message once. */
async function expectResolvedAfterReopen(sim: SimBackend, dir: string, clock: ManualClock):
  Promise<void> {
  const store = await openSim(sim, dir, { clock });
  try {
    const checker = new TxListener(() => 'UNKNOWN', () => 'COMMIT_MESSAGE');
    store.createProducer({ group: 'txg', transactionListener: checker });
    clock.advance(120_000);
    await settle();
    expect(checker.checked).toEqual([]);
    expect(await store.maxOffset('t', 0)).toBe(1);
  } finally {
    await store.close();
  }
}

describe('ending a transaction', () => {
  // Seed 413: the committed message's append failed (ENOSPC opening its queue file), the Op
  // record went on and marked the half resolved: the commit was lost for good.
  it('a commit whose message is not stored leaves no Op: the check-back commits it later',
    async () => {
      const sim = new SimBackend({ seed: 413 });
      const clock = new ManualClock();
      const dir = tmp.make();
      const { store, logger, listener, producer } = await committing(sim, dir, clock);
      failFirstQueueFile(sim, 'ENOSPC');
      const r = await producer.sendMessageInTransaction({ topic: 't', body: 'paid' });
      expect(r.status).toBe('SEND_OK');
      expect(sim.faultsFired).toBe(1);
      expect(logger.lines.join('\n')).toContain(`ending the transaction of ${r.msgId}`);
      expect(await store.maxOffset('t', 0)).toBe(0);
      expect(await store.maxOffset(OP_TOPIC, 0)).toBe(0);
      const rec = await consume(store);
      await advanceUntil(clock, 1000, () => rec.calls.length === 1, 'the commit by check-back');
      expect(listener.checked.map((m) => m.msgId)).toEqual([r.msgId]);
      expect(rec.messages[0]!.msgId).toBe(r.msgId);
      expect(await store.maxOffset(OP_TOPIC, 0)).toBe(1);
      await store.close();
      await expectResolvedAfterReopen(sim, dir, clock);
    });

  it('an Op that fails after its message was stored still resolves the half: no second copy',
    async () => {
      const sim = new SimBackend({ seed: 4131 });
      const clock = new ManualClock();
      const dir = tmp.make();
      const { store, logger, listener, producer } = await committing(sim, dir, clock);
      const refused = refuseFirstOpen(sim, `/consumequeue/${OP_TOPIC}/`);
      const r = await producer.sendMessageInTransaction({ topic: 't', body: 'once' });
      expect(r.localTransactionState).toBe('COMMIT_MESSAGE');
      expect(refused.opens).toBe(1);
      expect(logger.lines.join('\n')).toContain('Op record of the half message');
      expect(await store.maxOffset('t', 0)).toBe(1);
      expect(await store.maxOffset(OP_TOPIC, 0)).toBe(0);
      clock.advance(120_000);
      await settle();
      expect(listener.checked).toEqual([]);
      await store.close();
      await expectResolvedAfterReopen(sim, dir, clock);
    });

  it('the check-max copy is stored before its Op, and a failed one leaves the half checked',
    async () => {
      const sim = new SimBackend({ seed: 4130 });
      const clock = new ManualClock();
      const store = await openSim(sim, tmp.make(), { clock, transactionCheckMax: 1 });
      try {
        const producer = store.createProducer({ group: 'txg',
          transactionListener: new TxListener(() => 'UNKNOWN', () => 'UNKNOWN') });
        const r = await producer.sendMessageInTransaction({ topic: 't', body: 'stuck' });
        const refused = refuseFirstOpen(sim, 'TRANS_CHECK_MAX');
        await advanceUntil(clock, 1000,
          async () => (await store.maxOffset('RMQ_SYS_TRANS_CHECK_MAX_TIME_TOPIC', 0)) === 1,
          'the move to the check-max topic');
        expect(refused.opens).toBeGreaterThan(1);
        expect(await store.maxOffset(OP_TOPIC, 0)).toBe(1);
        const moved = [...storeInternals(store).engine.storage.commitLog
          .iterate(r.commitLogOffset)].filter((rec) => rec.topic.includes('CHECK_MAX'));
        expect(moved.map((rec) => rec.properties.ORIGIN_MESSAGE_ID)).toEqual([r.msgId]);
      } finally {
        await store.close();
      }
    });
});

describe('the check-back and a half send still out', () => {
  // Seed 705: a SYNC_FLUSH half waited for its flush while the clock passed the transaction
  // timeout; the check-back asked the listener (COMMIT) and stored the message, then the send
  // returned FLUSH_DISK_TIMEOUT and the producer reported ROLLBACK_MESSAGE for a delivered one.
  it('a half is not checked back before its send returns to the producer', async () => {
    const flushes = heldFlushes(705, true);
    const clock = new ManualClock();
    const store = await openSim(flushes.sim, tmp.make(), { clock, flushDiskType: 'SYNC_FLUSH',
      syncFlushTimeoutMs: 5000, transactionTimeoutMs: 3000, transactionCheckIntervalMs: 1000 });
    try {
      const listener = new TxListener(() => 'COMMIT_MESSAGE', () => 'COMMIT_MESSAGE');
      const producer = store.createProducer({ group: 'txg', transactionListener: listener });
      const rec = await consume(store);
      const sending = producer.sendMessageInTransaction({ topic: 't', body: 'slow' });
      await until(() => storeInternals(store).engine.commitLogMaxOffset > 0, 'the half appended');
      // A laptop waking up: the flush deadline and several check-back rounds pass at once.
      clock.advance(60_000);
      flushes.release();
      const r = await sending;
      expect(r.status).toBe('FLUSH_DISK_TIMEOUT');
      expect(r.localTransactionState).toBe('ROLLBACK_MESSAGE');
      expect(listener.executed).toEqual([]);
      clock.advance(60_000);
      await settle();
      expect(listener.checked).toEqual([]);
      expect(rec.calls).toEqual([]);
      expect(await store.maxOffset('t', 0)).toBe(0);
    } finally {
      flushes.release();
      await store.close();
    }
  });

  it('halves stored before a send still out are checked as usual', async () => {
    const flushes = heldFlushes(7050, false);
    const clock = new ManualClock();
    const store = await openSim(flushes.sim, tmp.make(), { clock, flushDiskType: 'SYNC_FLUSH',
      syncFlushTimeoutMs: 600_000, transactionTimeoutMs: 3000, transactionCheckIntervalMs: 1000 });
    try {
      const listener = new TxListener((m) => (m.body.toString() === 'early' ? 'UNKNOWN'
        : 'COMMIT_MESSAGE'), () => 'ROLLBACK_MESSAGE');
      const producer = store.createProducer({ group: 'txg', transactionListener: listener });
      await producer.sendMessageInTransaction({ topic: 't', body: 'early' });
      const engine = storeInternals(store).engine;
      const end = engine.commitLogMaxOffset;
      flushes.hold();
      const sending = producer.sendMessageInTransaction({ topic: 't', body: 'late' });
      await until(() => engine.commitLogMaxOffset > end, 'the second half appended');
      await advanceUntil(clock, 1000, () => listener.checked.length > 0, 'the first check');
      expect(listener.checkedBodies).toEqual(['early']);
      flushes.release();
      expect((await sending).localTransactionState).toBe('COMMIT_MESSAGE');
    } finally {
      flushes.release();
      await store.close();
    }
  });
});
