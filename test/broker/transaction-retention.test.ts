/**
 * Retention and transactional messages: a half message's record outlives
 * `fileReservedTimeHours` until the progress file on disk says it is resolved. A half resolved
 * only in memory may have its committed message still unflushed; after a crash the check-back
 * needs the half to commit it again.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock, storeInternals } from '../../lib/internal.js';
import type { MessageStore } from '../../lib/index.js';
import { useTempDirs } from '../support/backends.js';
import { openStore, until } from '../support/messaging.js';
import { TxListener } from '../support/transactions.js';

const tmp = useTempDirs('pmq-transaction-retention-');
const HOUR = 3_600_000;

describe('retention and transactional messages', () => {
  it('keeps a resolved half\'s record until its resolution is on disk', async () => {
    const clock = new ManualClock();
    // 64 KiB segments that expire after 15 minutes; transaction progress written every hour.
    const store: MessageStore = await openStore(tmp.make(), { clock,
      commitLogSegmentSize: 64 * 1024, fileReservedTimeHours: 0.25,
      transactionCheckIntervalMs: HOUR, persistConsumerOffsetIntervalMs: HOUR });
    try {
      const engine = storeInternals(store).engine;
      const producer = store.createProducer({ group: 'pg', transactionListener: new TxListener() });
      const half = await producer.sendMessageInTransaction({ topic: 't', body: 'tx' });
      expect(half.localTransactionState).toBe('COMMIT_MESSAGE');
      const filler = store.createProducer({ group: 'filler' });
      for (let i = 0; i < 2000; i++) await filler.send({ topic: 'u', body: 'y'.repeat(100) });
      await engine.flushed();
      // Expired and committed, but the progress file still says unresolved.
      clock.advance(HOUR / 2);
      expect((await engine.runRetention()).deletedSegments).toBe(0);
      expect(engine.commitLogMinOffset).toBe(0);
      // The hourly progress write: now the half's segment may go.
      clock.advance(HOUR / 2);
      await until(async () => {
        await engine.runRetention();
        return engine.commitLogMinOffset > half.commitLogOffset;
      }, 'the half\'s segment deleted');
    } finally {
      await store.close();
    }
  });
});
