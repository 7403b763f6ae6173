/**
 * Where a store's owner serves its clients: `<dir>/owner.sock`, a Unix socket file only the
 * directory's user may open (mode 0600), or a named pipe on Windows. A path too long for a
 * socket address (about 104 bytes) is replaced by one in the temp directory, named after the
 * directory's identity so every opener finds the same one.
 *
 * Only the process that holds the store lock listens here, so a socket file found at the path
 * is left over from a killed owner: the new owner removes it and listens again.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ioError } from '../errors.js';
import { dirIdentity } from '../store/lock-socket.js';

export const OWNER_SOCKET_FILE_NAME = 'owner.sock';
/** Longest socket path bound directly: sun_path is 104 bytes on macOS and BSD (NUL included). */
const MAX_SOCKET_PATH_BYTES = 103;

/** The address of `dir`'s owner socket (the same for every path that reaches the directory). */
export function ownerSocketAddress(dir: string): string {
  const { dev, ino } = dirIdentity(dir);
  if (process.platform === 'win32') return `\\\\.\\pipe\\pocketmq-owner-${dev}-${ino}`;
  const inDir = path.join(fs.realpathSync(dir), OWNER_SOCKET_FILE_NAME);
  if (Buffer.byteLength(inDir) <= MAX_SOCKET_PATH_BYTES) return inDir;
  const name = createHash('sha256').update(`${dev}:${ino}`).digest('hex').slice(0, 24);
  return path.join(os.tmpdir(), `pocketmq-${name}.sock`);
}

/** Listen on the owner socket (unref'd: it never keeps the process alive by itself). */
export async function listenOwner(address: string,
  onConnection: (socket: net.Socket) => void): Promise<net.Server> {
  if (process.platform !== 'win32') {
    try {
      fs.unlinkSync(address); // left by a killed owner: we hold the lock, so it is stale
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw ioError(err, 'cannot remove the stale owner socket', address);
      }
    }
  }
  const server = net.createServer(onConnection);
  // Created owner-only, so no other user can connect between listen and chmod (a worker
  // thread cannot set the umask: there the chmod alone closes it, a moment later).
  let umask: number | null = null;
  if (process.platform !== 'win32') {
    try {
      umask = process.umask(0o177);
    } catch {
      umask = null;
    }
  }
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: address, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
      // The socket file is made synchronously by listen: the umask can go back at once.
      if (umask !== null) process.umask(umask);
      umask = null;
    });
  } catch (err) {
    throw ioError(err, 'cannot listen on the owner socket', address);
  } finally {
    if (umask !== null) process.umask(umask);
  }
  if (process.platform !== 'win32') fs.chmodSync(address, 0o600);
  server.unref();
  return server;
}

/** Stop listening and remove the socket file. */
export async function closeOwner(server: net.Server, address: string): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (process.platform !== 'win32') {
    try {
      fs.unlinkSync(address);
    } catch {
      // Gone already.
    }
  }
}

/** Connect to the owner socket; rejects when nobody listens there. */
export function connectOwner(address: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: address });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}
