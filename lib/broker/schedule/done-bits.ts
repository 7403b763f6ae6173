/**
 * Which entries of a queue are done, from a watermark on: every entry before `base` is done;
 * from `base` on, one bit per entry. Entries finish out of order (timer messages fall due in any
 * order), so the watermark moves only over a run of done entries; a million entries take 125 KB,
 * not a million objects.
 */

/** Bytes dropped from the front at once when the watermark moves (no copy per entry). */
const COMPACT_BYTES = 64 * 1024;

export class DoneBits {
  private bytes: Uint8Array;
  /** Queue offset of bit 0 of `bytes` (a multiple of 8 past `start`). */
  private origin: number;

  constructor(private start: number, bits: Uint8Array = new Uint8Array(0)) {
    this.origin = start;
    this.bytes = bits;
    this.advance();
  }

  /** Every entry before this offset is done. */
  get base(): number {
    return this.start;
  }

  has(offset: number): boolean {
    if (offset < this.start) return true;
    const bit = offset - this.origin;
    return ((this.bytes[bit >>> 3] ?? 0) & (1 << (bit & 7))) !== 0;
  }

  /** Mark an entry done; false if it already was. */
  set(offset: number): boolean {
    if (this.has(offset)) return false;
    const bit = offset - this.origin;
    const index = bit >>> 3;
    if (index >= this.bytes.length) {
      const grown = new Uint8Array(Math.max(index + 1, this.bytes.length * 2, 64));
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes[index]! |= 1 << (bit & 7);
    if (offset === this.start) this.advance();
    return true;
  }

  /**
   * The bits for the progress file: bit 0 is entry `origin` (at most 7 before `base`; those
   * are set), trailing zero bytes left out. `new DoneBits(origin, bits)` reads them back.
   */
  snapshot(): { origin: number; bits: Uint8Array } {
    this.realign();
    let end = this.bytes.length;
    while (end > 0 && this.bytes[end - 1] === 0) end--;
    return { origin: this.origin, bits: this.bytes.slice(0, end) };
  }

  /** An independent copy (what a progress file's write takes). */
  clone(): DoneBits {
    const { origin, bits } = this.snapshot();
    return new DoneBits(origin, bits);
  }

  private advance(): void {
    while (this.has(this.start) && this.start - this.origin < this.bytes.length * 8) this.start++;
    if (this.start - this.origin >= COMPACT_BYTES * 8) this.realign();
  }

  /** Drop whole bytes before the watermark so bit 0 is `start` rounded down to a byte. */
  private realign(): void {
    const drop = Math.floor((this.start - this.origin) / 8);
    if (drop === 0) return;
    this.bytes = this.bytes.slice(Math.min(drop, this.bytes.length));
    this.origin += drop * 8;
  }
}

/** DoneBits as a progress file holds them: `{ origin, bits: <base64> }`. */
export function doneBitsToJson(done: DoneBits): { origin: number; bits: string } {
  const { origin, bits } = done.snapshot();
  return { origin, bits: Buffer.from(bits).toString('base64') };
}

/** DoneBits from `doneBitsToJson`'s form; throws naming `what` when it is not that. */
export function parseDoneBits(raw: unknown, what: string): DoneBits {
  const { origin, bits } = (raw ?? {}) as Record<string, unknown>;
  if (!Number.isSafeInteger(origin) || (origin as number) < 0 || typeof bits !== 'string' ||
    !/^[A-Za-z0-9+/]*={0,2}$/.test(bits)) {
    throw new Error(`${what}: expected {"origin": <offset>, "bits": "<base64>"}`);
  }
  return new DoneBits(origin as number, new Uint8Array(Buffer.from(bits, 'base64')));
}
