import { describe, expect, it } from 'vitest';
import { ManualClock } from '../lib/store/clock.js';
import { IntervalFlushService, PAGE_BYTES } from '../lib/store/flush/flush-service.js';
import { nextTurn } from './support/backends.js';

const INTERVAL = 100;
const THOROUGH = 1000;
const LEAST_PAGES = 4;

describe('IntervalFlushService', () => {
  function setup(fail: unknown = null): {
    clock: ManualClock; service: IntervalFlushService; flushes: number[]; errors: unknown[];
    dirty: { bytes: number };
  } {
    const clock = new ManualClock();
    const dirty = { bytes: 0 };
    const flushes: number[] = [];
    const errors: unknown[] = [];
    const service = new IntervalFlushService({
      clock, intervalMs: INTERVAL, leastPages: LEAST_PAGES, thoroughIntervalMs: THOROUGH,
      dirtyBytes: () => dirty.bytes,
      flush: async () => {
        flushes.push(clock.now());
        if (fail !== null) throw fail;
        dirty.bytes = 0;
      },
      onError: (err) => errors.push(err),
    });
    service.start();
    return { clock, service, flushes, errors, dirty };
  }

  /** Advance one interval and let a flush it started finish and re-arm. */
  async function tick(clock: ManualClock): Promise<void> {
    clock.advance(INTERVAL);
    await nextTurn();
  }

  it('does not flush below leastPages, and flushes at leastPages', async () => {
    const { clock, service, flushes, dirty } = setup();
    const t0 = clock.now();
    dirty.bytes = LEAST_PAGES * PAGE_BYTES - 1;
    for (let i = 0; i < 5; i++) await tick(clock);
    expect(flushes).toEqual([]);
    dirty.bytes = LEAST_PAGES * PAGE_BYTES;
    await tick(clock);
    expect(flushes).toEqual([t0 + 6 * INTERVAL]);
    await tick(clock);
    expect(flushes).toHaveLength(1);
    service.stop();
  });

  it('flushes whatever is dirty once thoroughIntervalMs has passed', async () => {
    const { clock, service, flushes, dirty } = setup();
    const t0 = clock.now();
    dirty.bytes = 1;
    for (let i = 0; i < THOROUGH / INTERVAL - 1; i++) await tick(clock);
    expect(flushes).toEqual([]);
    await tick(clock);
    expect(flushes).toEqual([t0 + THOROUGH]);
    dirty.bytes = 1;
    for (let i = 0; i < THOROUGH / INTERVAL - 1; i++) await tick(clock);
    expect(flushes).toHaveLength(1);
    await tick(clock);
    expect(flushes).toEqual([t0 + THOROUGH, t0 + 2 * THOROUGH]);
    service.stop();
  });

  it('never flushes when nothing is dirty', async () => {
    const { clock, service, flushes } = setup();
    for (let i = 0; i < 2 * THOROUGH / INTERVAL; i++) await tick(clock);
    expect(flushes).toEqual([]);
    service.stop();
    expect(clock.pendingTimers).toBe(0);
  });

  it('stops and reports through onError when a flush fails', async () => {
    const failure = new Error('EIO');
    const { clock, flushes, errors, dirty } = setup(failure);
    dirty.bytes = LEAST_PAGES * PAGE_BYTES;
    await tick(clock);
    expect(flushes).toHaveLength(1);
    expect(errors).toEqual([failure]);
    expect(clock.pendingTimers).toBe(0);
    for (let i = 0; i < 20; i++) await tick(clock);
    expect(flushes).toHaveLength(1);
  });

  it('runFlush during a flush chains a second flush after it', async () => {
    const { clock, service, flushes } = setup();
    const first = service.runFlush();
    const second = service.runFlush();
    await Promise.all([first, second]);
    expect(flushes).toEqual([clock.now(), clock.now()]);
    service.stop();
  });
});
