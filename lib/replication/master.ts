/**
 * The master's replication service (RocketMQ's HAService, master side): listens on
 * `haListenHost:haListenPort` (TCP), takes up to limits.maxReplicationConnections followers,
 * ships each the commit log from its offset (master-connection.ts), and reports the
 * followers' acknowledgements to the store: under SYNC_MASTER appends wait for them
 * (StoreEngine.waitForReplicas).
 *
 * New records wake every streaming connection at the end of the turn that appended them (the
 * store's arrival event), so appends in flight together go out, and are acknowledged, together.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../store/options.js';
import type { ReplicaWaitService } from '../store/flush/replica-wait.js';
import type { StoreEngine } from '../store/store-engine.js';
import { limits } from '../limits.js';
import { PocketMQError } from '../errors.js';
import { MasterConnection } from './master-connection.js';
import { Peer } from './peer.js';
import { encodeRefused } from './protocol.js';
import type { HostPort } from './options.js';
import type { Epoch } from './epochs.js';
import type { ReplicationListener, ReplicationTransport } from './transport.js';

export interface MasterOptions {
  readonly listen: HostPort;
  readonly authToken: string | null;
  /** This master's epochs, its own life's last (epochs.ts). */
  readonly epochs: readonly Epoch[];
  /** SYNC_MASTER: appends wait for a follower, one at most this many bytes behind. */
  readonly sync: { readonly fallbehindMaxBytes: number } | null;
  /** How followers connect (transport.ts). */
  readonly transport: ReplicationTransport;
}

/** One follower as the master sees it. */
export interface FollowerState {
  readonly address: string;
  /** The follower holds the log below this offset. */
  readonly ackOffset: number;
  /** Bytes of the log the follower does not hold yet. */
  readonly lagBytes: number;
  readonly connectedAt: number;
}

/** A master's status as a status client receives it (ReplicationStatus's shape). */
export interface MasterStatus {
  readonly brokerRole: 'SYNC_MASTER' | 'ASYNC_MASTER';
  readonly role: 'master';
  readonly haPort: number;
  readonly minOffset: number;
  readonly maxOffset: number;
  readonly followers: FollowerState[];
  readonly master: null;
}

export class ReplicationMaster {
  private readonly connections = new Set<MasterConnection>();
  private readonly wait: ReplicaWaitService | null;
  private readonly stopArrivals: () => void;
  private wakeScheduled = false;
  private closed = false;

  private listener: ReplicationListener | null = null;

  private constructor(private readonly engine: StoreEngine,
    private readonly options: MasterOptions, private readonly logger: Logger) {
    this.wait = options.sync === null ? null
      : engine.waitForReplicas(options.sync.fallbehindMaxBytes);
    this.stopArrivals = engine.onMessageArrived(() => this.wake());
  }

  /** Listen; resolves once the port is bound (INVALID_OPTION-free: options are checked). */
  static async listen(engine: StoreEngine, options: MasterOptions): Promise<ReplicationMaster> {
    const master = new ReplicationMaster(engine, options, engine.options.logger);
    try {
      master.listener = await options.transport.listen(options.listen,
        (socket, remote) => master.accept(socket, remote));
    } catch (err) {
      master.stopArrivals();
      throw new PocketMQError('IO_ERROR', `cannot listen for followers on ` +
        `${options.listen.host}:${options.listen.port}: ${(err as Error).message}`,
      { cause: err, property: 'haListenPort' });
    }
    master.logger.info(`pocketmq: replication master listening on ` +
      `${options.listen.host}:${master.port}`);
    return master;
  }

  /** The bound port (kept after close, for the last status). */
  get port(): number {
    return this.listener?.port ?? 0;
  }

  private accept(socket: Duplex, remote: string): void {
    if (this.closed || this.connections.size >= limits.maxReplicationConnections) {
      this.logger.warn(`pocketmq: replication: refused ${remote}: ` +
        `${this.closed ? 'closing' : `${this.connections.size} followers already connected`}`);
      // No Peer takes this socket: its errors (a reset by the peer) must not go unheard.
      socket.on('error', () => undefined);
      socket.end(encodeRefused('too many followers'), () => socket.destroy());
      return;
    }
    // A follower sends small frames only (HELLO, ACK, CONFIG_REQUEST, PROBE of 64 records).
    const peer = new Peer(socket, this.engine.options.clock, limits.maxReplicationHelloBytes,
      remote);
    const timer = this.engine.options.clock.setTimeout(() => {
      if (!connection.handshaken && !peer.isClosed) {
        peer.close('no handshake in time');
      }
    }, limits.replicationHandshakeTimeoutMs);
    const connection: MasterConnection = new MasterConnection(peer, {
      engine: this.engine, authToken: this.options.authToken, epochs: this.options.epochs,
      changed: () => this.report(),
      status: () => this.status(),
      removed: (c, reason) => {
        this.engine.options.clock.clearTimeout(timer);
        this.connections.delete(c);
        const level = reason.startsWith('refused') ? 'warn'
          : reason === 'status client answered' ? 'debug' : 'info';
        this.logger[level](`pocketmq: replication: follower ${remote} disconnected: ${reason}`);
        this.report();
      },
    });
    this.connections.add(connection);
  }

  /** New records: every streaming connection ships, once per turn. */
  private wake(): void {
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    queueMicrotask(() => {
      this.wakeScheduled = false;
      for (const c of this.connections) c.pump();
    });
  }

  /** Tell the store how far followers in sync got. */
  private report(): void {
    if (this.wait === null) return;
    let followers = 0;
    let acked = 0;
    for (const c of this.connections) {
      if (!c.streaming) continue;
      followers++;
      acked = Math.max(acked, c.acked);
    }
    this.wait.update(followers, acked);
  }

  followers(): FollowerState[] {
    const end = this.engine.commitLogMaxOffset;
    return [...this.connections].filter((c) => c.streaming).map((c) => ({
      address: c.remote, ackOffset: c.acked, lagBytes: Math.max(0, end - c.acked),
      connectedAt: c.connectedAt }));
  }

  /** What `pocketmq replication status --master` shows. */
  private status(): MasterStatus {
    const e = this.engine;
    return { brokerRole: this.options.sync === null ? 'ASYNC_MASTER' : 'SYNC_MASTER',
      role: 'master', haPort: this.port, minOffset: e.commitLogMinOffset,
      maxOffset: e.commitLogMaxOffset, followers: this.followers(), master: null };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopArrivals();
    for (const c of [...this.connections]) c.peer.close('the master is closing');
    await this.listener?.close();
  }
}
