/**
 * A min-heap of (due time, queue offset, commit-log offset) triples in three number arrays: the
 * timer messages due soon, without an object per message.
 */
export class DueHeap {
  private due: number[] = [];
  private queueOffsets: number[] = [];
  private physical: number[] = [];

  get size(): number {
    return this.due.length;
  }

  /** The earliest due time, or Infinity when empty. */
  get nextDue(): number {
    return this.due[0] ?? Infinity;
  }

  push(dueMs: number, queueOffset: number, physicalOffset: number): void {
    let i = this.due.length;
    this.due.push(dueMs);
    this.queueOffsets.push(queueOffset);
    this.physical.push(physicalOffset);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.due[parent]! <= dueMs) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Take the earliest entry: [queue offset, commit-log offset]. */
  pop(): [number, number] {
    const top: [number, number] = [this.queueOffsets[0]!, this.physical[0]!];
    const last = this.due.length - 1;
    this.swap(0, last);
    this.due.pop();
    this.queueOffsets.pop();
    this.physical.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let least = i;
      if (l < last && this.due[l]! < this.due[least]!) least = l;
      if (r < last && this.due[r]! < this.due[least]!) least = r;
      if (least === i) break;
      this.swap(i, least);
      i = least;
    }
    return top;
  }

  clear(): void {
    this.due = [];
    this.queueOffsets = [];
    this.physical = [];
  }

  private swap(a: number, b: number): void {
    [this.due[a], this.due[b]] = [this.due[b]!, this.due[a]!];
    [this.queueOffsets[a], this.queueOffsets[b]] = [this.queueOffsets[b]!, this.queueOffsets[a]!];
    [this.physical[a], this.physical[b]] = [this.physical[b]!, this.physical[a]!];
  }
}
