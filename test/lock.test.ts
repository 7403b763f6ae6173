import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PocketMQError } from '../lib/errors.js';
import { loadNative } from '../lib/store/io/native.js';
import { LOCK_FILE_NAME, StoreLock } from '../lib/store/lock.js';

const flock = loadNative().flock;
const fsExtPath = createRequire(import.meta.url).resolve('fs-ext');

let dir: string;
let lockPath: string;
const locks: StoreLock[] = [];
const children: ChildProcess[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-'));
  lockPath = path.join(dir, LOCK_FILE_NAME);
});

afterEach(async () => {
  for (const lock of locks.splice(0)) lock.release();
  await Promise.all(children.splice(0).map((child) => kill(child)));
  fs.rmSync(dir, { recursive: true, force: true });
});

function acquire(options: { flock: typeof flock }): StoreLock {
  const lock = StoreLock.acquire(dir, options);
  locks.push(lock);
  return lock;
}

function lockedError(fn: () => unknown): PocketMQError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PocketMQError);
    expect((err as PocketMQError).code).toBe('STORE_LOCKED');
    return err as PocketMQError;
  }
  throw new Error('expected STORE_LOCKED');
}

/** Run `script` in a child node and resolve once it prints `ready` (no sleeps). */
function startChild(script: string, ready: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.split('\n').includes(ready)) resolve(child);
    });
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('exit', (code) => reject(new Error(`child exited (${code}) before ready: ${err}`)));
    child.on('error', reject);
  });
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  // 'exit' fires once the child is reaped: its descriptors, and so its flock, are gone.
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  return exited;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  expect(child.pid).toBeGreaterThan(0);
  return child.pid!;
}

/** A child script that flocks `file` as our flock mode does, records its pid, and waits. */
function flockHolder(file: string): string {
  return `
const fs = require('node:fs');
const ext = require(${JSON.stringify(fsExtPath)});
const fd = fs.openSync(${JSON.stringify(file)}, 'a+');
ext.flockSync(fd, 'exnb');
fs.ftruncateSync(fd, 0);
fs.writeSync(fd, process.pid + '\\n', 0);
console.log('locked');
setInterval(() => {}, 1 << 30);
`;
}

describe.each([
  ['flock', flock],
  ['pid', null],
] as const)('StoreLock in %s mode', (mode, addon) => {
  it('refuses a second acquire in the same process', () => {
    const lock = acquire({ flock: addon });
    expect(lock.mode).toBe(mode);
    expect(lock.held).toBe(true);
    expect(fs.readFileSync(lockPath, 'latin1')).toBe(`${process.pid}\n`);
    expect(lockedError(() => acquire({ flock: addon })).message).toMatch(/in this process/);
  });

  it('refuses a second acquire through another path to the same directory', () => {
    acquire({ flock: addon });
    const link = `${dir}-link`;
    fs.symlinkSync(dir, link);
    try {
      lockedError(() => StoreLock.acquire(link, { flock: addon }));
    } finally {
      fs.unlinkSync(link);
    }
  });

  it('can be acquired again after release, and release is idempotent', () => {
    const first = acquire({ flock: addon });
    first.release();
    first.release();
    expect(first.held).toBe(false);
    const second = acquire({ flock: addon });
    expect(second.held).toBe(true);
    second.release();
    expect(fs.existsSync(lockPath) ? fs.readFileSync(lockPath, 'latin1') : '').toBe('');
  });

  it('ignores the pid of a dead owner', async () => {
    fs.writeFileSync(lockPath, `${await deadPid()}\n`);
    acquire({ flock: addon });
    expect(fs.readFileSync(lockPath, 'latin1')).toBe(`${process.pid}\n`);
  });
});

describe('StoreLock with flock against another process', () => {
  it('is refused while a child holds the flock, and free once the child is killed', async () => {
    expect(flock).not.toBeNull();
    const child = await startChild(flockHolder(lockPath), 'locked');
    const err = lockedError(() => acquire({ flock }));
    expect(err.message).toContain(`pid ${child.pid}`);
    expect(err.path).toBe(fs.realpathSync(lockPath));
    await kill(child);
    const lock = acquire({ flock });
    expect(lock.mode).toBe('flock');
  });
});

describe('StoreLock pid fallback', () => {
  it('is refused while the pid in the file is a live process, and free once it dies', async () => {
    const idle = "console.log('ready'); setInterval(() => {}, 1 << 30);";
    const child = await startChild(idle, 'ready');
    fs.writeFileSync(lockPath, `${child.pid}\n`);
    expect(lockedError(() => acquire({ flock: null })).message).toContain(`pid ${child.pid}`);
    await kill(child);
    acquire({ flock: null });
    expect(fs.readFileSync(lockPath, 'latin1')).toBe(`${process.pid}\n`);
  });

  it('counts a process we may not signal (EPERM) as alive', () => {
    // pid 1 always exists; as non-root kill(1, 0) fails with EPERM, as root it succeeds.
    fs.writeFileSync(lockPath, '1\n');
    lockedError(() => acquire({ flock: null }));
  });

  it('treats an unreadable lock file as free', () => {
    fs.writeFileSync(lockPath, 'not a pid');
    acquire({ flock: null });
    expect(fs.readFileSync(lockPath, 'latin1')).toBe(`${process.pid}\n`);
  });

  it('removes its lock file on release', () => {
    acquire({ flock: null }).release();
    expect(fs.existsSync(lockPath)).toBe(false);
  });
});
