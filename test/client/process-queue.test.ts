import { describe, expect, it } from 'vitest';
import type { MessageExt } from '../../lib/broker/message.js';
import { ProcessQueue } from '../../lib/client/process-queue.js';
import { mulberry32 } from '../support/sim-backend.js';

function msg(queueOffset: number, storeSize = 100): MessageExt {
  return { topic: 't', tags: undefined, keys: [], body: Buffer.from('x'), properties: {},
    msgId: `id${queueOffset}`, queueId: 0, queueOffset, commitLogOffset: queueOffset * 200,
    storeSize, bornTimestamp: 0, storeTimestamp: 0, reconsumeTimes: 0 };
}

describe('ProcessQueue', () => {
  it('commits the lowest unacknowledged offset, or the fetch position when none is held', () => {
    const pq = new ProcessQueue({ topic: 't', queueId: 0 });
    pq.nextOffset = 13;
    pq.put([msg(3), msg(5, 50), msg(9)]);
    expect(pq.count).toBe(3);
    expect(pq.bytes).toBe(250);
    expect(pq.remove([msg(5)])).toBe(3);
    expect(pq.remove([msg(5)])).toBe(3); // twice: nothing changes
    expect(pq.bytes).toBe(200);
    expect(pq.remove([msg(3)])).toBe(9);
    expect(pq.remove([msg(4)])).toBe(9); // never held
    expect(pq.remove([msg(9)])).toBe(13);
    expect(pq.count).toBe(0);
    expect(pq.bytes).toBe(0);
  });

  it('matches a simple model under random out-of-order acknowledgements', () => {
    const random = mulberry32(11);
    const pq = new ProcessQueue({ topic: 't', queueId: 0 });
    const model = new Map<number, number>();
    let next = 0;
    for (let step = 0; step < 20_000; step++) {
      if (random() < 0.55 || model.size === 0) {
        const batch = [];
        for (let i = 0; i < 1 + Math.floor(random() * 8); i++) {
          next += 1 + Math.floor(random() * 3); // filtered offsets leave gaps
          batch.push(msg(next, 1 + Math.floor(random() * 500)));
          model.set(next, batch.at(-1)!.storeSize);
        }
        pq.put(batch);
        pq.nextOffset = next + 1;
      } else {
        const held = [...model.keys()];
        const victim = held[Math.floor(random() * held.length)]!;
        model.delete(victim);
        const expected = model.size === 0 ? next + 1 : Math.min(...model.keys());
        expect(pq.remove([msg(victim)])).toBe(expected);
      }
      expect(pq.count).toBe(model.size);
      expect(pq.bytes).toBe([...model.values()].reduce((a, b) => a + b, 0));
    }
  });

  it('empties and fills again, and compacts a long acknowledged prefix, without losing order',
    () => {
      const pq = new ProcessQueue({ topic: 't', queueId: 0 });
      for (let round = 0; round < 3; round++) {
        const base = round * 10_000;
        pq.put(Array.from({ length: 3000 }, (_, i) => msg(base + i)));
        pq.nextOffset = base + 3000;
        // In order: the head passes 1024 slots, and then half of them (the arrays compact).
        for (let i = 0; i < 2999; i++) expect(pq.remove([msg(base + i)])).toBe(base + i + 1);
        expect(pq.count).toBe(1);
        pq.put([msg(base + 5000)]);
        pq.nextOffset = base + 5001;
        expect(pq.remove([msg(base + 5000)])).toBe(base + 2999);
        expect(pq.remove([msg(base + 2999)])).toBe(base + 5001);
        expect([pq.count, pq.bytes]).toEqual([0, 0]);
      }
    });

  it('refuses offsets that do not increase (a fetch never goes back)', () => {
    const pq = new ProcessQueue({ topic: 't', queueId: 0 });
    pq.put([msg(4)]);
    expect(() => pq.put([msg(4)])).toThrow(expect.objectContaining({ code: 'ASSERTION_FAILED' }));
  });

  it('keeps the messages themselves only for orderly queues', () => {
    const orderly = new ProcessQueue({ topic: 't', queueId: 0 }, true);
    orderly.put([msg(1), msg(2)]);
    orderly.update({ ...msg(1), reconsumeTimes: 3 });
    expect(orderly.head(5).map((m) => [m.queueOffset, m.reconsumeTimes])).toEqual([[1, 3], [2, 0]]);
    const concurrent = new ProcessQueue({ topic: 't', queueId: 0 });
    concurrent.put([msg(1)]);
    expect(() => concurrent.head(1)).toThrow(expect.objectContaining({ code: 'ASSERTION_FAILED' }));
  });
});
