import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { PullHoldService } from '../../lib/broker/pull-hold.js';
import { ManualClock } from '../../lib/store/clock.js';

/** Watch a promise without awaiting it. */
function watch<T>(p: Promise<T>): { value?: T } {
  const state: { value?: T } = {};
  void p.then((v) => { state.value = v; });
  return state;
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const nothing = (): number => 0;

describe('PullHoldService', () => {
  it('wakes the waiters a queue grew past, and only those', async () => {
    const holds = new PullHoldService(new ManualClock());
    const low = watch(holds.wait('t', 0, 0, 60_000, nothing));
    const high = watch(holds.wait('t', 0, 5, 60_000, nothing));
    const other = watch(holds.wait('t', 1, 0, 60_000, nothing));
    const otherTopic = watch(holds.wait('u', 0, 0, 60_000, nothing));
    holds.notify('t', 0, 3);
    await settle();
    expect([low.value, high.value, other.value, otherTopic.value])
      .toEqual([true, undefined, undefined, undefined]);
    expect(holds.heldCount).toBe(3);
    holds.notify('t', 0, 6);
    holds.notify('u', 0, 1);
    await settle();
    expect([high.value, otherTopic.value]).toEqual([true, true]);
    expect(holds.heldCount).toBe(1);
    holds.releaseAll();
    await settle();
    expect(other.value).toBe(false);
    expect(holds.heldCount).toBe(0);
  });

  it('gives a signal one abort listener, however many waits use it', async () => {
    const holds = new PullHoldService(new ManualClock());
    const controller = new AbortController();
    for (let i = 0; i < 100; i++) {
      const wait = holds.wait('t', i % 4, i, 60_000, nothing, controller.signal);
      holds.notify('t', i % 4, i + 1);
      expect(await wait).toBe(true);
    }
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    expect(holds.heldCount).toBe(0);
  });

  it('ends every wait made with a signal when it aborts, on any queue, and no other', async () => {
    const clock = new ManualClock();
    const holds = new PullHoldService(clock);
    const controller = new AbortController();
    const signalled = [['t', 0], ['t', 1], ['u', 0]].map(([topic, q]) =>
      watch(holds.wait(topic as string, q as number, 0, 60_000, nothing, controller.signal)));
    const free = watch(holds.wait('t', 0, 0, 60_000, nothing));
    controller.abort();
    await settle();
    expect(signalled.map((w) => w.value)).toEqual([false, false, false]);
    expect([free.value, holds.heldCount]).toEqual([undefined, 1]);
    // The aborted waits' timers are gone: only the free wait's deadline is left to end.
    clock.advance(60_000);
    await settle();
    expect([free.value, holds.heldCount]).toEqual([false, 0]);
  });

  it('serves every deadline with one timer, and ends each wait at its own deadline', async () => {
    const clock = new ManualClock();
    const holds = new PullHoldService(clock);
    const long = [0, 1, 2].map((q) => watch(holds.wait('t', q, 0, 60_000, nothing)));
    expect(clock.pendingTimers).toBe(1);
    clock.advance(10_000);
    const later = watch(holds.wait('t', 0, 0, 60_000, nothing)); // due at 70 s
    const short = watch(holds.wait('t', 1, 0, 1_000, nothing)); // due at 11 s: re-armed
    expect(clock.pendingTimers).toBe(1);
    clock.advance(999);
    await settle();
    expect(short.value).toBeUndefined();
    clock.advance(1);
    await settle();
    expect([short.value, holds.heldCount]).toEqual([false, 4]);
    clock.advance(49_000); // 60 s: the first three
    await settle();
    expect([...long.map((w) => w.value), later.value]).toEqual([false, false, false, undefined]);
    clock.advance(10_000);
    await settle();
    expect([later.value, holds.heldCount]).toEqual([false, 0]);
  });

  it('wakes the waiters of a queue in the order they waited, keeping the others', async () => {
    const holds = new PullHoldService(new ManualClock());
    const woken: number[] = [];
    const offsets = [3, 0, 7, 1, 5];
    const waits = offsets.map((o) => holds.wait('t', 0, o, 60_000, nothing)
      .then((arrived) => { if (arrived) woken.push(o); }));
    holds.notify('t', 0, 4);
    await settle();
    expect(woken).toEqual([3, 0, 1]);
    holds.notify('t', 0, 8);
    await Promise.all(waits);
    expect(woken).toEqual([3, 0, 1, 7, 5]);
    expect(holds.heldCount).toBe(0);
  });
});
