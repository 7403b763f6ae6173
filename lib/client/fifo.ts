/**
 * A first-in first-out queue over one array that keeps its length while it is emptied and
 * filled again, so a consumer that keeps up allocates nothing for it per delivery: V8 trims an
 * array whose length is set lower (and grows it again on the next push), and a Set allocates
 * as entries are added and deleted. A backlog's large array is let go once it empties.
 */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private tail = 0;

  get size(): number {
    return this.tail - this.head;
  }

  push(item: T): void {
    if (this.tail < this.items.length) this.items[this.tail] = item;
    else this.items.push(item);
    this.tail++;
  }

  /** The oldest item, taken out; undefined when the queue is empty. */
  shift(): T | undefined {
    if (this.head === this.tail) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.tail) {
      this.head = 0;
      this.tail = 0;
      if (this.items.length > KEPT_SLOTS) this.items = [];
    } else if (this.head > KEPT_SLOTS && this.head * 2 > this.tail) {
      this.items.copyWithin(0, this.head, this.tail);
      this.items.fill(undefined, this.tail - this.head, this.tail);
      this.tail -= this.head;
      this.head = 0;
    }
    return item;
  }
}

/** Slots an empty queue keeps for reuse; a larger array goes (and so do this many taken). */
const KEPT_SLOTS = 1024;
