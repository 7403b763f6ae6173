import { describe, expect, it } from 'vitest';
import { ManualClock } from '../lib/store/clock.js';
import { ReplicaWaitService } from '../lib/store/flush/replica-wait.js';
import { nextTurn } from './support/backends.js';

const TIMEOUT = 3000;
const GAP = 1000;

function setup(): { clock: ManualClock; wait: ReplicaWaitService } {
  const clock = new ManualClock();
  return { clock, wait: new ReplicaWaitService(clock, TIMEOUT, GAP) };
}

/** A result the service settles, and what it settled it with (undefined while it waits). */
function waitOn(wait: ReplicaWaitService, offset: number, status = 'PUT_OK'):
  { result: { status: string }; settled?: string } {
  const out: { result: { status: string }; settled?: string } = { result: { status } };
  void wait.waitForResult(offset, out.result).then((r) => { out.settled = r.status; });
  return out;
}

describe('ReplicaWaitService', () => {
  it('resolves SLAVE_NOT_AVAILABLE at once with no follower, or one too far behind', async () => {
    const { wait } = setup();
    const none = waitOn(wait, 100);
    wait.update(1, 0);
    const far = waitOn(wait, GAP + 1);
    await nextTurn();
    expect(none.settled).toBe('SLAVE_NOT_AVAILABLE');
    expect(far.settled).toBe('SLAVE_NOT_AVAILABLE');
    expect(wait.pending).toBe(0);
  });

  it('resolves every waiter at or below an acknowledgement, in one go, the rest later',
    async () => {
      const { wait } = setup();
      wait.update(1, 0);
      const ws = [100, 200, 300].map((o) => waitOn(wait, o));
      expect(wait.pending).toBe(3);
      wait.update(1, 200);
      await nextTurn();
      expect(ws.map((w) => w.settled)).toEqual(['PUT_OK', 'PUT_OK', undefined]);
      wait.update(1, 300);
      await nextTurn();
      expect(ws[2]!.settled).toBe('PUT_OK');
      // Already acknowledged: at once.
      const early = waitOn(wait, 250);
      await nextTurn();
      expect(early.settled).toBe('PUT_OK');
      expect(wait.pending).toBe(0);
    });

  it('times out FLUSH_SLAVE_TIMEOUT at each deadline; an earlier failure status stays',
    async () => {
      const { clock, wait } = setup();
      wait.update(1, 0);
      const first = waitOn(wait, 100);
      clock.advance(1000);
      const second = waitOn(wait, 200, 'FLUSH_DISK_TIMEOUT');
      clock.advance(TIMEOUT - 1000);
      await nextTurn();
      expect(first.settled).toBe('FLUSH_SLAVE_TIMEOUT');
      expect(second.settled).toBeUndefined();
      clock.advance(1000);
      await nextTurn();
      expect(second.settled).toBe('FLUSH_DISK_TIMEOUT');
      expect(wait.pending).toBe(0);
    });

  it('keeps order over many waiters (the queue compacts) and drains at close', async () => {
    const { wait } = setup();
    wait.update(1, 0);
    const ws = Array.from({ length: 3000 }, (_, i) => waitOn(wait, (i + 1) * 0.25));
    for (let acked = 50; acked <= 500; acked += 50) wait.update(1, acked);
    await nextTurn();
    expect(ws.filter((w) => w.settled === 'PUT_OK')).toHaveLength(2000);
    expect(wait.pending).toBe(1000);
    wait.drain();
    await nextTurn();
    expect(ws.slice(2000).every((w) => w.settled === 'FLUSH_SLAVE_TIMEOUT')).toBe(true);
    expect(wait.pending).toBe(0);
  });
});
