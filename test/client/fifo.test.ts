import { describe, expect, it } from 'vitest';
import { Fifo } from '../../lib/client/fifo.js';
import { mulberry32 } from '../support/sim-backend.js';

describe('Fifo', () => {
  it('hands items out in the order they came, across empties and refills', () => {
    const fifo = new Fifo<number>();
    expect(fifo.shift()).toBeUndefined();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 5; i++) fifo.push(round * 10 + i);
      expect(fifo.size).toBe(5);
      const out = [1, 2, 3, 4, 5].map(() => fifo.shift());
      expect(out).toEqual([0, 1, 2, 3, 4].map((i) => round * 10 + i));
      expect([fifo.size, fifo.shift()]).toEqual([0, undefined]);
    }
  });

  it('matches an array model under random pushes and shifts with long backlogs', () => {
    const random = mulberry32(7);
    const fifo = new Fifo<number>();
    const model: number[] = [];
    let next = 0;
    for (let step = 0; step < 50_000; step++) {
      // Phases of growth and of draining, so backlogs pass the compaction threshold.
      const growing = Math.floor(step / 5000) % 2 === 0;
      if (random() < (growing ? 0.7 : 0.3)) {
        fifo.push(next);
        model.push(next++);
      } else {
        expect(fifo.shift()).toBe(model.shift());
      }
      expect(fifo.size).toBe(model.length);
    }
    while (model.length > 0) expect(fifo.shift()).toBe(model.shift());
    expect(fifo.shift()).toBeUndefined();
  });
});
