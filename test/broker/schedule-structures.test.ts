/**
 * The timer scheduler's two structures: DoneBits (done entries past a watermark, as bits) and
 * DueHeap (the entries due soon, earliest first), each against a simple model.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DoneBits } from '../../lib/broker/schedule/done-bits.js';
import { DueHeap } from '../../lib/broker/schedule/due-heap.js';

describe('DoneBits', () => {
  it('matches a set of done offsets, with its watermark the first not done', () => {
    fc.assert(fc.property(fc.nat(1000), fc.array(fc.nat(3000), { maxLength: 400 }),
      (start, marks) => {
        const bits = new DoneBits(start);
        const model = new Set<number>();
        for (const m of marks) {
          const offset = start + m;
          expect(bits.set(offset)).toBe(!model.has(offset));
          model.add(offset);
        }
        let base = start;
        while (model.has(base)) base++;
        expect(bits.base).toBe(base);
        for (let o = start; o < start + 3100; o++) {
          expect(bits.has(o)).toBe(o < base || model.has(o));
        }
        const { origin, bits: saved } = bits.snapshot();
        const back = new DoneBits(origin, saved);
        expect(back.base).toBe(base);
        for (let o = start; o < start + 3100; o++) expect(back.has(o)).toBe(bits.has(o));
      }), { numRuns: 100 });
  });

  it('keeps memory bounded while the watermark moves on', () => {
    const bits = new DoneBits(0);
    for (let o = 0; o < 5_000_000; o++) bits.set(o);
    expect(bits.base).toBe(5_000_000);
    expect(bits.snapshot().bits.length).toBeLessThan(64 * 1024);
  });
});

describe('DueHeap', () => {
  it('pops entries in due order', () => {
    fc.assert(fc.property(fc.array(fc.nat(1_000_000), { maxLength: 300 }), (dues) => {
      const heap = new DueHeap();
      dues.forEach((d, i) => heap.push(d, i, i * 10));
      const out: number[] = [];
      while (heap.size > 0) {
        const due = heap.nextDue;
        const [q, p] = heap.pop();
        expect(p).toBe(q * 10);
        expect(dues[q]).toBe(due);
        out.push(due);
      }
      expect(out).toEqual([...dues].sort((a, b) => a - b));
      expect(heap.nextDue).toBe(Infinity);
    }), { numRuns: 200 });
  });
});
