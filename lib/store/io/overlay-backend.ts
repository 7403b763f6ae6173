/**
 * Overlay backend: a copy-on-write view of a data directory, for read-only stores. Reads come
 * from the files (opened O_RDONLY through the wrapped backend, never grown, never locked);
 * everything the store writes while it opens (recovery's truncation and re-dispatch into
 * ConsumeQueues and index, config files, the checkpoint) lands in this process's memory and
 * nowhere else. So a read-only store runs the same open and recovery code as an owner and sees
 * the same consistent state, while the owner keeps writing the real files.
 *
 * Per file the overlay keeps written pages (PAGE_BYTES each, made from the file's bytes on the
 * first write) and `zeroFrom`: bytes at or past it read as zeros (a `truncate`) unless a page
 * holds them. Bytes past the end of the file on disk read as zeros too (a short newest segment).
 * Files made in the overlay have no file below them. `mapping` is always null: nothing may write
 * into a mapping, and reads must see the pages.
 */
import path from 'node:path';
import { PocketMQError } from '../../errors.js';
import type { BackendFile, BackendKind, DiskUsage, IoBackend, OpenOptions } from './backend.js';

const PAGE_BYTES = 4096;

/** What the overlay holds for one path; shared by every handle opened on it. */
interface OverlayState {
  readonly pages: Map<number, Buffer>;
  zeroFrom: number;
}

class OverlayFile implements BackendFile {
  readonly maps = false;
  readonly mapping = null;
  private readonly baseBytes: number;

  constructor(readonly path: string, private readonly base: BackendFile | null,
    private sizeBytes: number, private readonly state: OverlayState,
    private readonly onGrow: (sizeBytes: number) => void) {
    this.baseBytes = base === null ? 0 : Math.min(base.size(), sizeBytes);
  }

  size(): number {
    return this.sizeBytes;
  }

  /** Growth is a length in memory: the bytes past the file's end read as zeros already. */
  growSync(sizeBytes: number): void {
    if (sizeBytes <= this.sizeBytes) return;
    this.sizeBytes = sizeBytes;
    this.onGrow(sizeBytes);
  }

  grow(sizeBytes: number): Promise<void> {
    this.growSync(sizeBytes);
    return Promise.resolve();
  }

  view(position: number, length: number): Buffer {
    const end = position + length;
    if (end <= Math.min(this.state.zeroFrom, this.baseBytes) && !this.hasPages(position, end)) {
      return this.base!.view(position, length);
    }
    return this.read(position, length);
  }

  read(position: number, length: number): Buffer {
    const out = Buffer.alloc(length);
    this.copyBase(out, position, length);
    const end = position + length;
    for (let page = Math.floor(position / PAGE_BYTES); page * PAGE_BYTES < end; page++) {
      const bytes = this.state.pages.get(page);
      if (bytes === undefined) continue;
      const from = Math.max(position, page * PAGE_BYTES);
      const to = Math.min(end, (page + 1) * PAGE_BYTES);
      bytes.copy(out, from - position, from - page * PAGE_BYTES, to - page * PAGE_BYTES);
    }
    return out;
  }

  /** The file's bytes below `zeroFrom` and its end on disk; the rest stays zero. */
  private copyBase(out: Buffer, position: number, length: number): void {
    const to = Math.min(position + length, this.state.zeroFrom, this.baseBytes);
    if (to > position) this.base!.view(position, to - position).copy(out, 0);
  }

  private hasPages(position: number, end: number): boolean {
    if (this.state.pages.size === 0) return false;
    for (let page = Math.floor(position / PAGE_BYTES); page * PAGE_BYTES < end; page++) {
      if (this.state.pages.has(page)) return true;
    }
    return false;
  }

  write(position: number, data: Uint8Array): void {
    const end = position + data.length;
    for (let page = Math.floor(position / PAGE_BYTES); page * PAGE_BYTES < end; page++) {
      const bytes = this.page(page);
      const from = Math.max(position, page * PAGE_BYTES);
      const to = Math.min(end, (page + 1) * PAGE_BYTES);
      bytes.set(data.subarray(from - position, to - position), from - page * PAGE_BYTES);
    }
  }

  private page(page: number): Buffer {
    let bytes = this.state.pages.get(page);
    if (bytes === undefined) {
      bytes = this.read(page * PAGE_BYTES, PAGE_BYTES);
      this.state.pages.set(page, bytes);
    }
    return bytes;
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  truncate(sizeBytes: number): void {
    this.state.zeroFrom = Math.min(this.state.zeroFrom, sizeBytes);
    for (const [page, bytes] of this.state.pages) {
      const from = sizeBytes - page * PAGE_BYTES;
      if (from < PAGE_BYTES) bytes.fill(0, Math.max(0, from));
    }
  }

  close(): void {
    this.base?.close();
  }
}

export class OverlayBackend implements IoBackend {
  readonly kind: BackendKind;
  private readonly files = new Map<string, OverlayState>();
  /** Files and small files the overlay made, and paths it deleted. */
  private readonly made = new Map<string, number>();
  private readonly small = new Map<string, Buffer>();
  private readonly deleted = new Set<string>();
  private readonly dirs = new Set<string>();

  constructor(private readonly base: IoBackend) {
    this.kind = base.kind;
  }

  open(filePath: string, options: OpenOptions): Promise<BackendFile> {
    try {
      return Promise.resolve(this.openSync(filePath, options));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  openSync(filePath: string, options: OpenOptions): BackendFile {
    const key = path.resolve(filePath);
    let state = this.files.get(key);
    const onDisk = !this.deleted.has(key) && !this.made.has(key) && this.base.exists(key);
    if (!onDisk && !this.made.has(key)) {
      if (!options.create) {
        if (this.deleted.has(key)) {
          throw new PocketMQError('IO_ERROR', `cannot open ${key}: it was deleted`, { path: key });
        }
        // Let the base backend report the missing file the way it always does.
        return this.base.openSync(key, { ...options, readOnly: true });
      }
      this.deleted.delete(key);
      this.made.set(key, options.sizeBytes);
      state = undefined;
    }
    if (state === undefined) {
      state = { pages: new Map(), zeroFrom: Number.MAX_SAFE_INTEGER };
      this.files.set(key, state);
    }
    const base = onDisk ? this.base.openSync(key, { ...options, create: false, readOnly: true })
      : null;
    const size = Math.max(options.sizeBytes, base?.size() ?? this.made.get(key) ?? 0);
    if (this.made.has(key)) this.made.set(key, size);
    return new OverlayFile(key, base, size, state, (grown) => {
      if (this.made.has(key)) this.made.set(key, grown);
    });
  }

  exists(filePath: string): boolean {
    const key = path.resolve(filePath);
    if (this.deleted.has(key)) return false;
    return this.made.has(key) || this.small.has(key) || this.dirs.has(key) ||
      this.base.exists(key);
  }

  fileSize(filePath: string): number {
    const key = path.resolve(filePath);
    if (this.deleted.has(key)) return -1;
    const made = this.made.get(key) ?? this.small.get(key)?.length;
    return made ?? this.base.fileSize(key);
  }

  readdir(dir: string): string[] {
    const key = path.resolve(dir);
    const names = new Set(this.base.readdir(key));
    for (const p of [...this.made.keys(), ...this.small.keys(), ...this.dirs]) {
      if (path.dirname(p) === key) names.add(path.basename(p));
    }
    return [...names].filter((name) => !this.deleted.has(path.join(key, name)));
  }

  mkdir(dir: string): void {
    for (let d = path.resolve(dir); !this.base.exists(d); d = path.dirname(d)) {
      this.dirs.add(d);
      this.deleted.delete(d);
      if (path.dirname(d) === d) break;
    }
  }

  unlink(filePath: string): void {
    const key = path.resolve(filePath);
    this.made.delete(key);
    this.small.delete(key);
    this.files.delete(key);
    this.deleted.add(key);
  }

  rmdir(): void {
    // Directories stay: an empty one reads the same as a missing one to the store.
  }

  readFile(filePath: string): Buffer | null {
    const key = path.resolve(filePath);
    if (this.deleted.has(key)) return null;
    const small = this.small.get(key);
    return small === undefined ? this.base.readFile(key) : Buffer.from(small);
  }

  writeFileAtomic(filePath: string, data: Uint8Array): void {
    this.writeFile(filePath, data);
  }

  writeFileAtomicAsync(filePath: string, data: Uint8Array): Promise<void> {
    this.writeFile(filePath, data);
    return Promise.resolve();
  }

  writeFile(filePath: string, data: Uint8Array): void {
    const key = path.resolve(filePath);
    this.deleted.delete(key);
    this.small.set(key, Buffer.from(data));
  }

  diskUsage(dir: string): DiskUsage {
    return this.base.diskUsage(dir);
  }
}
