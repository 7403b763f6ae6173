/**
 * Which store failures are retriable (PocketMQError.retriable, what producers retry): a
 * transient errno while creating a file an append needs (a consume-queue file, the next
 * commit-log segment), and SYNC_FLUSH flow control (BUSY past maxPendingFlushRequests). Each
 * stores nothing, and the store keeps running. Not: EIO, a full disk.
 */
import { describe, expect, it } from 'vitest';
import { PocketMQError } from '../lib/errors.js';
import { StoreEngine } from '../lib/store/store-engine.js';
import { useTempDirs } from './support/backends.js';
import { rejection } from './support/errors.js';
import { failFirstQueueFile } from './support/faults.js';
import { SimBackend } from './support/sim-backend.js';

const tmp = useTempDirs();
const SEGMENT = 4 * 2 ** 20;

describe('retriable store failures', () => {
  it('transient errnos make a retriable IO_ERROR; others and DISK_FULL do not', async () => {
    for (const [code, retriable] of [['EAGAIN', true], ['EBUSY', true], ['EINTR', true],
      ['EIO', false], ['ENOSPC', false]] as const) {
      const sim = new SimBackend({ seed: 13 });
      const store = await StoreEngine.open(tmp.make(), { backend: sim,
        commitLogSegmentSize: SEGMENT });
      try {
        failFirstQueueFile(sim, code);
        const err = await rejection(store.putMessage({ topic: 't', queueId: 0,
          body: Buffer.from('x') }));
        expect({ code, retriable: err.retriable }).toEqual({ code, retriable });
        expect(err.code).toBe(code === 'ENOSPC' ? 'DISK_FULL' : 'IO_ERROR');
        expect(store.isOpen).toBe(true);
        expect((await store.putMessage({ topic: 't', queueId: 0, body: Buffer.from('y') }))
          .queueOffset).toBe(0);
      } finally {
        await store.close();
      }
    }
  });

  it('a commit-log segment whose allocation fails with EAGAIN at the roll: retriable, then ok',
    async () => {
      const sim = new SimBackend({ seed: 15 });
      const store = await StoreEngine.open(tmp.make(), { backend: sim,
        commitLogSegmentSize: 65_536 });
      try {
        let failing = true;
        sim.failWhen((e) => (failing && e.op === 'open' &&
          e.path.endsWith('/commitlog/00000000000000065536') ? 'EAGAIN' : null));
        const outcomes: string[] = [];
        for (let i = 0; i < 70; i++) {
          try {
            const r = await store.putMessage({ topic: 't', queueId: 0,
              body: Buffer.alloc(1000, i) });
            outcomes.push(r.physicalOffset >= 65_536 ? 'next segment' : 'first segment');
          } catch (err) {
            expect(err).toMatchObject({ code: 'IO_ERROR', retriable: true });
            outcomes.push('retriable');
            failing = false;
          }
        }
        expect(outcomes.filter((o) => o === 'retriable')).toHaveLength(1);
        const at = outcomes.indexOf('retriable');
        expect(outcomes.slice(0, at).every((o) => o === 'first segment')).toBe(true);
        expect(outcomes.slice(at + 1).every((o) => o === 'next segment')).toBe(true);
        expect(store.isOpen).toBe(true);
        expect(store.getMaxOffsetInQueue('t', 0)).toBe(69);
      } finally {
        await store.close();
      }
    });
});

describe('SYNC_FLUSH flow control', () => {
  it('past maxPendingFlushRequests an append is BUSY (retriable) and stores nothing', async () => {
    let open!: () => void;
    let gate = new Promise<void>((resolve) => { open = resolve; });
    const sim = new SimBackend({ seed: 14, flushDelay: () => gate });
    const store = await StoreEngine.open(tmp.make(), { backend: sim, flushDiskType: 'SYNC_FLUSH',
      commitLogSegmentSize: SEGMENT, maxPendingFlushRequests: 2 });
    try {
      const body = Buffer.from('x');
      const first = [store.putMessage({ topic: 't', queueId: 0, body }),
        store.putMessage({ topic: 't', queueId: 0, body })];
      const busy = await rejection(store.putMessage({ topic: 't', queueId: 0, body }));
      expect(busy).toBeInstanceOf(PocketMQError);
      expect(busy).toMatchObject({ code: 'BUSY', retriable: true, limit: 2, actual: 2,
        property: 'maxPendingFlushRequests' });
      expect(busy.message).toMatch(/nothing was stored/);
      const batch = await rejection(store.putMessages([{ topic: 't', queueId: 0, body }]));
      expect(batch.code).toBe('BUSY');
      expect(store.getMaxOffsetInQueue('t', 0)).toBe(2);
      open();
      gate = Promise.resolve();
      expect((await Promise.all(first)).map((r) => r.status)).toEqual(['PUT_OK', 'PUT_OK']);
      const after = await store.putMessage({ topic: 't', queueId: 0, body });
      expect([after.status, after.queueOffset]).toEqual(['PUT_OK', 2]);
    } finally {
      open();
      await store.close();
    }
  });
});
