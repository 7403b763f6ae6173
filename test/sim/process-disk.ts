/**
 * The simulated disk as one store process sees it. The simulator opens every store lifetime on
 * its own ProcessDisk over the shared SimBackend; `kill()` is the process dying: from then on
 * every call the old store makes (a flush, a checkpoint or offsets write still in flight, a
 * segment allocation) fails with EIO, so nothing the dead process does can reach the disk the
 * next lifetime recovers. A dead process runs no code, but the old store's promises still settle
 * here: its asynchronous calls reject, its reads throw, and its synchronous changes (writes,
 * truncates, unlink, mkdir, marker and atomic writes) are dropped without a word, as if they
 * never ran, so no error path of the old store turns into an uncaught exception that only a dead
 * process would have. (Handles of a crashed SimBackend would throw EBADF: they are not reached.)
 *
 * `killAfter(n)` makes the process die at its n-th I/O call from then on (that call does not
 * happen): kill -9 at a random moment, in the middle of a turn, a flush or a recovery.
 */
import { ioError } from '../../lib/errors.js';
import type {
  BackendFile, BackendKind, DiskUsage, IoBackend, OpenOptions,
} from '../../lib/store/io/backend.js';

function dead(syscall: string, at: string): never {
  const err = Object.assign(new Error(`EIO: process was killed, ${syscall} '${at}'`),
    { code: 'EIO', errno: -5, syscall, path: at });
  throw ioError(err, 'the simulated process is dead', at);
}

class ProcessFile implements BackendFile {
  constructor(private readonly inner: BackendFile, private readonly owner: ProcessDisk) {}
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
    this.owner.tick(this.path);
    this.owner.check('read', this.path);
    return this.inner.read(position, length);
  }
  view(position: number, length: number): Buffer {
    this.owner.tick(this.path);
    this.owner.check('read', this.path);
    return this.inner.view(position, length);
  }
  write(position: number, data: Uint8Array): void {
    this.owner.tick(this.path);
    if (!this.owner.isAlive) return;
    this.inner.write(position, data);
  }
  async flush(): Promise<void> {
    this.owner.tick(this.path);
    this.owner.check('fdatasync', this.path);
    await this.inner.flush();
    // A flush that was in flight when the process died never reports success.
    this.owner.check('fdatasync', this.path);
  }
  truncate(sizeBytes: number): void {
    this.owner.tick(this.path);
    if (!this.owner.isAlive) return;
    this.inner.truncate(sizeBytes);
  }
  growSync(sizeBytes: number): void {
    this.owner.tick(this.path);
    this.owner.check('fallocate', this.path);
    this.inner.growSync(sizeBytes);
  }
  async grow(sizeBytes: number, sync: boolean): Promise<void> {
    this.owner.tick(this.path);
    this.owner.check('fallocate', this.path);
    await this.inner.grow(sizeBytes, sync);
    this.owner.check('fallocate', this.path);
  }
  close(): void {
    this.inner.close();
  }
}

export class ProcessDisk implements IoBackend {
  private alive = true;
  private callsLeft = Infinity;
  private spare: ((at: string) => boolean) | null = null;
  /** Called when `killAfter` kills the process, before the call that killed it fails. */
  onKill: (() => void) | null = null;

  constructor(readonly inner: IoBackend) {}

  get kind(): BackendKind {
    return this.inner.kind;
  }

  /** The process died: every later call fails. */
  kill(): void {
    this.alive = false;
  }

  /**
   * Die at the `calls`-th I/O call from now (that call does not happen), not counting calls on
   * paths `spare` picks: those are never interrupted.
   */
  killAfter(calls: number, spare: ((at: string) => boolean) | null = null): void {
    this.callsLeft = calls;
    this.spare = spare;
  }

  /** One more I/O call, on `at`. */
  tick(at: string): void {
    if (!this.alive || this.spare?.(at) === true || --this.callsLeft > 0) return;
    this.alive = false;
    this.onKill?.();
  }

  get isAlive(): boolean {
    return this.alive;
  }

  check(syscall: string, at: string): void {
    if (!this.alive) dead(syscall, at);
  }

  async open(filePath: string, options: OpenOptions): Promise<BackendFile> {
    this.tick(filePath);
    this.check('open', filePath);
    const file = await this.inner.open(filePath, options);
    if (!this.alive) {
      file.close();
      dead('open', filePath);
    }
    return new ProcessFile(file, this);
  }
  openSync(filePath: string, options: OpenOptions): BackendFile {
    this.tick(filePath);
    this.check('open', filePath);
    return new ProcessFile(this.inner.openSync(filePath, options), this);
  }
  exists(filePath: string): boolean {
    this.tick(filePath);
    this.check('stat', filePath);
    return this.inner.exists(filePath);
  }
  fileSize(filePath: string): number {
    this.tick(filePath);
    this.check('stat', filePath);
    return this.inner.fileSize(filePath);
  }
  readdir(dir: string): string[] {
    this.tick(dir);
    this.check('scandir', dir);
    return this.inner.readdir(dir);
  }
  mkdir(dir: string): void {
    this.tick(dir);
    if (!this.alive) return;
    this.inner.mkdir(dir);
  }
  unlink(filePath: string): void {
    this.tick(filePath);
    if (!this.alive) return;
    this.inner.unlink(filePath);
  }
  rmdir(dir: string): void {
    this.tick(dir);
    if (!this.alive) return;
    this.inner.rmdir(dir);
  }
  readFile(filePath: string): Buffer | null {
    this.tick(filePath);
    this.check('read', filePath);
    return this.inner.readFile(filePath);
  }
  writeFileAtomic(filePath: string, data: Uint8Array): void {
    this.tick(filePath);
    if (!this.alive) return;
    this.inner.writeFileAtomic(filePath, data);
  }
  async writeFileAtomicAsync(filePath: string, data: Uint8Array): Promise<void> {
    this.tick(filePath);
    this.check('rename', filePath);
    await Promise.resolve();
    // The rename happens after the fsyncs: a process killed meanwhile never renames.
    this.tick(filePath);
    this.check('rename', filePath);
    this.inner.writeFileAtomic(filePath, data);
  }
  writeFile(filePath: string, data: Uint8Array): void {
    this.tick(filePath);
    if (!this.alive) return;
    this.inner.writeFile(filePath, data);
  }
  diskUsage(dir: string): DiskUsage {
    this.tick(dir);
    this.check('statfs', dir);
    return this.inner.diskUsage(dir);
  }
}
