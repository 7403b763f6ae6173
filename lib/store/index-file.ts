/**
 * IndexFile: one file of the hash index from a message key to commit-log offsets, RocketMQ's
 * IndexFile with a checksummed header. IndexService owns the rolling list.
 *
 * Layout, little-endian. A u64 is two u32 (lo, hi) holding a JS number below 2^53.
 *
 *   0       4         8                16             24               32             40
 *   +-------+---------+----------------+--------------+----------------+--------------+
 *   | magic | version | beginTimestamp | endTimestamp | beginPhyOffset | endPhyOffset |
 *   | u32   | u32     | u64 ms         | u64 ms       | u64            | u64          |
 *   +-------+---------+----------------+--------------+----------------+--------------+
 *   40              44           48              52         56                 64
 *   +---------------+------------+---------------+----------+------------------+
 *   | hashSlotCount | indexCount | maxIndexCount | checksum | reserved, zero   |
 *   +---------------+------------+---------------+----------+------------------+
 *   64                      hashSlotCount slots, u32: number of the newest entry of the chain
 *   64 + 4*hashSlotCount    maxIndexCount entries of 20 bytes; entry n (n >= 1) starts at
 *                           64 + 4*hashSlotCount + 20*(n-1):
 *     +-------------+---------------+---------------+---------------+
 *     | keyHash u32 | phyOffset u64 | timeDiff i32  | prevIndex u32 |
 *     +-------------+---------------+---------------+---------------+
 *
 * - magic is "PMIX" in ASCII; checksum is xxh32 of the 64 header bytes with this field as zero.
 * - Entry numbers count from 1; 0 means "none" (an empty slot, the end of a chain). indexCount is
 *   the number of entries used, so entries 1..indexCount are live and the rest are zero.
 * - keyHash = |Java String.hashCode(key)|, with -2^31 mapped to 0 as RocketMQ does; the slot is
 *   keyHash % hashSlotCount. A chain holds every key of its slot, so a query compares keyHash;
 *   two keys with the same hash both match (the caller checks the message's keys).
 * - beginTimestamp and beginPhyOffset are those of entry 1. timeDiff = floor((storeTimestamp -
 *   beginTimestamp) / 1000): whole seconds, as in RocketMQ, since milliseconds would overflow 32
 *   bits after 49 days. It is signed (RocketMQ clamps at 0) so a message stored while the wall
 *   clock stepped back is still found by its own time. An entry's time is beginTimestamp +
 *   1000*timeDiff, at most 999 ms before the real one. endTimestamp is the newest entry's time in
 *   that form, and endPhyOffset its phyOffset, so truncation restores both from the entries. All
 *   four are zero while indexCount is zero.
 *
 * Invariants: phyOffset never decreases from entry to entry (entries follow the commit log); an
 * entry's prevIndex is lower than its own number and is the slot's head when it was appended.
 *
 * Durability: the header on disk is the commit point. Puts change slots and entries only; the
 * header moves on at flush, after an fdatasync made those bytes durable, and is synced again.
 * On open, slots pointing past indexCount (appended after the last flush, then a crash) are
 * rebuilt from the committed entries and the uncommitted entries are zeroed: the file is exactly
 * as its last flush left it. `close` writes the header without a sync: await `flush` first.
 */
import { assert, failAssertion, CorruptDataError, PocketMQError } from '../errors.js';
import type { BackendFile, IoBackend } from './io/backend.js';
import {
  decodeHeader, E_PHY, E_PREV, E_TIME, emptyState, encodeHeader, ENTRY_BYTES, getU64,
  INDEX_HEADER_BYTES, indexFileBytes, indexKeyHash, resolveIndexFileGeometry, setU64, SLOT_BYTES,
  type HeaderState, type IndexFileGeometry,
} from './index-header.js';

export {
  INDEX_HEADER_BYTES, indexFileBytes, indexFileDefaults, indexKeyHash, resolveIndexFileGeometry,
} from './index-header.js';
export type { IndexFileGeometry } from './index-header.js';

/** A byte range [from, to) still to be written to a plain file. */
class DirtyRange {
  from = Infinity;
  to = 0;
  add(from: number, to: number): void {
    this.from = Math.min(this.from, from);
    this.to = Math.max(this.to, to);
  }
  clear(): void {
    this.from = Infinity;
    this.to = 0;
  }
}

export class IndexFile {
  readonly path: string;
  readonly geometry: IndexFileGeometry;
  private readonly view: DataView;
  private readonly mapped: boolean;
  private readonly entriesAt: number;
  /** The live header; the bytes on disk are the last one committed. */
  private readonly state: HeaderState;
  /** Only without a mapping: what `bytes` holds that the file does not yet. */
  private readonly dirtySlots = new DirtyRange();
  private readonly dirtyEntries = new DirtyRange();
  /** The state changed since the header was last committed by a flush. */
  private headerDirty = false;
  /** Bumped when the header is written outside a flush, so an older flush snapshot is dropped. */
  private headerGeneration = 0;
  private flushTail: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly file: BackendFile,
    /** The mapping, or for a plain file all of its bytes, loaded at open. */
    private readonly bytes: Buffer,
    geometry: IndexFileGeometry,
    state: HeaderState,
  ) {
    this.path = file.path;
    this.geometry = geometry;
    this.state = state;
    this.mapped = file.mapping !== null;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    this.entriesAt = INDEX_HEADER_BYTES + geometry.hashSlotCount * SLOT_BYTES;
  }

  /** Create a new, empty index file (synchronously: it is made on the write path). */
  static create(backend: IoBackend, path: string,
    options: Partial<IndexFileGeometry> = {}): IndexFile {
    const geometry = resolveIndexFileGeometry(options);
    assert(!backend.exists(path), `index file ${path} already exists`);
    const sizeBytes = indexFileBytes(geometry);
    const file = backend.openSync(path, { sizeBytes, create: true, readOnly: false });
    try {
      const index = new IndexFile(file, file.mapping ?? Buffer.alloc(sizeBytes), geometry,
        emptyState());
      index.writeHeader(encodeHeader(geometry, index.state));
      return index;
    } catch (err) {
      // A file without its header is nobody's: leave nothing that a retry would trip over.
      try {
        file.close();
        backend.unlink(path);
      } catch {
        // The header write's error is the one to report.
      }
      throw err;
    }
  }

  /** Open an existing file: check its header, then undo what its last flush did not commit. */
  static async open(backend: IoBackend, path: string): Promise<IndexFile> {
    const file = await IndexFile.openUnlessBlank(backend, path);
    if (file === null) throw new CorruptDataError(`index file ${path}: blank header`, { path });
    try {
      file.dropUncommitted();
    } catch (err) {
      file.close();
      throw err;
    }
    return file;
  }

  /**
   * The file with its header checked, changing nothing (`dropUncommitted` is the caller's next
   * step), or null when the header is all zeros: the file was created but a crash lost its
   * header before any flush committed it, so it holds nothing (the checkpoint is written only
   * after the index flush, so it never counts on such a file's entries).
   */
  static async openUnlessBlank(backend: IoBackend, path: string): Promise<IndexFile | null> {
    const sizeBytes = backend.fileSize(path);
    // A file is allocated in full before its header is first written, so one shorter than a
    // header was cut by a crash while it was being made: it never held a committed entry.
    if (sizeBytes >= 0 && sizeBytes < INDEX_HEADER_BYTES) return null;
    const file = await backend.open(path, { sizeBytes, create: false, readOnly: false });
    try {
      const bytes = file.mapping ?? file.read(0, sizeBytes);
      if (bytes.subarray(0, INDEX_HEADER_BYTES).every((b) => b === 0)) {
        file.close();
        return null;
      }
      const [geometry, state] = decodeHeader(bytes, path);
      return new IndexFile(file, bytes, geometry, state);
    } catch (err) {
      file.close();
      throw err;
    }
  }

  get indexCount(): number {
    return this.state.indexCount;
  }
  /** storeTimestamp of the first entry, or -1 when empty. */
  get beginTimestamp(): number {
    return this.isEmpty() ? -1 : this.state.beginTimestamp;
  }
  /** Time of the newest entry (whole seconds after beginTimestamp), or -1 when empty. */
  get endTimestamp(): number {
    return this.isEmpty() ? -1 : this.state.endTimestamp;
  }
  /** Commit-log offset of the first entry, or -1 when empty. */
  get beginPhyOffset(): number {
    return this.isEmpty() ? -1 : this.state.beginPhyOffset;
  }
  /** Commit-log offset of the newest entry, or -1 when empty. */
  get endPhyOffset(): number {
    return this.isEmpty() ? -1 : this.state.endPhyOffset;
  }
  isEmpty(): boolean {
    return this.state.indexCount === 0;
  }
  isFull(): boolean {
    return this.state.indexCount >= this.geometry.maxIndexCount;
  }

  /** Every entry, oldest first: its key hash and commit-log offset (for verification). */
  *entries(): Generator<{ hash: number; phyOffset: number }> {
    this.checkOpen();
    for (let n = 1; n <= this.state.indexCount; n++) {
      const at = this.entryAt(n);
      yield { hash: this.view.getUint32(at, true), phyOffset: getU64(this.view, at + E_PHY) };
    }
  }

  /**
   * Index `key` at `phyOffset`; false when the file is full, or when `storeTimestamp` is more
   * than 2^31 s (68 years) from the file's first entry, beyond what timeDiff holds: only a
   * record re-sealed over a wrong time does that, and the next file begins at its time.
   */
  put(key: string, phyOffset: number, storeTimestamp: number): boolean {
    this.checkOpen();
    const s = this.state;
    if (!Number.isSafeInteger(phyOffset) || phyOffset < 0) {
      failAssertion(`bad phyOffset ${phyOffset}`);
    }
    if (!Number.isSafeInteger(storeTimestamp) || storeTimestamp < 0) {
      failAssertion(`bad storeTimestamp ${storeTimestamp}`);
    }
    if (s.indexCount !== 0 && phyOffset < s.endPhyOffset) {
      failAssertion(`index phyOffset ${phyOffset} is below the file's end ${s.endPhyOffset}`);
    }
    if (this.isFull()) return false;
    const n = s.indexCount + 1;
    if (n === 1) {
      s.beginTimestamp = storeTimestamp;
      s.beginPhyOffset = phyOffset;
    }
    const timeDiff = Math.floor((storeTimestamp - s.beginTimestamp) / 1000);
    if (timeDiff < -0x80000000 || timeDiff > 0x7fffffff) return false;
    const v = this.view;
    const hash = indexKeyHash(key);
    const slotAt = this.slotAt(hash);
    const at = this.entryAt(n);
    v.setUint32(at, hash, true);
    setU64(v, at + E_PHY, phyOffset);
    v.setInt32(at + E_TIME, timeDiff, true);
    v.setUint32(at + E_PREV, v.getUint32(slotAt, true), true);
    v.setUint32(slotAt, n, true);
    this.markDirty(this.dirtyEntries, at, at + ENTRY_BYTES);
    this.markDirty(this.dirtySlots, slotAt, slotAt + SLOT_BYTES);
    s.indexCount = n;
    s.endPhyOffset = phyOffset;
    s.endTimestamp = s.beginTimestamp + timeDiff * 1000;
    this.headerDirty = true;
    return true;
  }

  /**
   * Commit-log offsets indexed under `key` whose time may lie in [beginMs, endMs] (an entry
   * matches when its second overlaps the range), newest first, at most `maxNum`.
   */
  query(key: string, beginMs: number, endMs: number, maxNum: number): number[] {
    this.checkOpen();
    assert(Number.isSafeInteger(maxNum) && maxNum >= 0, `bad maxNum ${maxNum}`);
    const out: number[] = [];
    const v = this.view;
    const hash = indexKeyHash(key);
    let n = v.getUint32(this.slotAt(hash), true);
    while (n !== 0 && out.length < maxNum) {
      if (n > this.state.indexCount) throw this.corrupt(`a chain reaches entry ${n}`);
      const at = this.entryAt(n);
      if (v.getUint32(at, true) === hash) {
        const time = this.state.beginTimestamp + v.getInt32(at + E_TIME, true) * 1000;
        if (time <= endMs && time + 999 >= beginMs) out.push(getU64(v, at + E_PHY));
      }
      const prev = v.getUint32(at + E_PREV, true);
      if (prev >= n) throw this.corrupt(`entry ${n} links forward to ${prev}`);
      n = prev;
    }
    return out;
  }

  /**
   * Drop every entry with phyOffset >= `phyOffset`: entries past the kept ones are zeroed and the
   * slot heads rebuilt from the kept entries, so the file becomes byte for byte the one a run
   * without them would have made. Idempotent whatever part of an earlier truncation reached the
   * disk before a crash (entries are only ever zeroed, slots are derived from the entries, and
   * zeroed entries at the end count as dropped). The header is written at once; it is durable
   * after the next flush.
   */
  truncateFrom(phyOffset: number): void {
    this.checkOpen();
    assert(Number.isSafeInteger(phyOffset) && phyOffset >= 0, `bad phyOffset ${phyOffset}`);
    const s = this.state;
    const v = this.view;
    const oldCount = s.indexCount;
    let n = oldCount;
    while (n > 0 && (getU64(v, this.entryAt(n) + E_PHY) >= phyOffset || this.isZeroEntry(n))) n--;
    if (n === oldCount) return;
    const from = this.entryAt(n + 1);
    const to = this.entryAt(oldCount + 1);
    this.bytes.fill(0, from, to);
    this.markDirty(this.dirtyEntries, from, to);
    this.bytes.fill(0, INDEX_HEADER_BYTES, this.entriesAt);
    for (let i = 1; i <= n; i++) {
      v.setUint32(this.slotAt(v.getUint32(this.entryAt(i), true)), i, true);
    }
    this.markDirty(this.dirtySlots, INDEX_HEADER_BYTES, this.entriesAt);
    if (n === 0) {
      Object.assign(s, emptyState());
    } else {
      const at = this.entryAt(n);
      s.indexCount = n;
      s.endPhyOffset = getU64(v, at + E_PHY);
      s.endTimestamp = s.beginTimestamp + v.getInt32(at + E_TIME, true) * 1000;
    }
    this.headerDirty = true;
    this.writeBack();
  }

  /**
   * The next flush syncs the file and commits its header again even if nothing changed: what
   * the file holds may be only in the page cache (see IndexService.truncateFrom).
   */
  commitOnNextFlush(): void {
    this.checkOpen();
    this.headerDirty = true;
  }

  /** All 20 bytes of entry `n` are zero: written by no put (or zeroed by a truncation). */
  private isZeroEntry(n: number): boolean {
    const at = this.entryAt(n);
    for (let i = 0; i < ENTRY_BYTES; i += 4) {
      if (this.view.getUint32(at + i, true) !== 0) return false;
    }
    return true;
  }

  /**
   * Make every put and truncation so far durable: write and fdatasync slots and entries, then
   * commit the header and fdatasync again. Flushes run one after another.
   */
  flush(): Promise<void> {
    this.checkOpen();
    const run = this.flushTail.then(() => this.flushOnce());
    this.flushTail = run.catch(() => undefined);
    return run;
  }

  /** Write what is pending and the header, without a sync; idempotent. */
  close(): void {
    if (this.closed) return;
    this.writeBack();
    this.closed = true;
    this.file.close();
  }

  private async flushOnce(): Promise<void> {
    if (this.closed || (!this.headerDirty && this.dirtySlots.to === 0
      && this.dirtyEntries.to === 0)) {
      return;
    }
    const generation = this.headerGeneration;
    const header = encodeHeader(this.geometry, this.state);
    this.writeDirty();
    this.headerDirty = false;
    try {
      await this.file.flush();
      if (this.closed) return;
      if (generation !== this.headerGeneration) {
        // truncateFrom wrote a newer header meanwhile: commit that state instead.
        this.headerDirty = true;
        return await this.flushOnce();
      }
      this.writeHeader(header);
      await this.file.flush();
    } catch (err) {
      this.headerDirty = true;
      throw err;
    }
  }

  /** Write pending bytes and the live header now; a later flush still syncs and commits them. */
  private writeBack(): void {
    this.writeDirty();
    if (!this.headerDirty) return;
    this.writeHeader(encodeHeader(this.geometry, this.state));
    this.headerGeneration++;
  }

  private writeHeader(header: Buffer): void {
    this.bytes.set(header, 0);
    if (!this.mapped) this.file.write(0, header);
  }

  private writeDirty(): void {
    for (const range of [this.dirtySlots, this.dirtyEntries]) {
      if (range.to === 0) continue;
      this.file.write(range.from, this.bytes.subarray(range.from, range.to));
      range.clear();
    }
  }

  private markDirty(range: DirtyRange, from: number, to: number): void {
    if (!this.mapped) range.add(from, to);
  }

  /**
   * After a crash the slots may point at entries past indexCount, appended after the last flush.
   * Rebuild the slots from the committed entries (checking every chain link on the way) and zero
   * the uncommitted entries, up to the first blank one.
   */
  dropUncommitted(): void {
    const v = this.view;
    const count = this.state.indexCount;
    let stale = false;
    for (let at = INDEX_HEADER_BYTES; at < this.entriesAt && !stale; at += SLOT_BYTES) {
      stale = v.getUint32(at, true) > count;
    }
    if (!stale) return;
    this.bytes.fill(0, INDEX_HEADER_BYTES, this.entriesAt);
    this.markDirty(this.dirtySlots, INDEX_HEADER_BYTES, this.entriesAt);
    for (let n = 1; n <= count; n++) {
      const at = this.entryAt(n);
      const slotAt = this.slotAt(v.getUint32(at, true));
      if (v.getUint32(at + E_PREV, true) !== v.getUint32(slotAt, true)) {
        throw this.corrupt(`entry ${n} does not link to its chain's previous head`);
      }
      v.setUint32(slotAt, n, true);
    }
    for (let n = count + 1; n <= this.geometry.maxIndexCount; n++) {
      const at = this.entryAt(n);
      if (this.bytes.subarray(at, at + ENTRY_BYTES).every((b) => b === 0)) break;
      this.bytes.fill(0, at, at + ENTRY_BYTES);
      this.markDirty(this.dirtyEntries, at, at + ENTRY_BYTES);
    }
  }

  private slotAt(hash: number): number {
    return INDEX_HEADER_BYTES + (hash % this.geometry.hashSlotCount) * SLOT_BYTES;
  }

  private entryAt(n: number): number {
    return this.entriesAt + (n - 1) * ENTRY_BYTES;
  }

  private corrupt(what: string): CorruptDataError {
    return new CorruptDataError(`index file ${this.path}: ${what}`, { path: this.path });
  }

  private checkOpen(): void {
    if (this.closed) {
      throw new PocketMQError('STORE_CLOSED', `index file ${this.path} is closed`,
        { path: this.path });
    }
  }
}
