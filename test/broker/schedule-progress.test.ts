/**
 * The delay progress file under overlapping writes (simulator seed 3): a write whose log flush
 * settles late must not land after a later write and undo what that one reported on disk (a
 * cancelled message was delivered after a crash).
 */
import { describe, expect, it } from 'vitest';
import { ScheduleProgress } from '../../lib/broker/schedule/progress.js';
import { ManualClock } from '../../lib/internal.js';
import { SimBackend } from '../support/sim-backend.js';

describe('ScheduleProgress', () => {
  it('writes one at a time: a slow flush never lets an older write land last', async () => {
    const backend = new SimBackend({ seed: 1 });
    const flushes: (() => void)[] = [];
    const options = { backend, configDir: '/data/config', clock: new ManualClock(),
      logger: { debug: () => undefined, info: () => undefined, warn: () => undefined,
        error: () => undefined }, intervalMs: 1000,
      beforePersist: () => new Promise<void>((resolve) => flushes.push(resolve)) };
    backend.mkdir('/data');
    backend.mkdir('/data/config');
    const progress = new ScheduleProgress(options);
    progress.load();
    progress.setLevel(0, 5);
    const older = progress.persist();
    progress.cancelled.add(4096);
    progress.changed();
    const newer = progress.persist();
    // Two flushes pending at once: the newer settles first, then the older.
    const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    for (let i = 0; i < 60; i++) {
      await turn();
      if (flushes.length === 2) {
        const [first, second] = flushes.splice(0);
        second!();
        for (let k = 0; k < 5; k++) await turn();
        first!();
      } else if (i % 5 === 4 && flushes.length > 0) {
        flushes.shift()!();
      }
    }
    await Promise.all([older, newer]);
    const reread = new ScheduleProgress(options);
    reread.load();
    expect(reread.level(0)).toBe(5);
    expect([...reread.cancelled]).toEqual([4096]);
  });
});
