/**
 * The store lock: one process owns a data directory for as long as the store is open.
 *
 * Owns `<dir>/lock`. Its content is the owner's pid in ASCII decimal and a newline, or nothing
 * once the owner has released it:
 *
 *   "12345\n"
 *
 * Two modes, chosen by whether the fs-ext addon loaded (io/native.ts):
 * - `flock`: an exclusive, non-blocking flock(2) on the open lock file, held until `release()`.
 *   The kernel drops it when the process dies, however it dies (kill -9 included), so a crash
 *   never leaves the store locked. The pid in the file is for humans (and for pid-mode openers,
 *   below); it never decides anything here. Node opens files with O_CLOEXEC, so a child process
 *   does not inherit the descriptor and cannot keep the lock alive after we die.
 * - `pid` (fallback): the file holds the owner's pid, and a live pid other than ours refuses the
 *   open (`process.kill(pid, 0)`; EPERM counts as alive). This is WEAKER than flock:
 *   1. pid reuse: after a crash, an unrelated live process that got the old pid keeps the store
 *      refused until someone deletes `<dir>/lock` by hand;
 *   2. racy: two processes opening over a stale pid at the same moment can both proceed (a missing
 *      file is created with O_EXCL, which closes that one window only);
 *   3. worker threads share one pid and each has its own copy of this module, so two threads of
 *      one process are not kept apart;
 *   4. mixed modes: a pid-mode opener honours a flock owner (flock mode writes its pid), but a
 *      flock-mode opener ignores a pid-mode owner.
 *
 * In both modes a process-wide set of held directories (by realpath) refuses a second open in the
 * same process, so the two modes behave alike there whatever the platform's flock does.
 *
 * Invariant: a StoreLock is held iff its realpath is in `heldDirs`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { assert, ioError, PocketMQError } from '../errors.js';
import type { FlockAddon } from './io/native.js';

export const LOCK_FILE_NAME = 'lock';

export type LockMode = 'flock' | 'pid';

export interface StoreLockOptions {
  /** The flock addon, or null when fs-ext failed to load: then the weaker pid lock file. */
  readonly flock: FlockAddon | null;
}

const FILE_MODE = 0o600;
/** Pid mode: how often to re-read when another opener creates the file between read and create. */
const PID_CREATE_ATTEMPTS = 3;
/** Longest pid we parse (Linux pid_max is at most 2^22; other systems stay well below 10^10). */
const PID_PATTERN = /^[1-9][0-9]{0,9}$/;

/** Realpaths of the directories this process holds. */
const heldDirs = new Set<string>();

export class StoreLock {
  private released = false;

  private constructor(
    /** Realpath of the store directory. */
    readonly dir: string,
    readonly path: string,
    readonly mode: LockMode,
    /** Flock mode only: the open lock file and the addon that locked it. */
    private readonly fd: number | null,
    private readonly flock: FlockAddon | null,
  ) {}

  /** Take `<dir>/lock` or throw STORE_LOCKED; `dir` must exist. */
  static acquire(dir: string, options: StoreLockOptions): StoreLock {
    const real = realDir(dir);
    const lockPath = path.join(real, LOCK_FILE_NAME);
    if (heldDirs.has(real)) {
      throw new PocketMQError('STORE_LOCKED', `store ${real} is already open in this process`, {
        path: lockPath,
      });
    }
    const lock = options.flock === null
      ? StoreLock.acquirePidFile(real, lockPath)
      : StoreLock.acquireFlock(real, lockPath, options.flock);
    heldDirs.add(real);
    return lock;
  }

  get held(): boolean {
    return !this.released;
  }

  /** Give the directory up. Idempotent; the lock counts as released even if this throws. */
  release(): void {
    if (this.released) return;
    this.released = true;
    heldDirs.delete(this.dir);
    if (this.mode === 'flock') {
      assert(this.fd !== null && this.flock !== null, 'a flock lock keeps its descriptor');
      this.releaseFlock(this.fd, this.flock);
    } else {
      // Remove the file only while it is ours, so a stale pid cannot outlive us (pid reuse).
      if (readLockFile(this.path).pid === process.pid) unlinkLockFile(this.path);
    }
  }

  private releaseFlock(fd: number, flock: FlockAddon): void {
    try {
      // Clear our pid first, so nobody reads a dead owner's pid (pid-mode openers included).
      fs.ftruncateSync(fd, 0);
      flock.flockSync(fd, 'un');
    } catch (err) {
      throw ioError(err, 'cannot release the store lock', this.path);
    } finally {
      // Closing the only descriptor drops the flock even if the explicit unlock failed.
      fs.closeSync(fd);
    }
  }

  private static acquireFlock(dir: string, lockPath: string, flock: FlockAddon): StoreLock {
    let fd: number;
    try {
      fd = fs.openSync(lockPath, fs.constants.O_RDWR | fs.constants.O_CREAT, FILE_MODE);
    } catch (err) {
      throw ioError(err, 'cannot open the lock file', lockPath);
    }
    try {
      try {
        flock.flockSync(fd, 'exnb');
      } catch (err) {
        if (!isWouldBlock(err)) throw ioError(err, 'flock failed', lockPath);
        throw lockedByOther(dir, lockPath, readLockFile(lockPath).pid, err);
      }
      writePid(fd, lockPath);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    return new StoreLock(dir, lockPath, 'flock', fd, flock);
  }

  private static acquirePidFile(dir: string, lockPath: string): StoreLock {
    const line = `${process.pid}\n`;
    for (let attempt = 0; attempt < PID_CREATE_ATTEMPTS; attempt++) {
      const { exists, pid } = readLockFile(lockPath);
      if (pid !== null && pid !== process.pid && isAlive(pid, lockPath)) {
        throw lockedByOther(dir, lockPath, pid);
      }
      // Missing: create exclusively, so two openers of a fresh directory cannot both win.
      // Present with a dead, unreadable or our own pid: the owner is gone, overwrite.
      const flag = exists ? 'w' : 'wx';
      try {
        fs.writeFileSync(lockPath, line, { mode: FILE_MODE, flag });
        return new StoreLock(dir, lockPath, 'pid', null, null);
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw ioError(err, 'cannot write the lock file', lockPath);
      }
    }
    throw new PocketMQError('STORE_LOCKED',
      `store ${dir} is being opened by another process at the same time`, { path: lockPath });
  }
}

function realDir(dir: string): string {
  try {
    return fs.realpathSync(dir);
  } catch (err) {
    throw ioError(err, 'cannot resolve the store directory', dir);
  }
}

function lockedByOther(dir: string, lockPath: string, pid: number | null, cause?: unknown) {
  const who = pid === null ? 'another process' : `another process (pid ${pid})`;
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

/** The lock file's pid; null when the file is missing, empty or not a pid. */
function readLockFile(lockPath: string): { exists: boolean; pid: number | null } {
  let text: string;
  try {
    text = fs.readFileSync(lockPath, 'latin1');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { exists: false, pid: null };
    throw ioError(err, 'cannot read the lock file', lockPath);
  }
  const trimmed = text.trim();
  return { exists: true, pid: PID_PATTERN.test(trimmed) ? Number(trimmed) : null };
}

function unlinkLockFile(lockPath: string): void {
  try {
    fs.unlinkSync(lockPath);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw ioError(err, 'cannot remove the lock file', lockPath);
  }
}

/** Signal 0 checks existence only; EPERM means it exists but belongs to someone else. */
function isAlive(pid: number, lockPath: string): boolean {
  assert(Number.isSafeInteger(pid) && pid > 0, 'a pid is a positive integer (0 means our group)');
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EPERM') return true;
    if (code === 'ESRCH') return false;
    throw ioError(err, `cannot check whether pid ${pid} is alive`, lockPath);
  }
}

function isWouldBlock(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'EAGAIN' || code === 'EWOULDBLOCK';
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
