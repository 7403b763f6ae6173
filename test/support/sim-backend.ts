/**
 * The simulated disk (STYLE habit 13): an in-memory, seeded IoBackend for tests, after
 * TigerBeetle's `src/testing/storage.zig`. It behaves like the plain-file backend (`mapping` is
 * null, writes go through `write`) and adds what a real disk does only on a bad day: it loses
 * unflushed writes on `crash`, keeps a random subset of them in order, tears the last kept write at
 * a sector boundary, and fails chosen operations with ENOSPC or EIO.
 *
 * Durability model, per file: `volatile` bytes (what reads see) and `durable` bytes (what survives
 * a crash), plus the list of writes made since the last flush, in order. `flush` moves the writes
 * made before it was called into `durable`. Allocation (a file's length) and the directory tree are
 * durable at once; so are `writeFile` markers and `writeFileAtomic`, which also makes durable the
 * entries of every file in its directory (it fsyncs the directory). A file created by `open` whose
 * entry is not yet durable survives a crash zero-filled, except in mode 'lose-new-files'.
 *
 * Stricter than the real backends where they would hide a bug: a read or write outside
 * [0, size()) throws a RangeError. Every handle opened before `crash` is dead: using it throws
 * IO_ERROR (EBADF), and a flush in flight across the crash rejects the same way.
 */
import path from 'node:path';
import { fail, isRoot, mulberry32, normalize } from './sim-util.js';
import type {
  BackendFile, BackendKind, DiskUsage, IoBackend, OpenOptions,
} from '../../lib/store/io/backend.js';

/** Writes are torn only at this granularity: a sector is written whole or not at all. */
export const SECTOR_BYTES = 512;
const DEFAULT_CAPACITY_BYTES = 2 ** 40;
/** A growth leaves this much free (the real backends: limits.allocationReserveBytes). */
const GROWTH_RESERVE_BYTES = 4096;
const DEFAULT_SEED = 0x5eed;

/** ENOSPC and EIO; EAGAIN, EBUSY and EINTR are transient (retriable IO_ERROR). */
export type FaultCode = 'ENOSPC' | 'EIO' | 'EAGAIN' | 'EBUSY' | 'EINTR';
export type SimOp =
  | 'open' | 'write' | 'flush' | 'read' | 'truncate' | 'grow'
  | 'readFile' | 'writeFile' | 'readdir' | 'mkdir' | 'unlink';

export interface SimOpEvent {
  readonly op: SimOp;
  /** The file or directory (normalized, except for handles: the path they were opened with). */
  readonly path: string;
  readonly position?: number;
  readonly length?: number;
}

/** Return a code to fail this operation with it, anything falsy to let it run. */
export type FaultPredicate = (event: SimOpEvent) => FaultCode | null | undefined | false;

/**
 * drop-unflushed: only flushed writes survive. keep-all: every write survives. random-subset: a
 * seeded random subset of the unflushed writes survives, applied in order. lose-new-files:
 * drop-unflushed, and files whose directory entry never became durable vanish.
 */
export type CrashMode = 'drop-unflushed' | 'keep-all' | 'random-subset' | 'lose-new-files';

export interface CrashOptions {
  /** @default 'drop-unflushed' */
  readonly mode?: CrashMode;
  /** Cut the last kept write of each file at a random sector boundary inside it. */
  readonly tear?: boolean;
}

export interface TornWrite {
  readonly path: string;
  readonly position: number;
  readonly length: number;
  /** The kept prefix; position + keptBytes is a multiple of SECTOR_BYTES unless it is 0. */
  readonly keptBytes: number;
}

export interface CrashReport {
  readonly keptWrites: number;
  readonly droppedWrites: number;
  readonly torn: readonly TornWrite[];
  readonly lostFiles: readonly string[];
}

export interface SimBackendOptions {
  /** Seeds every random choice; print it when a test fails so the run replays. */
  readonly seed?: number;
  /** @default 2 ** 40 */
  readonly capacityBytes?: number;
  /** Awaited by every flush before it completes; by default a flush takes one setImmediate. */
  readonly flushDelay?: FlushDelay | null;
}

export type FlushDelay = (path: string) => Promise<void>;
export type SimStats = { opens: number; writes: number; flushes: number };

// Captured at load so fake timers installed later cannot stall a flush.
const realSetImmediate = globalThis.setImmediate;
export { mulberry32 } from './sim-util.js';

const nextTurn = (): Promise<void> => new Promise((resolve) => realSetImmediate(resolve));

/** A write not yet flushed; `data` null means zeros (from truncate). */
interface PendingWrite {
  readonly seq: number;
  readonly position: number;
  readonly length: number;
  readonly data: Buffer | null;
}

function apply(target: Buffer, w: PendingWrite): void {
  if (w.data === null) target.fill(0, w.position, w.position + w.length);
  else target.set(w.data, w.position);
}

/** One file's bytes, as the page cache (volatile) and the platter (durable) hold them. */
class SimInode {
  volatile: Buffer;
  durable: Buffer;
  pending: PendingWrite[] = [];
  readonly flips = new Map<number, number>();

  constructor(content: Buffer, public entryDurable: boolean) {
    this.volatile = Buffer.from(content);
    this.durable = Buffer.from(content);
  }

  get length(): number {
    return this.volatile.length;
  }

  grow(length: number): void {
    if (length <= this.length) return;
    // concat zero-fills past the bytes it copies.
    this.volatile = Buffer.concat([this.volatile], length);
    this.durable = Buffer.concat([this.durable], length);
  }

  write(w: PendingWrite): void {
    apply(this.volatile, w);
    this.pending.push(w);
  }

  /** Everything written up to `seq` is now durable. */
  makeDurable(seq: number): void {
    const later = this.pending.findIndex((w) => w.seq > seq);
    const done = this.pending.splice(0, later < 0 ? this.pending.length : later);
    for (const w of done) apply(this.durable, w);
  }

  replace(content: Buffer): void {
    this.volatile = Buffer.from(content);
    this.durable = Buffer.from(content);
    this.pending = [];
    this.entryDurable = true;
  }

  /** What a read sees: a copy with the injected bit flips applied. */
  readCopy(position: number, length: number): Buffer {
    const out = Buffer.alloc(length);
    this.volatile.copy(out, 0, position, Math.min(position + length, this.length));
    for (const [at, mask] of this.flips) {
      if (at >= position && at < position + length) out[at - position]! ^= mask;
    }
    return out;
  }
}

/** State shared by the backend and its handles. */
class SimCore {
  readonly files = new Map<string, SimInode>();
  readonly dirs = new Set<string>();
  readonly stats: SimStats = { opens: 0, writes: 0, flushes: 0 };
  readonly predicates = new Set<FaultPredicate>();
  readonly failures: { op: SimOp; code: FaultCode; remaining: number }[] = [];
  /** Every fault thrown so far, in order (a test injects few). */
  readonly fired: (SimOpEvent & { readonly code: FaultCode })[] = [];
  epoch = 0;
  seq = 0;

  constructor(public capacity: number, public flushDelay: FlushDelay | null) {}

  /** Throw the injected fault for this operation, if any. */
  fault(event: SimOpEvent, syscall: string, what: string): void {
    const index = this.failures.findIndex((f) => f.op === event.op);
    const queued = this.failures[index];
    if (queued !== undefined && --queued.remaining <= 0) this.failures.splice(index, 1);
    let code = queued?.code;
    for (const predicate of this.predicates) code ||= predicate(event) || undefined;
    if (code === undefined) return;
    this.fired.push({ ...event, code });
    fail(code, syscall, what, event.path);
  }

  usedBytes(): number {
    return [...this.files.values()].reduce((used, inode) => used + inode.length, 0);
  }

  reserve(bytes: number, syscall: string, what: string, at: string): void {
    if (bytes > 0 && this.usedBytes() + bytes > this.capacity) fail('ENOSPC', syscall, what, at);
  }

  isDir(p: string): boolean {
    return isRoot(p) || this.dirs.has(p);
  }

  /** The parent directory must exist, as for open(2) with O_CREAT. */
  requireParent(p: string, syscall: string, what: string): void {
    const parent = path.dirname(p);
    if (this.files.has(parent)) fail('ENOTDIR', syscall, what, p);
    if (!this.isDir(parent)) fail('ENOENT', syscall, what, p);
  }

  settle(at: string): Promise<void> {
    return this.flushDelay === null ? nextTurn() : this.flushDelay(at);
  }
}

class SimFile implements BackendFile {
  readonly maps = false;
  readonly mapping = null;
  private closed = false;
  private readonly epoch: number;

  constructor(
    readonly path: string,
    private readonly core: SimCore,
    private readonly inode: SimInode,
    private sizeBytes: number,
    private readonly readOnly: boolean,
    private readonly capacityBytes = sizeBytes,
  ) {
    this.epoch = core.epoch;
    core.stats.opens += 1;
  }

  size(): number {
    return this.sizeBytes;
  }

  read(position: number, length: number): Buffer {
    this.live('read', 'read failed');
    this.bounds(position, length);
    this.core.fault({ op: 'read', path: this.path, position, length }, 'read', 'read failed');
    return this.inode.readCopy(position, length);
  }

  view(position: number, length: number): Buffer {
    return this.read(position, length);
  }

  write(position: number, data: Uint8Array): void {
    this.writable('write', 'write failed');
    this.bounds(position, data.length);
    const event = { op: 'write', path: this.path, position, length: data.length } as const;
    this.core.fault(event, 'write', 'write failed');
    this.core.stats.writes += 1;
    const seq = (this.core.seq += 1);
    this.inode.write({ seq, position, length: data.length, data: Buffer.from(data) });
  }

  async flush(): Promise<void> {
    this.live('fdatasync', 'fdatasync failed');
    const upTo = this.core.seq;
    await this.core.settle(this.path);
    if (this.epoch !== this.core.epoch) this.live('fdatasync', 'fdatasync failed');
    this.core.fault({ op: 'flush', path: this.path }, 'fdatasync', 'fdatasync failed');
    this.inode.makeDurable(upTo);
    this.inode.entryDurable = true;
    this.core.stats.flushes += 1;
  }

  truncate(sizeBytes: number): void {
    this.writable('ftruncate', 'write failed');
    const valid = Number.isInteger(sizeBytes) && sizeBytes >= 0;
    if (!valid) throw new RangeError(`truncate(${sizeBytes}) on ${this.path}`);
    if (sizeBytes >= this.sizeBytes) return;
    const length = this.sizeBytes - sizeBytes;
    const event = { op: 'truncate', path: this.path, position: sizeBytes, length } as const;
    this.core.fault(event, 'write', 'write failed');
    const seq = (this.core.seq += 1);
    this.inode.write({ seq, position: sizeBytes, length, data: null });
  }

  /** Growth allocates at once (as `open` does); a full disk is ENOSPC before any change. */
  growSync(sizeBytes: number): void {
    this.writable('fallocate', 'cannot grow');
    if (sizeBytes <= this.sizeBytes) return;
    if (sizeBytes > this.capacityBytes) {
      throw new RangeError(`grow(${sizeBytes}) past ${this.capacityBytes} in ${this.path}`);
    }
    const what = `cannot grow to ${sizeBytes} bytes`;
    this.core.fault({ op: 'grow', path: this.path, position: this.sizeBytes,
      length: sizeBytes - this.sizeBytes }, 'fallocate', what);
    // As the real backends keep room for the checkpoint and config files (on a smaller scale).
    this.core.reserve(sizeBytes - this.inode.length + GROWTH_RESERVE_BYTES, 'fallocate', what,
      this.path);
    this.inode.grow(sizeBytes);
    this.sizeBytes = sizeBytes;
  }

  async grow(sizeBytes: number): Promise<void> {
    this.growSync(sizeBytes);
    await nextTurn();
  }

  close(): void {
    this.closed = true;
  }

  private live(syscall: string, what: string): void {
    const dead = this.epoch !== this.core.epoch;
    if (dead) fail('EBADF', syscall, what, this.path, 'handle died in a simulated crash');
    if (this.closed) fail('EBADF', syscall, what, this.path, 'handle is closed');
  }

  private writable(syscall: string, what: string): void {
    this.live(syscall, what);
    if (this.readOnly) fail('EBADF', syscall, what, this.path, 'handle is read-only');
  }

  private bounds(position: number, length: number): void {
    const ok = Number.isInteger(position) && Number.isInteger(length) && position >= 0 &&
      length >= 0 && position + length <= this.sizeBytes;
    if (!ok) {
      throw new RangeError(`[${position}, +${length}) outside ${this.sizeBytes} in ${this.path}`);
    }
  }
}

export class SimBackend implements IoBackend {
  readonly kind: BackendKind = 'sim';
  readonly seed: number;
  private readonly core: SimCore;
  private readonly random: () => number;

  constructor(options: SimBackendOptions = {}) {
    this.seed = options.seed ?? DEFAULT_SEED;
    this.random = mulberry32(this.seed);
    const capacity = options.capacityBytes ?? DEFAULT_CAPACITY_BYTES;
    this.core = new SimCore(capacity, options.flushDelay ?? null);
  }

  get stats(): Readonly<SimStats> {
    return { ...this.core.stats };
  }

  async open(filePath: string, options: OpenOptions): Promise<BackendFile> {
    const file = this.openSync(filePath, options);
    await nextTurn();
    return file;
  }

  openSync(filePath: string, options: OpenOptions): BackendFile {
    const { core } = this;
    const p = normalize(filePath);
    const what = `cannot open or allocate ${options.sizeBytes} bytes`;
    core.fault({ op: 'open', path: p, length: options.sizeBytes }, 'open', what);
    if (core.dirs.has(p) || isRoot(p)) fail('EISDIR', 'open', what, p);
    let inode = core.files.get(p);
    if (inode === undefined) {
      if (options.readOnly || !options.create) fail('ENOENT', 'open', what, p);
      core.requireParent(p, 'open', what);
    }
    if (options.readOnly && inode !== undefined) {
      return new SimFile(filePath, core, inode, inode.length, true);
    }
    core.reserve(options.sizeBytes - (inode?.length ?? 0), 'write', what, p);
    if (inode === undefined) {
      inode = new SimInode(Buffer.alloc(0), false);
      core.files.set(p, inode);
    }
    inode.grow(options.sizeBytes);
    const size = inode.length;
    return new SimFile(filePath, core, inode, size, false,
      Math.max(size, options.capacityBytes ?? 0));
  }

  exists(filePath: string): boolean {
    const p = normalize(filePath);
    return this.core.files.has(p) || this.core.isDir(p);
  }

  fileSize(filePath: string): number {
    const p = normalize(filePath);
    return this.core.files.get(p)?.length ?? (this.core.isDir(p) ? 0 : -1);
  }

  readdir(dir: string): string[] {
    const d = normalize(dir);
    this.core.fault({ op: 'readdir', path: d }, 'scandir', 'cannot list directory');
    if (this.core.files.has(d)) fail('ENOTDIR', 'scandir', 'cannot list directory', d);
    return this.children(d).map((child) => path.basename(child));
  }

  mkdir(dir: string): void {
    const d = normalize(dir);
    const what = 'cannot create directory';
    this.core.fault({ op: 'mkdir', path: d }, 'mkdir', what);
    const chain: string[] = [];
    for (let at = d; !isRoot(at); at = path.dirname(at)) chain.unshift(at);
    for (const at of chain) {
      if (this.core.files.has(at)) fail(at === d ? 'EEXIST' : 'ENOTDIR', 'mkdir', what, d);
      this.core.dirs.add(at);
    }
  }

  unlink(filePath: string): void {
    const p = normalize(filePath);
    this.core.fault({ op: 'unlink', path: p }, 'unlink', 'cannot delete');
    if (this.core.isDir(p)) fail('EISDIR', 'unlink', 'cannot delete', p);
    this.core.files.delete(p);
  }

  rmdir(dir: string): void {
    const d = normalize(dir);
    if (this.core.files.has(d)) fail('ENOTDIR', 'rmdir', 'cannot remove', d);
    if (this.core.dirs.has(d) && this.children(d).length === 0) this.core.dirs.delete(d);
  }

  readFile(filePath: string): Buffer | null {
    const p = normalize(filePath);
    this.core.fault({ op: 'readFile', path: p }, 'read', 'cannot read');
    if (this.core.isDir(p)) fail('EISDIR', 'read', 'cannot read', p);
    const inode = this.core.files.get(p);
    return inode === undefined ? null : inode.readCopy(0, inode.length);
  }

  /** Durable as a whole once it returns; old handles keep the replaced file (rename semantics). */
  writeFileAtomic(filePath: string, data: Uint8Array): void {
    const p = normalize(filePath);
    const what = 'cannot write atomically';
    this.core.fault({ op: 'writeFile', path: p, length: data.length }, 'write', what);
    if (this.core.isDir(p)) fail('EISDIR', 'rename', what, p);
    this.core.requireParent(p, 'open', what);
    this.core.reserve(data.length, 'write', what, p);
    this.core.files.set(p, new SimInode(Buffer.from(data), true));
    for (const child of this.children(path.dirname(p))) {
      const inode = this.core.files.get(child);
      if (inode !== undefined) inode.entryDurable = true;
    }
  }

  async writeFileAtomicAsync(filePath: string, data: Uint8Array): Promise<void> {
    await Promise.resolve();
    this.writeFileAtomic(filePath, data);
  }

  /** Markers: durable at once, replacing the bytes of the same file in place (O_TRUNC). */
  writeFile(filePath: string, data: Uint8Array): void {
    const p = normalize(filePath);
    this.core.fault({ op: 'writeFile', path: p, length: data.length }, 'write', 'cannot write');
    if (this.core.isDir(p)) fail('EISDIR', 'open', 'cannot write', p);
    const existing = this.core.files.get(p);
    if (existing === undefined) this.core.requireParent(p, 'open', 'cannot write');
    this.core.reserve(data.length - (existing?.length ?? 0), 'write', 'cannot write', p);
    if (existing === undefined) this.core.files.set(p, new SimInode(Buffer.from(data), true));
    else existing.replace(Buffer.from(data));
  }

  diskUsage(dir: string): DiskUsage {
    const d = normalize(dir);
    if (!this.exists(d)) fail('ENOENT', 'statfs', 'cannot read disk usage', d);
    const { capacity } = this.core;
    return { totalBytes: capacity, freeBytes: Math.max(0, capacity - this.core.usedBytes()) };
  }

  /**
   * Power loss or kill -9. Every file's content becomes what survived; every open handle dies.
   * The same backend is then reused to reopen the store.
   */
  crash(options: CrashOptions = {}): CrashReport {
    const mode = options.mode ?? 'drop-unflushed';
    const torn: TornWrite[] = [];
    const report = { keptWrites: 0, droppedWrites: 0, torn, lostFiles: [] as string[] };
    this.core.epoch += 1;
    for (const [p, inode] of [...this.core.files]) {
      if (mode === 'lose-new-files' && !inode.entryDurable) {
        this.core.files.delete(p);
        report.lostFiles.push(p);
        continue;
      }
      const kept = this.survivors(inode.pending, mode);
      report.droppedWrites += inode.pending.length - kept.length;
      const last = options.tear === true ? kept.pop() : undefined;
      if (last !== undefined) {
        const cut = this.tearPoint(last);
        report.torn.push({ path: p, position: last.position, length: last.length, keptBytes: cut });
        if (cut > 0) kept.push({ ...last, length: cut, data: last.data?.subarray(0, cut) ?? null });
      }
      report.keptWrites += kept.length;
      for (const w of kept) apply(inode.durable, w);
      inode.volatile = Buffer.from(inode.durable);
      inode.pending = [];
      inode.entryDurable = true;
    }
    return report;
  }

  /** The kernel writes back every unflushed write and directory entry: all of it is durable. */
  syncAll(): void {
    for (const inode of this.core.files.values()) {
      inode.makeDurable(this.core.seq);
      inode.entryDurable = true;
    }
  }

  /** Fail the next `count` operations `op` with `code`. */
  failNext(op: SimOp, code: FaultCode, count = 1): void {
    this.core.failures.push({ op, code, remaining: count });
  }

  /** Fail every operation the predicate picks; returns the function that removes it. */
  failWhen(predicate: FaultPredicate): () => void {
    this.core.predicates.add(predicate);
    return () => this.core.predicates.delete(predicate);
  }

  /** How many faults were thrown so far (queued or by a predicate). */
  get faultsFired(): number {
    return this.core.fired.length;
  }

  /** The faults thrown after the first `since` of them (see `faultsFired`), oldest first. */
  firedSince(since: number): readonly (SimOpEvent & { readonly code: FaultCode })[] {
    return this.core.fired.slice(since);
  }

  /** Remove queued failures, predicates and bit flips. */
  clearFaults(): void {
    this.core.failures.length = 0;
    this.core.predicates.clear();
    for (const inode of this.core.files.values()) inode.flips.clear();
  }

  /** Later reads of this byte return it with `bit` flipped; the stored bytes stay intact. */
  flipBitOnRead(filePath: string, position: number, bit = 0): void {
    const inode = this.core.files.get(normalize(filePath));
    if (inode === undefined) throw new Error(`flipBitOnRead: no file ${filePath}`);
    inode.flips.set(position, (inode.flips.get(position) ?? 0) ^ (1 << bit));
  }

  /** Later `open`s and writes that would allocate past this fail with DISK_FULL. */
  setCapacity(bytes: number): void {
    this.core.capacity = bytes;
  }

  setFlushDelay(delay: FlushDelay | null): void {
    this.core.flushDelay = delay;
  }

  usedBytes(): number {
    return this.core.usedBytes();
  }

  /** Paths of all files, sorted. */
  fileNames(): string[] {
    return [...this.core.files.keys()].sort();
  }

  /** What a crash in mode 'drop-unflushed' would leave, or null for a missing file. */
  durableBytes(filePath: string): Buffer | null {
    const inode = this.core.files.get(normalize(filePath));
    return inode === undefined ? null : Buffer.from(inode.durable);
  }

  /** What reads see now (without bit flips), or null for a missing file. */
  volatileBytes(filePath: string): Buffer | null {
    const inode = this.core.files.get(normalize(filePath));
    return inode === undefined ? null : Buffer.from(inode.volatile);
  }

  private children(dir: string): string[] {
    const all = [...this.core.files.keys(), ...this.core.dirs];
    return all.filter((p) => p !== dir && path.dirname(p) === dir).sort();
  }

  private survivors(pending: readonly PendingWrite[], mode: CrashMode): PendingWrite[] {
    if (mode === 'keep-all') return [...pending];
    if (mode === 'random-subset') return pending.filter(() => this.random() < 0.5);
    return [];
  }

  /** Bytes of `w` kept: up to a random sector boundary strictly inside it, or 0 if none. */
  private tearPoint(w: PendingWrite): number {
    const first = (Math.floor(w.position / SECTOR_BYTES) + 1) * SECTOR_BYTES;
    const last = (Math.ceil((w.position + w.length) / SECTOR_BYTES) - 1) * SECTOR_BYTES;
    if (first > last) return 0;
    const count = (last - first) / SECTOR_BYTES + 1;
    return first + Math.floor(this.random() * count) * SECTOR_BYTES - w.position;
  }
}
