/**
 * The socket half of the store lock (lock.ts says why a socket): bind a listening socket whose
 * address is derived from the data directory's identity, or learn that someone holds it.
 *
 * Addresses, by `SocketKind`:
 * - 'abstract' (Linux): `\0pocketmq:<st_dev>:<st_ino>` in the abstract namespace. No file: the
 *   name lives in the kernel until the socket closes, and the kernel closes it when the process
 *   dies, however it dies. Every path to the directory (symlinks, bind mounts) has the same
 *   st_dev and st_ino, so every opener computes the same name.
 * - 'file' (other POSIX systems): `<dir>/lock.sock`. The file outlives a killed owner; the next
 *   opener finds it taken (EADDRINUSE), connects, and a refused connection (ECONNREFUSED: no
 *   socket listens on that file) proves it stale, so the opener removes it and binds again.
 *   Serialised by the caller's flock when it holds one; see `bindFile` for the one window left
 *   without it. sun_path holds about 104 bytes: a longer path is bound through a short symlink
 *   to the directory, kept in the temp directory while the lock is held.
 * - 'pipe' (Windows): `\\.\pipe\pocketmq-<dev>-<ino>`, a named pipe: the first instance is
 *   exclusive (libuv creates it with FILE_FLAG_FIRST_PIPE_INSTANCE) and dies with the process.
 *
 * Binding is exclusive across processes and across the worker threads of one process.
 *
 * How it listens (`SocketApi`): on POSIX through Node's pipe binding, the handle net.Server
 * itself listens with (`process.binding('pipe_wrap')`), since the socket only excludes and
 * never carries a byte: net.Server would load node:net, node:stream and node:cluster, 3 ms of a
 * short-lived process on a slow machine and about a third of what an open costs there. Both
 * bind the same address the same way, so openers of either kind exclude each other. net.Server
 * where the binding is missing or refused (Node's permission model) or would warn
 * (`--pending-deprecation`, which makes every `process.binding` call print a deprecation
 * warning), on Windows, and when asked for (tests);
 * `exclusive: true` keeps a cluster worker from sharing the primary's handle.
 */
import type * as Crypto from 'node:crypto';
import fs from 'node:fs';
import type * as Net from 'node:net';
import type * as Os from 'node:os';
import path from 'node:path';
import { getSystemErrorMap } from 'node:util';
import { lazyBuiltin } from '../builtins.js';
import { ioError } from '../errors.js';

/**
 * node:crypto and node:os, only to name a short link in the temp directory (a rare case): every
 * other open goes without them. node:net only where the pipe binding is missing (below) and to
 * probe a socket file left behind.
 */
const crypto = lazyBuiltin<typeof Crypto>('node:crypto');
const os = lazyBuiltin<typeof Os>('node:os');
const net = lazyBuiltin<typeof Net>('node:net');

export type SocketKind = 'abstract' | 'file' | 'pipe';

/** What listens: Node's pipe binding or net.Server (see the module's comment). */
export type SocketApi = 'binding' | 'net';

/** The 'file' kind's socket, in the data directory. */
export const SOCKET_FILE_NAME = 'lock.sock';
/** Prefix of every lock socket name, so a listing of sockets says whose it is. */
const NAME_PREFIX = 'pocketmq';
/** Longest socket path bound directly: sun_path is 104 bytes on macOS and BSD (NUL included). */
const MAX_SOCKET_PATH_BYTES = 103;
/** 'file' kind: how often a stale socket file is replaced before giving up. */
const STALE_REPLACE_ATTEMPTS = 3;
/** Pending connections the lock socket queues (each is closed at once). */
const BACKLOG = 16;

/** A directory's identity: the same for every path that reaches it. */
export interface DirIdentity {
  readonly dev: bigint;
  readonly ino: bigint;
}

export function dirIdentity(dir: string): DirIdentity {
  try {
    const st = fs.statSync(dir, { bigint: true });
    return { dev: st.dev, ino: st.ino };
  } catch (err) {
    throw ioError(err, 'cannot stat the store directory', dir);
  }
}

export function platformSocketKind(platform: NodeJS.Platform = process.platform): SocketKind {
  if (platform === 'linux' || platform === 'android') return 'abstract';
  return platform === 'win32' ? 'pipe' : 'file';
}

/** A listening socket, from either API. */
interface Listener {
  close(): void;
}

/** A bound lock socket. */
export interface BoundSocket {
  readonly listener: Listener;
  /** What was bound ('abstract': starts with NUL). */
  readonly address: string;
  /** 'file' kind through a short symlink: the symlink, removed once the server closed. */
  readonly viaLink: string | null;
}

/**
 * Bind the lock socket of `dir` (a realpath) or resolve null when a live owner holds it.
 * `serialised`: the caller holds the flock, so no other flock holder replaces a stale file at
 * the same time.
 */
export async function bindLockSocket(kind: SocketKind, dir: string, id: DirIdentity,
  serialised: boolean, api: SocketApi = defaultApi(kind)): Promise<BoundSocket | null> {
  if (kind === 'abstract') {
    const address = `\0${NAME_PREFIX}:${id.dev}:${id.ino}`;
    const listener = await listenOrNull(address, api);
    return listener === null ? null : { listener, address, viaLink: null };
  }
  if (kind === 'pipe') {
    const address = `\\\\.\\pipe\\${NAME_PREFIX}-${id.dev}-${id.ino}`;
    const listener = await listenOrNull(address, api);
    return listener === null ? null : { listener, address, viaLink: null };
  }
  return bindFile(dir, serialised, api);
}

/** Close the server; a 'file' socket's file goes with it (libuv unlinks what it bound). */
export function closeLockSocket(bound: BoundSocket): void {
  bound.listener.close();
  if (bound.viaLink !== null) fs.rmSync(bound.viaLink, { force: true });
}

/**
 * 'file' kind. A stale file (its owner was killed) is removed and bound again. Between our
 * refused connect and our unlink, another opener may already have replaced the stale file
 * with its own live socket, which we would then unlink: two owners. Every opener that holds the
 * flock on `<dir>/lock` does this under it, so two flock holders never race here; the window
 * stays open only for openers without flock (fs-ext missing, or a worker thread) that find a
 * killed owner's file at the same instant. Linux uses abstract sockets and never gets here.
 */
async function bindFile(dir: string, serialised: boolean, api: SocketApi):
  Promise<BoundSocket | null> {
  const viaLink = Buffer.byteLength(path.join(dir, SOCKET_FILE_NAME)) > MAX_SOCKET_PATH_BYTES
    ? shortLink(dir) : null;
  const address = path.join(viaLink ?? dir, SOCKET_FILE_NAME);
  try {
    for (let attempt = 0; attempt < STALE_REPLACE_ATTEMPTS; attempt++) {
      const listener = await listenOrNull(address, api);
      if (listener !== null) {
        fs.chmodSync(address, 0o600);
        return { listener, address, viaLink };
      }
      if (await isLive(address)) break;
      removeStale(address);
      // Without the flock a second attempt could only widen the window described above.
      if (!serialised && attempt > 0) break;
    }
  } catch (err) {
    if (viaLink !== null) fs.rmSync(viaLink, { force: true });
    throw err;
  }
  if (viaLink !== null) fs.rmSync(viaLink, { force: true });
  return null;
}

/** A short path to `dir`: a symlink in the temp directory, named at random. */
function shortLink(dir: string): string {
  const name = `${NAME_PREFIX}-${crypto().randomBytes(6).toString('hex')}`;
  const link = path.join(os().tmpdir(), name);
  try {
    fs.symlinkSync(dir, link, 'dir');
  } catch (err) {
    throw ioError(err, 'cannot make a short path to the store directory for its lock socket',
      link);
  }
  return link;
}

function removeStale(address: string): void {
  try {
    fs.unlinkSync(address);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') {
      throw ioError(err, 'cannot remove a stale lock socket', address);
    }
  }
}

/** Listen on `address`, or null when it is taken (EADDRINUSE). */
async function listenOrNull(address: string, api: SocketApi): Promise<Listener | null> {
  const binding = api === 'binding' ? pipeBinding() : null;
  return binding === null ? listenWithNet(address) : listenWithBinding(binding, address);
}

/** The part of Node's pipe binding used here (what net.Server calls under `listen`). */
interface PipeHandle {
  bind(name: string): number;
  listen(backlog: number): number;
  close(): void;
  unref(): void;
  onconnection: ((status: number, client?: { close(): void }) => void) | null;
}

interface PipeBinding {
  readonly Pipe: new (type: number) => PipeHandle;
  readonly constants: { readonly SERVER: number };
}

let binding: PipeBinding | null | undefined;

/** Node's pipe binding, or null where it is missing or would print a deprecation warning. */
function pipeBinding(): PipeBinding | null {
  if (binding !== undefined) return binding;
  binding = null;
  if (pendingDeprecation()) return binding;
  try {
    const b = (process as unknown as { binding(name: string): Partial<PipeBinding> })
      .binding('pipe_wrap');
    if (typeof b.Pipe === 'function' && typeof b.constants?.SERVER === 'number') {
      binding = b as PipeBinding;
    }
  } catch {
    // Not in this Node: net.Server.
  }
  return binding;
}

/** Node's `--pending-deprecation`, as Node itself reads it (flag, NODE_OPTIONS, environment). */
function pendingDeprecation(): boolean {
  return process.execArgv.includes('--pending-deprecation') ||
    (process.env['NODE_OPTIONS'] ?? '').includes('--pending-deprecation') ||
    process.env['NODE_PENDING_DEPRECATION'] === '1';
}

/** POSIX goes through the binding; Windows' named pipes through net.Server. */
function defaultApi(kind: SocketKind): SocketApi {
  return kind === 'pipe' ? 'net' : 'binding';
}

function listenWithBinding(b: PipeBinding, address: string): Listener | null {
  const handle = new b.Pipe(b.constants.SERVER);
  let status = handle.bind(address);
  const syscall = status === 0 ? 'listen' : 'bind';
  if (status === 0) status = handle.listen(BACKLOG);
  if (status !== 0) {
    handle.close();
    const [code, message] = getSystemErrorMap().get(status) ?? [`errno ${status}`, 'unknown'];
    if (code === 'EADDRINUSE') return null;
    const err = Object.assign(new Error(`${syscall} ${code}: ${message}`),
      { code, errno: status, syscall });
    throw ioError(err, 'cannot bind the store lock socket', printable(address));
  }
  // The socket only excludes: a connection is closed at once. A failed accept (EMFILE) is
  // dropped the same way and the lock stays held.
  handle.onconnection = (_status, client) => client?.close();
  // The lock never keeps the process alive by itself.
  handle.unref();
  return { close: () => handle.close() };
}

function listenWithNet(address: string): Promise<Listener | null> {
  return new Promise((resolve, reject) => {
    const server = net().createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
    // The lock never keeps the process alive by itself.
    server.unref();
    server.once('error', (err) => {
      if (errnoCode(err) === 'EADDRINUSE') resolve(null);
      else reject(ioError(err, 'cannot bind the store lock socket', printable(address)));
    });
    server.listen({ path: address, exclusive: true, backlog: BACKLOG }, () => {
      server.removeAllListeners('error');
      // A failed accept (EMFILE) must not crash the application: the lock stays held.
      server.on('error', () => undefined);
      resolve(server);
    });
  });
}

/** Does a process listen on the socket file? A refused or vanished one is stale. */
function isLive(address: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net().connect({ path: address });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (err) => {
      socket.destroy();
      const code = errnoCode(err);
      if (code === 'ECONNREFUSED' || code === 'ENOENT') resolve(false);
      // A full backlog (EAGAIN) means someone listens.
      else if (code === 'EAGAIN') resolve(true);
      else reject(ioError(err, 'cannot reach the store lock socket', address));
    });
  });
}

/** An abstract address with its NUL shown as '@', as ss(8) and /proc/net/unix show it. */
export function printable(address: string): string {
  return address.startsWith('\0') ? `@${address.slice(1)}` : address;
}

export function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
