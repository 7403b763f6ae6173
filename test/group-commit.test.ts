import { describe, expect, it } from 'vitest';
import { ManualClock } from '../lib/store/clock.js';
import { GroupCommitService, type Flushable } from '../lib/store/flush/group-commit.js';
import { nextTurn } from './support/backends.js';

/** A Flushable whose flushes the test completes by hand. */
class HandFlush implements Flushable {
  readonly calls: { resolve(offset: number): void; reject(err: unknown): void }[] = [];
  flush(): Promise<number> {
    return new Promise((resolve, reject) => this.calls.push({ resolve, reject }));
  }
  /** Complete the newest flush with `offset`, then let the service react. */
  async complete(offset: number): Promise<void> {
    this.calls.at(-1)!.resolve(offset);
    await nextTurn();
  }
}

/** Watch a promise without awaiting it. */
function watch<T>(p: Promise<T>): { value?: T; error?: unknown } {
  const state: { value?: T; error?: unknown } = {};
  p.then((v) => { state.value = v; }, (e: unknown) => { state.error = e; });
  return state;
}

const TIMEOUT = 5000;

describe('GroupCommitService', () => {
  function setup(): { target: HandFlush; clock: ManualClock; group: GroupCommitService } {
    const target = new HandFlush();
    const clock = new ManualClock();
    return { target, clock, group: new GroupCommitService(target, clock, TIMEOUT) };
  }

  it('lets every append of one turn share one flush', async () => {
    const { target, group } = setup();
    const waits = [100, 200, 300].map((o) => watch(group.waitFor(o)));
    expect(target.calls).toHaveLength(0);
    await nextTurn();
    expect(target.calls).toHaveLength(1);
    expect(group.pending).toBe(3);
    await target.complete(300);
    expect(waits.map((w) => w.value)).toEqual(['PUT_OK', 'PUT_OK', 'PUT_OK']);
    expect([target.calls.length, group.flushCount, group.pending]).toEqual([1, 1, 0]);
  });

  it('starts the flush at flushNow, once, and not again at the end of the turn', async () => {
    const { target, group } = setup();
    group.flushNow();
    expect(target.calls).toHaveLength(0); // nobody waits: nothing to flush
    const waits = [100, 200].map((o) => watch(group.waitFor(o)));
    group.flushNow();
    group.flushNow();
    expect(target.calls).toHaveLength(1);
    await nextTurn();
    expect(target.calls).toHaveLength(1);
    await target.complete(200);
    expect(waits.map((w) => w.value)).toEqual(['PUT_OK', 'PUT_OK']);
    expect([group.flushCount, group.pending]).toEqual([1, 0]);
  });

  it('makes a group formed during a flush wait for the next flush', async () => {
    const { target, group } = setup();
    const a = watch(group.waitFor(100));
    await nextTurn();
    const b = watch(group.waitFor(200));
    const c = watch(group.waitFor(250));
    await nextTurn();
    expect(target.calls).toHaveLength(1);
    await target.complete(100);
    expect([a.value, b.value, c.value]).toEqual(['PUT_OK', undefined, undefined]);
    expect(target.calls).toHaveLength(2);
    await target.complete(250);
    expect([b.value, c.value]).toEqual(['PUT_OK', 'PUT_OK']);
    expect(group.flushCount).toBe(2);
  });

  it('resolves only the waiters the flushed offset covers', async () => {
    const { target, group } = setup();
    const a = watch(group.waitFor(100));
    const b = watch(group.waitFor(200));
    await nextTurn();
    await target.complete(150);
    expect([a.value, b.value]).toEqual(['PUT_OK', undefined]);
    expect(target.calls).toHaveLength(2);
    await target.complete(200);
    expect(b.value).toBe('PUT_OK');
  });

  it('times out a waiter at its deadline while later ones still complete', async () => {
    const { target, clock, group } = setup();
    const a = watch(group.waitFor(100));
    await nextTurn();
    clock.advance(TIMEOUT / 2);
    const b = watch(group.waitFor(200));
    clock.advance(TIMEOUT / 2 - 1);
    await nextTurn();
    expect(a.value).toBeUndefined();
    clock.advance(1);
    await nextTurn();
    expect([a.value, b.value]).toEqual(['FLUSH_DISK_TIMEOUT', undefined]);
    await target.complete(100);
    expect(b.value).toBeUndefined();
    await target.complete(200);
    expect(b.value).toBe('PUT_OK');
    expect(group.pending).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('rejects every waiter when a flush fails, and every later one too', async () => {
    const { target, group } = setup();
    const waits = [100, 200].map((o) => watch(group.waitFor(o)));
    await nextTurn();
    const failure = new Error('EIO');
    target.calls[0]!.reject(failure);
    await nextTurn();
    expect(waits.map((w) => w.error)).toEqual([failure, failure]);
    await expect(group.waitFor(300)).rejects.toBe(failure);
    expect(group.pending).toBe(0);
  });

  it('drain completes what the final flush covered', async () => {
    const { group } = setup();
    const a = watch(group.waitFor(100));
    group.drain(100);
    await nextTurn();
    expect(a.value).toBe('PUT_OK');
  });
});
