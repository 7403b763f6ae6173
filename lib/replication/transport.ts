/**
 * How a master and its followers reach each other: TCP (net.createServer, net.connect) unless a
 * store is opened with another transport under the internal option REPLICATION_TRANSPORT (the
 * simulator passes an in-memory one whose delivery it steps itself). Either way the two ends
 * see duplex byte streams; framing, tokens and limits are the same (peer.ts, protocol.ts).
 */
import type * as Net from 'node:net';
import type { Duplex } from 'node:stream';
import { lazyBuiltin } from '../builtins.js';
import { PocketMQError } from '../errors.js';
import type { HostPort } from './options.js';

/** Loaded by the first listen or connect: a store that does not replicate never loads it. */
const net = lazyBuiltin<typeof Net>('node:net');

/** A master's bound listener. */
export interface ReplicationListener {
  /** The bound port (the one asked for, or the one picked for port 0). */
  readonly port: number;
  /** Stop accepting connections; the ones accepted are closed by their owners. */
  close(): Promise<void>;
}

/** Connections between a master and its followers. */
export interface ReplicationTransport {
  /**
   * Listen at `at`; each connection goes to `accept` with the peer's address (for logs).
   * Rejects with the system's error when it cannot listen.
   */
  listen(at: HostPort, accept: (socket: Duplex, remote: string) => void):
    Promise<ReplicationListener>;
  /** A connection to `master`; a failure to connect comes as the stream's 'error'. */
  connect(master: HostPort): Duplex;
}

/**
 * The internal open option (`pocketmq/internal`) that replaces TCP for one store:
 * `MessageStore.open(dir, { brokerRole, ..., [REPLICATION_TRANSPORT]: transport })`.
 */
export const REPLICATION_TRANSPORT: unique symbol =
  Symbol.for('pocketmq.replicationTransport') as never;

/** The internal open options (not part of MessageStoreOptions). */
export interface ReplicationSeams {
  readonly [REPLICATION_TRANSPORT]?: ReplicationTransport | undefined;
}

/** The transport an options object names, if any (checked for shape), else TCP. */
export function transportOf(options: object): ReplicationTransport {
  const t = (options as ReplicationSeams)[REPLICATION_TRANSPORT];
  if (t === undefined) return tcpTransport;
  if (typeof t?.listen !== 'function' || typeof t.connect !== 'function') {
    throw new PocketMQError('INVALID_OPTION', 'the replication transport needs listen() and ' +
      'connect()', { property: 'replicationTransport' });
  }
  return t;
}

/** TCP, Nagle off; sockets and the server do not keep the process alive. */
export const tcpTransport: ReplicationTransport = Object.freeze({
  async listen(at: HostPort, accept: (socket: Duplex, remote: string) => void):
    Promise<ReplicationListener> {
    const server = net().createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(at.port, at.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.unref();
    server.on('connection', (socket) => {
      socket.unref();
      accept(socket, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`);
    });
    return {
      port: (server.address() as Net.AddressInfo).port,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  },
  connect(master: HostPort): Duplex {
    const socket = net().connect({ host: master.host, port: master.port, noDelay: true });
    socket.unref();
    return socket;
  },
});
