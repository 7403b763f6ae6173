/**
 * The backends every storage test runs on (STYLE habit 14): the mmap backend, the plain-file
 * backend and the simulated disk; a temporary directory per test; and `SpyBackend`, a wrapper
 * that records what goes through the seam and lets a test pretend the disk is fuller than it is.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { ioError } from '../../lib/errors.js';
import type {
  BackendFile, BackendKind, DiskUsage, IoBackend, OpenOptions,
} from '../../lib/store/io/backend.js';
import { FileBackend } from '../../lib/store/io/file-backend.js';
import { MmapBackend } from '../../lib/store/io/mmap-backend.js';
import { loadNative } from '../../lib/store/io/native.js';
import { SimBackend, type SimBackendOptions } from './sim-backend.js';

export interface BackendCase {
  readonly kind: BackendKind;
  make(): IoBackend;
}

export const mmapCase: BackendCase = {
  kind: 'mmap',
  make: () => {
    const addon = loadNative().mmap;
    if (addon === null) throw new Error(`mmap addon missing: ${loadNative().problems.join('; ')}`);
    return new MmapBackend(addon);
  },
};
export const fileCase: BackendCase = { kind: 'file', make: () => new FileBackend() };
export const simCase = (options: SimBackendOptions = {}): BackendCase =>
  ({ kind: 'sim', make: () => new SimBackend({ seed: 7, ...options }) });

/** Every backend, for `describe.each(backendCases)('... on $kind', ...)`. */
export const backendCases: readonly BackendCase[] = [mmapCase, fileCase, simCase()];

/**
 * Temporary directories for the current file's tests, each removed after its test. Call once at
 * module level: `const tmp = useTempDirs();` then `tmp.make()` inside a test. The simulated disk
 * gets a real directory too: the store lock lives on the real filesystem.
 */
export function useTempDirs(prefix = 'pmq-'): { make(): string } {
  const made: string[] = [];
  afterEach(() => {
    // Retried: a unit test may end with an allocation ahead still creating its file.
    for (const dir of made.splice(0)) {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    }
  });
  return {
    make: () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
      made.push(dir);
      return dir;
    },
  };
}

export interface WriteEvent {
  readonly path: string;
  readonly position: number;
  readonly length: number;
}

/** A BackendFile that reports its writes. */
class SpyFile implements BackendFile {
  constructor(private readonly inner: BackendFile, private readonly spy: SpyBackend) {}
  get path(): string {
    return this.inner.path;
  }
  get maps(): boolean {
    return this.inner.maps;
  }
  get mapping(): Buffer | null {
    return this.inner.mapping;
  }
  size(): number {
    return this.inner.size();
  }
  read(position: number, length: number): Buffer {
    return this.inner.read(position, length);
  }
  view(position: number, length: number): Buffer {
    return this.inner.view(position, length);
  }
  write(position: number, data: Uint8Array): void {
    this.spy.writes.push({ path: this.inner.path, position, length: data.length });
    this.inner.write(position, data);
  }
  async flush(): Promise<void> {
    this.spy.flushes += 1;
    await this.spy.flushGate;
    return this.inner.flush();
  }
  truncate(sizeBytes: number): void {
    this.inner.truncate(sizeBytes);
  }
  growSync(sizeBytes: number): void {
    this.inner.growSync(sizeBytes);
  }
  async grow(sizeBytes: number, sync: boolean): Promise<void> {
    await this.spy.growGate;
    return this.inner.grow(sizeBytes, sync);
  }
  close(): void {
    this.inner.close();
  }
}

/**
 * Wraps a backend: records writes, flushes and asynchronous opens, and reports the disk as
 * `usedRatio` full while that is set (null: the inner backend's own figures).
 */
export class SpyBackend implements IoBackend {
  readonly writes: WriteEvent[] = [];
  flushes = 0;
  /** Every `open` (the asynchronous one: preallocation), in call order. */
  readonly opens: { path: string; done: Promise<unknown> }[] = [];
  /** Every `openSync`'s path, in call order. */
  readonly syncOpens: string[] = [];
  usedRatio: number | null = null;
  /** While set, every flush waits for it before it starts. */
  flushGate: Promise<void> | null = null;
  /** Make the next asynchronous open create its file and then fail, as a disk filling midway. */
  failNextOpenAfterCreate: NodeJS.ErrnoException | null = null;
  /** While set, every asynchronous open (an allocation ahead) waits for it before it starts. */
  openGate: Promise<void> | null = null;
  /** While set, every asynchronous growth step waits for it before it starts. */
  growGate: Promise<void> | null = null;

  constructor(readonly inner: IoBackend) {}

  get kind(): BackendKind {
    return this.inner.kind;
  }

  open(filePath: string, options: OpenOptions): Promise<BackendFile> {
    const failure = this.failNextOpenAfterCreate;
    this.failNextOpenAfterCreate = null;
    const gate = this.openGate ?? Promise.resolve();
    const done = gate.then(() => this.inner.open(filePath, options)).then((file) => {
      if (failure === null) return new SpyFile(file, this);
      file.close();
      throw ioError(failure, `cannot open or allocate ${options.sizeBytes} bytes`, filePath);
    });
    this.opens.push({ path: filePath, done: done.catch(() => undefined) });
    return done;
  }
  openSync(filePath: string, options: OpenOptions): BackendFile {
    this.syncOpens.push(filePath);
    return new SpyFile(this.inner.openSync(filePath, options), this);
  }
  exists(filePath: string): boolean {
    return this.inner.exists(filePath);
  }
  fileSize(filePath: string): number {
    return this.inner.fileSize(filePath);
  }
  readdir(dir: string): string[] {
    return this.inner.readdir(dir);
  }
  mkdir(dir: string): void {
    this.inner.mkdir(dir);
  }
  unlink(filePath: string): void {
    this.inner.unlink(filePath);
  }
  rmdir(dir: string): void {
    this.inner.rmdir(dir);
  }
  readFile(filePath: string): Buffer | null {
    return this.inner.readFile(filePath);
  }
  writeFileAtomic(filePath: string, data: Uint8Array): void {
    this.inner.writeFileAtomic(filePath, data);
  }
  writeFileAtomicAsync(filePath: string, data: Uint8Array): Promise<void> {
    return this.inner.writeFileAtomicAsync(filePath, data);
  }
  writeFile(filePath: string, data: Uint8Array): void {
    this.inner.writeFile(filePath, data);
  }
  diskUsage(dir: string): DiskUsage {
    const real = this.inner.diskUsage(dir);
    if (this.usedRatio === null) return real;
    const totalBytes = 1_000_000_000;
    return { totalBytes, freeBytes: Math.round(totalBytes * (1 - this.usedRatio)) };
  }

  /**
   * Hold every flush until the returned function is called: a disk that takes its time. On the
   * simulated disk through its own flush delay, elsewhere at this seam.
   */
  holdFlushes(): () => void {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    if (this.inner instanceof SimBackend) {
      const sim = this.inner;
      sim.setFlushDelay(() => gate);
      return () => {
        sim.setFlushDelay(null);
        release();
      };
    }
    this.flushGate = gate;
    return () => {
      this.flushGate = null;
      release();
    };
  }

  /** Hold every asynchronous growth step until the returned function is called. */
  holdGrowth(): () => void {
    return this.hold((gate) => { this.growGate = gate; });
  }

  /** Hold every asynchronous open until the returned function is called. */
  holdOpens(): () => void {
    return this.hold((gate) => { this.openGate = gate; });
  }

  /** `set` a gate now, and null when the returned function releases it. */
  private hold(set: (gate: Promise<void> | null) => void): () => void {
    let release!: () => void;
    set(new Promise<void>((resolve) => { release = resolve; }));
    return () => {
      set(null);
      release();
    };
  }

  /** Settle every asynchronous open started so far (preallocations). */
  async settled(): Promise<void> {
    let seen = 0;
    while (seen < this.opens.length) {
      const batch = this.opens.slice(seen);
      seen = this.opens.length;
      await Promise.all(batch.map((o) => o.done));
    }
  }
}

/** One turn of the event loop: lets setImmediate callbacks (commits, group flushes) run. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** An ENOSPC error as fs would raise it. */
export function enospc(at: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOSPC: no space left on device, write '${at}'`),
    { code: 'ENOSPC', errno: -28, syscall: 'write', path: at });
}
