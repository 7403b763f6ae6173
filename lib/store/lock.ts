/**
 * The store lock: one owner per data directory for as long as the store is open, whatever
 * each opener could load, in any process or worker thread.
 *
 * Owns `<dir>/lock` and the directory's lock socket (lock-socket.ts). The file's content is the
 * owner's pid in ASCII decimal and a newline, or nothing once the owner has released it:
 *
 *   "12345\n"
 *
 * The pid is for people and for error messages; it never decides anything.
 *
 * Layers, all of which an opener must get, in this order:
 * 1. This thread's set of held directories (by st_dev:st_ino): a second open in the same thread
 *    is refused before anything is touched.
 * 2. flock(2) on `<dir>/lock`, exclusive and non-blocking, when fs-ext is loaded (main thread
 *    only: the addon is not context-aware). Optional: it adds what sockets lack, an exclusion
 *    that crosses network namespaces (two containers sharing a volume), and it serialises the
 *    replacement of a stale socket file on platforms without abstract sockets.
 * 3. The lock socket, which every opener binds, addons or not: a listening socket whose address
 *    derives from the directory's identity (st_dev + st_ino; a Linux abstract socket, a socket
 *    file in the directory elsewhere on POSIX, a named pipe on Windows). Binding is exclusive
 *    across processes and across threads of one process, and the kernel frees it when the
 *    process dies (kill -9 included): no lock file to delete by hand and no pid-reuse hazard,
 *    which the old pid-file fallback had (an opener with flock ignored an owner without it).
 *    The socket only excludes: a connection to it is closed at once.
 * Then the pid is written. `release()` clears the pid first (so it never names a dead owner),
 * then closes the socket and drops the flock, at once, so the directory can be opened again
 * straight away in this process or any other.
 *
 * Invariant: a StoreLock is held iff its identity is in `heldDirs` and its socket is bound.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ioError, PocketMQError, runAll } from '../errors.js';
import { loadNative, type AddonLoader, type FlockAddon } from './io/native.js';
import type { Logger } from './options.js';
import {
  bindLockSocket, closeLockSocket, dirIdentity, errnoCode, platformSocketKind, printable,
  type BoundSocket, type SocketApi, type SocketKind,
} from './lock-socket.js';

export { SOCKET_FILE_NAME, type SocketApi, type SocketKind } from './lock-socket.js';

export const LOCK_FILE_NAME = 'lock';

export interface StoreLockOptions {
  /** flock(2) through fs-ext, or null when the addon is not loaded (no flock layer). */
  readonly flock: FlockAddon | null;
  /** How the lock socket is bound; the platform's way by default ('file' on Linux: tests). */
  readonly socket?: SocketKind;
  /** What listens on it: the platform's way by default ('net' on POSIX: tests). */
  readonly socketApi?: SocketApi;
}

const FILE_MODE = 0o600;
/** Longest pid we parse (Linux pid_max is at most 2^22; other systems stay well below 10^10). */
const PID_PATTERN = /^[1-9][0-9]{0,9}$/;

/** The directories (st_dev:st_ino) this thread holds or is acquiring. */
const heldDirs = new Set<string>();

export class StoreLock {
  private released = false;

  private constructor(
    /** Realpath of the store directory. */
    readonly dir: string,
    readonly path: string,
    private readonly key: string,
    /** The open lock file: it holds the pid, and the flock when `flocked`. */
    private readonly fd: number,
    private readonly flock: FlockAddon | null,
    private readonly socket: BoundSocket,
  ) {}

  /** Take the directory or throw STORE_LOCKED; `dir` must exist. */
  static async acquire(dir: string, options: StoreLockOptions): Promise<StoreLock> {
    const real = realDir(dir);
    const lockPath = path.join(real, LOCK_FILE_NAME);
    const id = dirIdentity(real);
    const key = `${id.dev}:${id.ino}`;
    if (heldDirs.has(key)) {
      throw new PocketMQError('STORE_LOCKED',
        `store ${real} is already open in this process (pid ${process.pid})`, { path: lockPath });
    }
    heldDirs.add(key);
    let fd: number | null = null;
    let bound: BoundSocket | null = null;
    try {
      fd = openLockFile(lockPath);
      if (options.flock !== null) takeFlock(real, lockPath, fd, options.flock);
      bound = await bindLockSocket(options.socket ?? platformSocketKind(), real, id,
        options.flock !== null, options.socketApi);
      if (bound === null) throw lockedByOther(real, lockPath);
      writePid(fd, lockPath);
      return new StoreLock(real, lockPath, key, fd, options.flock, bound);
    } catch (err) {
      heldDirs.delete(key);
      if (bound !== null) closeLockSocket(bound);
      // Closing the lock file drops a flock we took.
      if (fd !== null) fs.closeSync(fd);
      throw err;
    }
  }

  get held(): boolean {
    return !this.released;
  }

  /** Which layers hold the directory. */
  get layers(): { readonly socket: string; readonly flock: boolean } {
    return { socket: printable(this.socket.address), flock: this.flock !== null };
  }

  /** Give the directory up, at once. Idempotent; it counts as released even if this throws. */
  release(): void {
    if (this.released) return;
    this.released = true;
    heldDirs.delete(this.key);
    const fd = this.fd;
    runAll([
      // Clear our pid while we still hold the socket, so it never names a dead owner and never
      // wipes the next owner's.
      () => truncate(fd, this.path),
      () => closeLockSocket(this.socket),
      () => this.flock?.flockSync(fd, 'un'),
      // Closing the only descriptor drops the flock even if the explicit unlock failed.
      () => fs.closeSync(fd),
    ]);
  }
}

/**
 * Lock a store's directory as an owner's open does: with the flock layer when fs-ext loads in
 * this thread, saying once through the logger when it does not (the lock socket alone then
 * keeps one owner per directory).
 */
export function acquireLock(dir: string, options: {
  readonly logger: Logger; readonly addonLoader: AddonLoader | null;
}): Promise<StoreLock> {
  const native = loadNative(options.addonLoader ?? undefined);
  if (native.flock === null) {
    const why = native.problems.filter((p) => p.startsWith('fs-ext')).join('; ');
    options.logger.info(`pocketmq: no flock layer on ${dir}/${LOCK_FILE_NAME} (${why}); the ` +
      'lock socket alone keeps one owner per directory');
  }
  return StoreLock.acquire(dir, { flock: native.flock });
}

function realDir(dir: string): string {
  try {
    return fs.realpathSync(dir);
  } catch (err) {
    throw ioError(err, 'cannot resolve the store directory', dir);
  }
}

function openLockFile(lockPath: string): number {
  try {
    return fs.openSync(lockPath, fs.constants.O_RDWR | fs.constants.O_CREAT, FILE_MODE);
  } catch (err) {
    throw ioError(err, 'cannot open the lock file', lockPath);
  }
}

function takeFlock(dir: string, lockPath: string, fd: number, flock: FlockAddon): void {
  try {
    flock.flockSync(fd, 'exnb');
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') throw ioError(err, 'flock failed', lockPath);
    throw lockedByOther(dir, lockPath, err);
  }
}

function lockedByOther(dir: string, lockPath: string, cause?: unknown): PocketMQError {
  const pid = readPid(lockPath);
  const who = pid === process.pid ? `this process (pid ${pid}: another store or thread)`
    : pid === null ? 'another process' : `another process (pid ${pid})`;
  const fields = cause === undefined ? { path: lockPath } : { path: lockPath, cause };
  return new PocketMQError('STORE_LOCKED', `store ${dir} is locked: ${who} holds it`, fields);
}

function writePid(fd: number, lockPath: string): void {
  try {
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, `${process.pid}\n`, 0);
  } catch (err) {
    throw ioError(err, 'cannot write the lock file', lockPath);
  }
}

function truncate(fd: number, lockPath: string): void {
  try {
    fs.ftruncateSync(fd, 0);
  } catch (err) {
    throw ioError(err, 'cannot clear the lock file', lockPath);
  }
}

/** The pid in the lock file, for messages; null when missing, empty or not a pid. */
export function readPid(lockPath: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(lockPath, 'latin1');
  } catch {
    return null;
  }
  const trimmed = text.trim();
  return PID_PATTERN.test(trimmed) ? Number(trimmed) : null;
}
