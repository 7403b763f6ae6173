/**
 * Transactional messages across reopens and over time (lib/broker/transaction/): unresolved
 * half messages survive a restart and are checked once a producer of their group with a
 * listener exists; check counts survive too; resolved halves are known again from the Op
 * queue, read from the persisted cursor; retention keeps unresolved halves; memory stays small.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock, storeInternals } from '../../lib/internal.js';
import type { MessageStore, MessageStoreOptions, Producer } from '../../lib/index.js';
import { useTempDirs } from '../support/backends.js';
import { openStore, Recorder, settle, startPush, until } from '../support/messaging.js';
import { storeFiles } from '../support/test-backend.js';
import { advanceUntil, keptLogger, TxListener } from '../support/transactions.js';

const tmp = useTempDirs('pmq-transactions-');
const PROGRESS = 'config/transaction.json';
const CHECK_MAX_TOPIC = 'RMQ_SYS_TRANS_CHECK_MAX_TIME_TOPIC';

async function consume(store: MessageStore): Promise<Recorder> {
  const rec = new Recorder();
  await startPush(store, { group: 'cg', consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' }, 't',
    rec.listener);
  return rec;
}

function txProducer(store: MessageStore, listener: TxListener): Producer {
  return store.createProducer({ group: 'txg', transactionListener: listener });
}

interface ProgressData {
  half: { origin: number; bits: string };
  op: number;
  checks: Record<string, number>;
}

/** The progress file's data, as written; null before the first write. */
function progressOf(dir: string): ProgressData | null {
  const bytes = storeFiles(dir).readFile(PROGRESS);
  return bytes === null ? null : (JSON.parse(bytes.toString('utf8')) as { data: never }).data;
}

describe('across a reopen', () => {
  it('unresolved halves wait for a producer of their group, then are checked', async () => {
    const clock = new ManualClock();
    const dir = tmp.make();
    const options: MessageStoreOptions = { clock, transactionCheckMax: 3 };
    let store = await openStore(dir, options);
    const first = new TxListener(() => 'UNKNOWN', () => 'UNKNOWN');
    const producer = txProducer(store, first);
    const a = await producer.sendMessageInTransaction({ topic: 't', body: 'a' });
    const b = await producer.sendMessageInTransaction({ topic: 't', body: 'b' });
    const c = await producer.sendMessageInTransaction({ topic: 't', body: 'c' });
    // Two checks each before the restart: one is left of transactionCheckMax (3).
    await advanceUntil(clock, 1000, () => first.checked.length === 6, 'two checks of each');
    await store.close();
    store = await openStore(dir, options);
    try {
      const rec = await consume(store);
      clock.advance(120_000);
      await settle();
      expect(rec.calls).toEqual([]);
      const listener = new TxListener(() => 'UNKNOWN', (m) =>
        (m.body.toString() === 'a' ? 'COMMIT_MESSAGE'
          : m.body.toString() === 'b' ? 'ROLLBACK_MESSAGE' : 'UNKNOWN'));
      txProducer(store, listener);
      await advanceUntil(clock, 1000, () => rec.calls.length === 1, 'the commit of a');
      expect(rec.messages[0]!.msgId).toBe(a.msgId);
      // The move to the check-max topic creates that topic and its queue file: waited for, not
      // given a number of turns (a loaded machine took longer).
      await advanceUntil(clock, 1000, async () =>
        (await store.maxOffset(CHECK_MAX_TOPIC, 0)) === 1, 'the move of c');
      clock.advance(120_000);
      await settle();
      // c had its third and last check, then went to the check-max topic.
      expect(listener.checkedBodies.sort()).toEqual(['a', 'b', 'c']);
      expect(listener.checked.map((m) => m.msgId).sort()).toEqual([a, b, c].map((r) => r.msgId)
        .sort());
      expect(await store.maxOffset(CHECK_MAX_TOPIC, 0)).toBe(1);
      expect(rec.calls).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  it('resolved halves are read back from the Op queue after the persisted cursor', async () => {
    const clock = new ManualClock();
    const dir = tmp.make();
    let store = await openStore(dir, { clock });
    const answer = (m: { body: unknown }): 'COMMIT_MESSAGE' | 'ROLLBACK_MESSAGE' =>
      (String(m.body).endsWith('0') ? 'ROLLBACK_MESSAGE' : 'COMMIT_MESSAGE');
    const listener = new TxListener((m) => answer(m), () => 'UNKNOWN');
    let producer = txProducer(store, listener);
    for (let i = 0; i < 10; i++) {
      await producer.sendMessageInTransaction({ topic: 't', body: `m${i}` });
    }
    // A check-back round writes the progress: ten resolved halves, the Op cursor at 10.
    clock.advance(5000);
    await until(() => progressOf(dir)?.op === 10, 'the first progress write');
    const early = storeFiles(dir).readFile(PROGRESS)!;
    for (let i = 10; i < 20; i++) {
      await producer.sendMessageInTransaction({ topic: 't', body: `m${i}` });
    }
    await store.close();
    expect(progressOf(dir)?.op).toBe(20);
    // As if the last writes were lost: the Op records after the cursor tell what is resolved.
    storeFiles(dir).writeFile(PROGRESS, early);
    store = await openStore(dir, { clock });
    try {
      const checker = new TxListener(() => 'UNKNOWN', () => 'COMMIT_MESSAGE');
      producer = txProducer(store, checker);
      const rec = await consume(store);
      await until(() => rec.calls.length === 18, 'the committed messages');
      clock.advance(60_000);
      await settle();
      expect(checker.checked).toEqual([]);
      expect(rec.bodies.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`)
        .filter((b) => !b.endsWith('0')).sort());
    } finally {
      await store.close();
    }
    expect(progressOf(dir)).toMatchObject({ op: 20, checks: {} });
  });

  it('a commit cut off by the store closing is ended by the check-back after a reopen',
    async () => {
      const clock = new ManualClock();
      const dir = tmp.make();
      const logger = keptLogger();
      let store = await openStore(dir, { clock, logger });
      const closing = store;
      const listener = new TxListener(async () => {
        await closing.close();
        return 'COMMIT_MESSAGE' as const;
      });
      const r = await txProducer(store, listener)
        .sendMessageInTransaction({ topic: 't', body: 'late' });
      expect(r.localTransactionState).toBe('COMMIT_MESSAGE');
      expect(logger.lines.join('\n')).toContain(`ending the transaction of ${r.msgId}`);
      store = await openStore(dir, { clock });
      try {
        const rec = await consume(store);
        txProducer(store, new TxListener(() => 'UNKNOWN', () => 'COMMIT_MESSAGE'));
        await advanceUntil(clock, 1000, () => rec.calls.length === 1, 'the commit');
        expect(rec.messages[0]!.msgId).toBe(r.msgId);
      } finally {
        await store.close();
      }
    });

  it('a damaged progress file stops the open with CORRUPT_DATA', async () => {
    const dir = tmp.make();
    const store = await openStore(dir);
    await store.close();
    storeFiles(dir).writeFile(PROGRESS, Buffer.from('{"version":1,"checksum":"0","data":{}}'));
    await expect(openStore(dir)).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
  });
});

describe('what transactions cost', () => {
  it('resolved halves take bits, not objects, and the cursor follows the first unresolved',
    async () => {
      const clock = new ManualClock();
      const dir = tmp.make();
      const store = await openStore(dir, { clock });
      let n = 0;
      const listener = new TxListener(() => (n++ === 5 ? 'UNKNOWN' : 'COMMIT_MESSAGE'),
        () => 'UNKNOWN');
      const producer = txProducer(store, listener);
      const all = Array.from({ length: 3000 }, (_, i) =>
        producer.sendMessageInTransaction({ topic: 't', body: `m${i}` }));
      const results = await Promise.all(all);
      const unknown = results.find((r) => r.localTransactionState === 'UNKNOWN')!;
      expect(unknown).toBeDefined();
      await store.close();
      const progress = progressOf(dir)!;
      // Halves before the unknown one are below the watermark; the 2994 after it are bits.
      expect(progress.half.origin).toBeLessThanOrEqual(unknown.queueOffset);
      expect(Buffer.from(progress.half.bits, 'base64').length).toBeLessThanOrEqual(
        Math.ceil((3000 - progress.half.origin) / 8));
      expect(progress.checks).toEqual({});
    });

  it('retention keeps the segment of an unresolved half', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock, commitLogSegmentSize: 64 * 1024,
      fileReservedTimeHours: 1, transactionCheckIntervalMs: 600_000 });
    try {
      const listener = new TxListener(() => 'UNKNOWN', () => 'UNKNOWN');
      const producer = txProducer(store, listener);
      const plain = store.createProducer({ group: 'pg' });
      for (let i = 0; i < 1000; i++) await plain.send({ topic: 'u', body: 'y'.repeat(100) });
      const half = await producer.sendMessageInTransaction({ topic: 't', body: 'x'.repeat(100) });
      for (let i = 0; i < 2000; i++) await plain.send({ topic: 'u', body: 'y'.repeat(100) });
      const engine = storeInternals(store).engine;
      await engine.flushed();
      clock.advance(2 * 3_600_000);
      await engine.runRetention();
      expect(engine.commitLogMinOffset).toBeGreaterThan(0);
      expect(engine.commitLogMinOffset).toBeLessThanOrEqual(half.commitLogOffset);
      const rec = await consume(store);
      listener.check = () => 'COMMIT_MESSAGE';
      await advanceUntil(clock, 60_000, () => rec.calls.length === 1, 'the commit');
      expect(rec.messages[0]!.msgId).toBe(half.msgId);
    } finally {
      await store.close();
    }
  });
});
