/**
 * The shape the broker's retention-hold tests share: segments that expire while a record is
 * still needed, and a progress file written only every hour that releases it.
 */
import { expect } from 'vitest';
import type { ManualClock, StoreEngine } from '../../lib/internal.js';
import type { MessageStore } from '../../lib/index.js';
import { until } from './messaging.js';

export const HOUR = 3_600_000;

/** Fill a few segments (so a held record's segment is neither the last nor new). */
export async function fillSegments(store: MessageStore): Promise<void> {
  const producer = store.createProducer({ group: 'filler' });
  for (let i = 0; i < 2000; i++) await producer.send({ topic: 'u', body: 'y'.repeat(100) });
}

/**
 * With every segment expired and the record at `offset` done with only in memory: retention
 * deletes nothing until the hourly progress write, then the record's segment goes.
 */
export async function expectHeldUntilProgressWrite(engine: StoreEngine, clock: ManualClock,
  offset: number, what: string): Promise<void> {
  clock.advance(HOUR / 2);
  expect((await engine.runRetention()).deletedSegments).toBe(0);
  expect(engine.commitLogMinOffset).toBe(0);
  clock.advance(HOUR / 2);
  await until(async () => {
    await engine.runRetention();
    return engine.commitLogMinOffset > offset;
  }, what);
}
