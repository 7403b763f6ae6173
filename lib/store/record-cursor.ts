/**
 * RecordCursor: a reusable, allocation-free view of one record in place (the zero-copy read path).
 * A reader positions it on each record in turn and hands it to a visitor; it is valid only during
 * that call. Header fields are read from the bytes on each access; `body` and the string fields
 * allocate, `bodyBuffer`/`bodyOffset`/`bodyLength` do not. `toRecord()` keeps a record beyond the
 * call. The layout is in record-codec.ts.
 */
import { HEADER_BYTES, readU64 } from './record-codec.js';
import { decodeRecord, decodeProperties, type StoredRecord } from './record-decoder.js';

const NO_BYTES = Buffer.alloc(0);
const NO_VIEW = new DataView(new ArrayBuffer(0));

export class RecordCursor {
  private buf: Buffer = NO_BYTES;
  private dv: DataView = NO_VIEW;
  private at = 0;

  /** Point at the record starting at `at` in `buf` (a frame the caller has checked). */
  moveTo(buf: Buffer, dv: DataView, at: number): void {
    this.buf = buf;
    this.dv = dv;
    this.at = at;
  }

  get checksum(): number {
    return this.dv.getUint32(this.at, true);
  }
  get size(): number {
    return this.dv.getUint32(this.at + 4, true);
  }
  get sysFlag(): number {
    return this.dv.getUint32(this.at + 12, true) & 0x3fffffff; // without SYSFLAG_BATCH_MORE
  }
  get queueId(): number {
    return this.dv.getUint16(this.at + 16, true);
  }
  get reconsumeTimes(): number {
    return this.dv.getUint16(this.at + 18, true);
  }
  get queueOffset(): number {
    return readU64(this.dv, this.at + 24);
  }
  get physicalOffset(): number {
    return readU64(this.dv, this.at + 32);
  }
  get bornTimestamp(): number {
    return readU64(this.dv, this.at + 40);
  }
  get storeTimestamp(): number {
    return readU64(this.dv, this.at + 48);
  }
  /** The buffer holding the body (the segment's mapping when zero-copy). */
  get bodyBuffer(): Buffer {
    return this.buf;
  }
  get bodyOffset(): number {
    return this.at + HEADER_BYTES;
  }
  get bodyLength(): number {
    return this.dv.getUint32(this.at + 20, true);
  }
  /** A view of the body (allocates the view, copies nothing). */
  get body(): Buffer {
    const from = this.at + HEADER_BYTES;
    return this.buf.subarray(from, from + this.bodyLength);
  }
  /** A copy of the body: it outlives the segment's mapping. */
  copyBody(): Buffer {
    const from = this.at + HEADER_BYTES;
    const length = this.bodyLength;
    const out = Buffer.allocUnsafe(length);
    this.buf.copy(out, 0, from, from + length);
    return out;
  }
  get topic(): string {
    const topicAt = this.at + HEADER_BYTES + this.bodyLength;
    return this.buf.toString('latin1', topicAt + 1, topicAt + 1 + (this.buf[topicAt] ?? 0));
  }
  /** The record has properties (a plain message has none: nothing to decode). */
  get hasProperties(): boolean {
    const topicAt = this.at + HEADER_BYTES + this.bodyLength;
    return this.dv.getUint16(topicAt + 1 + (this.buf[topicAt] ?? 0), true) > 0;
  }
  get properties(): Record<string, string> {
    const topicAt = this.at + HEADER_BYTES + this.bodyLength;
    const propsAt = topicAt + 1 + (this.buf[topicAt] ?? 0);
    const length = this.dv.getUint16(propsAt, true);
    return length === 0 ? {} : decodeProperties(this.buf, propsAt + 2, propsAt + 2 + length);
  }

  /** The record as an object that outlives the visit (`copyBody`: its own body bytes). */
  toRecord(copyBody = true): StoredRecord {
    return decodeRecord(this.buf, this.dv, this.at, copyBody);
  }
}
