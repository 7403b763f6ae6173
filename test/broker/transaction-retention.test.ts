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
import { openStore } from '../support/messaging.js';
import { expectHeldUntilProgressWrite, fillSegments, HOUR } from '../support/retention-hold.js';
import { TxListener } from '../support/transactions.js';

const tmp = useTempDirs('pmq-transaction-retention-');

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
      await fillSegments(store);
      await engine.flushed();
      // Expired and committed, but the progress file still says unresolved until the hourly
      // progress write; then the half's segment may go.
      await expectHeldUntilProgressWrite(engine, clock, half.commitLogOffset,
        'the half\'s segment deleted');
    } finally {
      await store.close();
    }
  });
});
