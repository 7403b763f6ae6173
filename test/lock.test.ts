import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PocketMQError } from '../lib/errors.js';
import { loadNative } from '../lib/store/io/native.js';
import {
  LOCK_FILE_NAME, SOCKET_FILE_NAME, StoreLock, type SocketApi, type SocketKind,
} from '../lib/store/lock.js';
import { ensureBuilt } from './support/dist.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const holderScript = path.join(root, 'test', 'fixtures', 'lock-holder.mjs');
const flock = loadNative().flock;

let dir: string;
let lockPath: string;
const locks: StoreLock[] = [];
const children: ChildProcess[] = [];

beforeAll(() => ensureBuilt());

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-'));
  lockPath = path.join(dir, LOCK_FILE_NAME);
});

afterEach(async () => {
  for (const lock of locks.splice(0)) lock.release();
  await Promise.all(children.splice(0).map((child) => kill(child)));
  fs.rmSync(dir, { recursive: true, force: true });
});

async function acquire(options: { flock: typeof flock; socket?: SocketKind; socketApi?: SocketApi },
  at = dir): Promise<StoreLock> {
  const lock = await StoreLock.acquire(at, options);
  locks.push(lock);
  return lock;
}

async function lockedError(promise: Promise<unknown>): Promise<PocketMQError> {
  const err = await promise.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(PocketMQError);
  expect((err as PocketMQError).code).toBe('STORE_LOCKED');
  return err as PocketMQError;
}

/** Run the lock-holder fixture in a child; resolve once it holds the lock. */
function startHolder(config: {
  dir: string; flock: boolean; socket: SocketKind; socketApi?: SocketApi;
}):
  Promise<ChildProcess> {
  const child = spawn(process.execPath, [holderScript, JSON.stringify(config)],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.split('\n').includes('locked')) resolve(child);
    });
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('exit', (code) =>
      reject(new Error(`holder exited (${code}) before locking: ${out}${err}`)));
    child.on('error', reject);
  });
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  // 'exit' fires once the child is reaped: its sockets and descriptors are gone.
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  return exited;
}

const kinds: SocketKind[] = ['abstract', 'file'];
const apis: SocketApi[] = ['binding', 'net'];
/** The other way to listen: each holder in another process uses it, so both exclude each other. */
const other = (api: SocketApi): SocketApi => (api === 'net' ? 'binding' : 'net');

describe.each(kinds.flatMap((socket) => apis.flatMap((socketApi) => [
  { socket, socketApi, flock: true }, { socket, socketApi, flock: false },
])))('StoreLock ($socket socket through $socketApi, flock $flock)', ({
  socket, socketApi, flock: withFlock,
}) => {
  const options = { flock: withFlock ? flock : null, socket, socketApi };

  it('refuses a second acquire in the same thread, naming the directory and our pid', async () => {
    const lock = await acquire(options);
    expect(lock.held).toBe(true);
    expect(lock.layers.flock).toBe(withFlock);
    expect(fs.readFileSync(lockPath, 'latin1')).toBe(`${process.pid}\n`);
    const err = await lockedError(acquire(options));
    expect(err.message).toContain(fs.realpathSync(dir));
    expect(err.message).toContain(`pid ${process.pid}`);
  });

  it('refuses a second acquire through a symlink to the same directory', async () => {
    await acquire(options);
    const link = `${dir}-link`;
    fs.symlinkSync(dir, link);
    try {
      await lockedError(acquire(options, link));
    } finally {
      fs.unlinkSync(link);
    }
  });

  it('is free again at once after release; release is idempotent and clears the pid', async () => {
    const first = await acquire(options);
    first.release();
    first.release();
    expect(first.held).toBe(false);
    expect(fs.readFileSync(lockPath, 'latin1')).toBe('');
    const second = await acquire(options);
    expect(second.held).toBe(true);
    second.release();
    if (socket === 'file') expect(fs.existsSync(path.join(dir, SOCKET_FILE_NAME))).toBe(false);
  });

  it('closes a connection to the lock socket at once and stays held', async () => {
    const lock = await acquire(options);
    const address = lock.layers.socket.replace(/^@/, '\0');
    for (let i = 0; i < 3; i++) expect(await connectAndWaitClose(address)).toBe(true);
    expect(lock.held).toBe(true);
    await lockedError(acquire({ ...options, socketApi: other(socketApi) }));
  });

  it('is refused while another process holds it, and free at once when that one is killed',
    async () => {
      const child = await startHolder({ dir, flock: withFlock, socket,
        socketApi: other(socketApi) });
      const err = await lockedError(acquire(options));
      expect(err.message).toContain(`pid ${child.pid}`);
      // An opener with the other addon set is refused just the same.
      await lockedError(acquire({ ...options, flock: withFlock ? null : flock }));
      await kill(child);
      const lock = await acquire(options);
      expect(lock.held).toBe(true);
      expect(fs.readFileSync(lockPath, 'latin1')).toBe(`${process.pid}\n`);
    });
});

function connectAndWaitClose(address: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ path: address });
    c.on('data', () => reject(new Error('the lock socket sent data')));
    c.on('close', () => resolve(true));
    c.on('error', (err: NodeJS.ErrnoException) => {
      // A reset of a connection closed at once is a close too.
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') resolve(true);
      else reject(err);
    });
  });
}

describe('StoreLock with a socket file (POSIX without abstract sockets)', () => {
  it('replaces the socket file a killed owner left, without waiting', async () => {
    const child = await startHolder({ dir, flock: false, socket: 'file' });
    await kill(child);
    // The kernel closed the socket; its file stays, refusing connections.
    expect(fs.lstatSync(path.join(dir, SOCKET_FILE_NAME)).isSocket()).toBe(true);
    const lock = await acquire({ flock: null, socket: 'file' });
    expect(lock.held).toBe(true);
    expect(fs.lstatSync(path.join(dir, SOCKET_FILE_NAME)).isSocket()).toBe(true);
  });

  it('binds through a short link when the directory path is too long for a socket', async () => {
    const deep = path.join(dir, 'd'.repeat(60), 'e'.repeat(60));
    fs.mkdirSync(deep, { recursive: true });
    const lock = await acquire({ flock: null, socket: 'file' }, deep);
    const link = path.dirname(lock.layers.socket);
    expect(fs.realpathSync(link)).toBe(fs.realpathSync(deep));
    expect(fs.lstatSync(path.join(deep, SOCKET_FILE_NAME)).isSocket()).toBe(true);
    await lockedError(acquire({ flock: null, socket: 'file' }, deep));
    lock.release();
    expect(fs.existsSync(link)).toBe(false);
    expect(fs.existsSync(path.join(deep, SOCKET_FILE_NAME))).toBe(false);
  });
});

describe('StoreLock and the event loop', () => {
  it.each(apis)('does not keep a process alive: a script that locks and returns exits by ' +
    'itself (%s)', async (socketApi) => {
      const child = spawn(process.execPath, [holderScript, JSON.stringify({
        dir, flock: true, socket: 'abstract', socketApi, exit: true,
      })], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(out).toBe('locked\n');
      expect(code).toBe(0);
    });
});
