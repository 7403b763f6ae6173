/**
 * The owner's side of the shared write window (lib/remote/window-server.ts) on its own: a thread
 * that reserved several tickets and died leaves that many holes in a row, and the owner skips
 * them in one pass once the first has waited `holeMs`, not one per `holeMs`.
 */
import type { BroadcastChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreEngine } from '../../lib/store/store-engine.js';
import { WindowServer } from '../../lib/remote/window-server.js';
import {
  CTL_HEAD, CTL_TAIL, CTL_WAKE, PHASE_FREE, stateOf, windowChannel, WindowViews,
  type WindowMessage,
} from '../../lib/remote/write-window.js';
import { useTempDirs } from '../support/backends.js';

const tmp = useTempDirs('pmq-holes-');
const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** Attach to the window of `dir` as a producer thread would: the views it is offered. */
function attach(dir: string): Promise<WindowViews> {
  const channel: BroadcastChannel = windowChannel(dir);
  closers.push(() => channel.close());
  return new Promise((resolve) => {
    channel.onmessage = (event: unknown) => {
      const m = (event as { data?: WindowMessage }).data;
      if (m?.type === 'window') resolve(new WindowViews(m.sab, m.shape));
    };
    channel.postMessage({ type: 'attach' } satisfies WindowMessage);
  });
}

describe('holes a dead thread left in the write window', () => {
  it('are skipped in one pass after the first has waited holeMs', async () => {
    const dir = tmp.make();
    const engine = await StoreEngine.open(dir, {});
    closers.push(() => engine.close());
    // The head ticket the owner had reached when each hole was skipped: one pass skips them
    // all before it publishes its new head.
    const headsAtSkip: number[] = [];
    let views: WindowViews | null = null;
    const logger = {
      debug: () => undefined, info: () => undefined, error: () => undefined,
      warn: (m: string) => {
        if (m.includes('skipped write-window ticket')) {
          headsAtSkip.push(Atomics.load(views!.ctl, CTL_HEAD));
        }
      },
    };
    const shape = { entries: 16, entryBytes: 1024, lanes: 2, laneSlots: 8 };
    const server = new WindowServer(dir, engine, logger, shape, 20);
    closers.push(() => server.close());
    views = await attach(dir);
    // A thread takes tickets 0-4 and dies before it claims their entries.
    expect(Atomics.add(views.ctl, CTL_TAIL, 5)).toBe(0);
    for (let t = 0; t < 5; t++) expect(Atomics.load(views.state, t)).toBe(stateOf(t, PHASE_FREE));
    Atomics.add(views.ctl, CTL_WAKE, 1);
    Atomics.notify(views.ctl, CTL_WAKE);
    for (let n = 0; server.skipped < 5 && n < 500; n++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(server.skipped).toBe(5);
    expect(headsAtSkip).toEqual([0, 0, 0, 0, 0]);
    expect(Atomics.load(views.ctl, CTL_HEAD)).toBe(5);
    // The entries are free for their next tickets, one lap on.
    for (let t = 0; t < 5; t++) {
      expect(Atomics.load(views.state, t)).toBe(stateOf(t + shape.entries, PHASE_FREE));
    }
  });
});
