/**
 * Replication for one store (docs/replication.md): the master's listener or the follower's
 * client, the status file, and promotion. MessageStore starts it after the engine opens and
 * before the store is handed out; it depends on lib/store only, and reaches the broker through
 * the two hooks it is given.
 */
import { PocketMQError } from '../errors.js';
import type { StoreEngine } from '../store/store-engine.js';
import { ReplicationFollower, type FollowerState } from './follower.js';
import { ReplicationMaster, type FollowerState as MasterFollowerState } from './master.js';
import type { BrokerRole, ResolvedReplicationOptions } from './options.js';
import { readPromoted, StatusWriter, writePromoted } from './state.js';
import { beginEpoch, readEpochs, writeEpochs, type Epoch } from './epochs.js';
import { tcpTransport, type ReplicationTransport } from './transport.js';

export interface ReplicationHooks {
  /** Check and apply a config file copied from the master (the follower's broker). */
  applyConfig(name: string, bytes: Buffer): void | Promise<void>;
  /** The follower was promoted: the broker starts writing (scheduled deliveries). */
  promoted(): void | Promise<void>;
  /** How master and followers connect (the simulator's in-memory one). @default TCP */
  transport?: ReplicationTransport | undefined;
}

/** Where replication stands (`store.replicationStatus()`, `pocketmq replication`). */
export interface ReplicationStatus {
  /** The configured role; a promoted SLAVE reports ASYNC_MASTER. */
  readonly brokerRole: BrokerRole;
  /** 'slave' while following, else 'master'. */
  readonly role: 'master' | 'slave';
  readonly haPort: number | null;
  readonly minOffset: number;
  readonly maxOffset: number;
  /** A master's followers. */
  readonly followers: MasterFollowerState[];
  /** A follower's master. */
  readonly master: FollowerState | null;
}

export class Replication {
  private master: ReplicationMaster | null = null;
  private follower: ReplicationFollower | null = null;
  private role: BrokerRole;
  private readonly status: StatusWriter;
  private closed = false;

  private constructor(private readonly engine: StoreEngine,
    private readonly options: ResolvedReplicationOptions, private readonly hooks:
    ReplicationHooks) {
    this.role = options.role!;
    const o = engine.options;
    this.status = new StatusWriter(engine.backend, engine.dir, o.clock, o.logger,
      () => ({ ...this.snapshot() }));
  }

  /**
   * Start replicating: a SLAVE follows (appends throw NOT_MASTER from now on) unless the
   * directory was promoted; a master listens. Resolves once a master's port is bound.
   */
  static async start(engine: StoreEngine, options: ResolvedReplicationOptions,
    hooks: ReplicationHooks): Promise<Replication> {
    const r = new Replication(engine, options, hooks);
    if (r.role === 'SLAVE' && readPromoted(engine.backend, engine.dir) !== null) {
      engine.options.logger.warn(`pocketmq: ${engine.dir} was promoted from a follower: it ` +
        'opens as a master (ASYNC_MASTER), not following ' +
        `${options.master!.host}:${options.master!.port}; remove ` +
        'replication/promoted.json in it to follow again');
      r.role = 'ASYNC_MASTER';
    }
    // Checked on every open: a damaged epoch file is CORRUPT_DATA, whatever the role.
    const epochs = readEpochs(engine.backend, engine.dir);
    if (r.role === 'SLAVE') {
      engine.follow(true);
      r.follower = new ReplicationFollower(engine, { master: options.master!,
        authToken: options.authToken, configSyncIntervalMs: options.configSyncIntervalMs,
        applyConfig: (name, bytes) => hooks.applyConfig(name, bytes), transport: r.transport,
        epochs });
      r.follower.start();
    } else {
      const mine = await r.beginEpoch(epochs);
      if (options.listen !== null) {
        r.master = await ReplicationMaster.listen(engine, { listen: options.listen,
          authToken: options.authToken, transport: r.transport, epochs: mine,
          sync: r.role === 'SYNC_MASTER' ? { fallbehindMaxBytes: options.fallbehindMaxBytes }
            : null });
      }
    }
    r.status.start();
    return r;
  }

  /** A new master life: its epoch is durable before its first append (epochs.ts). */
  private async beginEpoch(epochs: readonly Epoch[]): Promise<Epoch[]> {
    const e = this.engine;
    const list = beginEpoch(epochs, e.commitLogMaxOffset, e.commitLogMinOffset);
    await writeEpochs(e.backend, e.dir, list, true);
    e.options.logger.debug(`pocketmq: replication: master epoch ${list.at(-1)!.epoch} starts ` +
      `at offset ${e.commitLogMaxOffset}`);
    return list;
  }

  private get transport(): ReplicationTransport {
    return this.hooks.transport ?? tcpTransport;
  }

  get isFollowing(): boolean {
    return this.follower !== null;
  }

  get haPort(): number | null {
    return this.master?.port ?? null;
  }

  snapshot(): ReplicationStatus {
    const e = this.engine;
    return { brokerRole: this.role, role: this.follower === null ? 'master' : 'slave',
      haPort: this.haPort, minOffset: e.commitLogMinOffset, maxOffset: e.commitLogMaxOffset,
      followers: this.master?.followers() ?? [], master: this.follower?.status() ?? null };
  }

  /**
   * Stop following and take writes (ASYNC_MASTER semantics: sends resolve SEND_OK; a follower
   * may connect when `haListenPort` was given). The promotion is recorded in the directory, so
   * a reopen with brokerRole SLAVE does not follow the old master again.
   */
  async promote(): Promise<void> {
    const follower = this.follower;
    if (follower === null || this.closed) {
      throw new PocketMQError('INVALID_STATE', this.closed ? 'the store is closed'
        : 'promote() is for a follower (brokerRole SLAVE); this store is a master');
    }
    await follower.stop();
    this.follower = null;
    const e = this.engine;
    const epochs = await this.beginEpoch(readEpochs(e.backend, e.dir));
    writePromoted(e.backend, e.dir, { promotedAt: e.options.clock.now(),
      offset: e.commitLogMaxOffset });
    e.follow(false);
    this.role = 'ASYNC_MASTER';
    e.options.logger.warn(`pocketmq: ${e.dir} promoted: it takes writes from offset ` +
      `${e.commitLogMaxOffset}`);
    await this.hooks.promoted();
    if (this.options.listen !== null) {
      this.master = await ReplicationMaster.listen(e, { listen: this.options.listen,
        authToken: this.options.authToken, transport: this.transport, epochs, sync: null });
    }
  }

  /** Stop replicating (before the engine closes): no frame is being applied after it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.follower?.stop(), this.master?.close()]);
    await this.status.stop();
  }
}
