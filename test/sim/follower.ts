/**
 * The simulator's follower (`follower: true`, `npm run sim -- --follower`): a second store,
 * brokerRole SLAVE, on its own simulated disk and clock, fed by the master through SimNetwork.
 * The master runs SYNC_MASTER in about one seed in three, ASYNC_MASTER in the others (drawn
 * from the seed). Before each step of the simulation the follower may be disturbed, all drawn
 * from a generator of its own (so the master's steps are the same with or without it): its
 * connection held one way or both (a stalled follower) for some steps, reset, the follower
 * killed (kill -9: its page cache stays) or its machine crashed (power lost) and restarted,
 * or closed and restarted cleanly; it resumes from its own offset. FollowerModel checks it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MessageStore } from '../../lib/message-store.js';
import { ManualClock } from '../../lib/store/clock.js';
import type { FlushDiskType } from '../../lib/store/options.js';
import type { SendResult } from '../../lib/broker/port.js';
import type { MessageExt } from '../../lib/broker/message.js';
import { REPLICATION_TRANSPORT, storeInternals } from '../../lib/internal.js';
import type { ReplicationSeams } from '../../lib/replication/transport.js';
import type { Logger } from '../../lib/store/options.js';
import { mulberry32, SimBackend, type CrashMode } from '../support/sim-backend.js';
import { FollowerModel } from './follower-model.js';
import type { Lifetime } from './lifetime.js';
import { int, pick, type Random } from './messages.js';
import type { Oracle } from './oracle.js';
import { ProcessDisk } from './process-disk.js';
import { scanStore } from './store-scan.js';
import { closeQuietly, MAX_TURNS, turns } from './turns.js';
import { Violation } from './violation.js';
import { SimNetwork } from './sim-network.js';

export type MasterRole = 'SYNC_MASTER' | 'ASYNC_MASTER';

export interface FollowerHost {
  readonly oracle: Oracle;
  note(line: string): void;
  count(what: string): void;
  /** The simulated time now. */
  now(): number;
  /** Let time pass on every clock. */
  advance(ms: number): void;
  /** The master's lifetime now (its process may be dead). */
  master(): Lifetime;
  /** The master is open and its reads are right (no fault injected, no bit flipped). */
  masterReadsRight(): boolean;
}

const CRASH_MODES: readonly CrashMode[] =
  ['drop-unflushed', 'random-subset', 'keep-all', 'lose-new-files'];
const MASTER_PORT = 10912;
/** Rounds of (turns, 100 ms) the follower gets to catch up at the end (reconnects wait 5 s). */
const CATCH_UP_ROUNDS = 400;
/** How much a closing master's clock moves a turn. */
const CLOSING_TICK_MS = 50;

export class SimFollower {
  readonly role: MasterRole;
  readonly network: SimNetwork;
  readonly model: FollowerModel;
  private readonly random: Random;
  private readonly sim: SimBackend;
  private readonly base: string;
  /** The follower's directory: a new one each time it must start over empty. */
  private dir: string;
  private generation = 0;
  /** The master refused it: its log ends before the master's first segment. */
  private behind = false;
  private store: MessageStore | null = null;
  private disk: ProcessDisk | null = null;
  private clock: ManualClock | null = null;
  private mode: FlushDiskType = 'SYNC_FLUSH';
  /** Steps left until a held direction is let through again. */
  private heldSteps = 0;

  constructor(seed: number, private readonly host: FollowerHost) {
    this.random = mulberry32((seed ^ 0x2c1b3c6d) >>> 0);
    this.role = this.random() < 1 / 3 ? 'SYNC_MASTER' : 'ASYNC_MASTER';
    this.sim = new SimBackend({ seed: (seed ^ 0x68e31da4) >>> 0 });
    this.base = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-sim-follower-'));
    this.dir = path.join(this.base, 'g0');
    this.model = new FollowerModel(host.oracle);
    this.network = new SimNetwork({
      masterAlive: () => host.master().disk.isAlive,
      followerAlive: () => this.disk?.isAlive ?? false,
    });
  }

  /** The master's options for replication through the simulated network. */
  masterOptions(): { brokerRole: MasterRole; haListenPort: number; logger: Logger } &
    ReplicationSeams {
    return { brokerRole: this.role, haListenPort: MASTER_PORT, logger: this.logger('master'),
      [REPLICATION_TRANSPORT]: this.network };
  }

  get stats(): Record<string, number> {
    const n = this.network.delivered;
    return { ...this.model.stats, followerBytes: n.toFollower, followerAckBytes: n.toMaster };
  }

  /** Open the follower (its first lifetime, or after a crash, kill or close). */
  async open(): Promise<void> {
    this.mode = this.random() < 0.5 ? 'SYNC_FLUSH' : 'ASYNC_FLUSH';
    fs.mkdirSync(this.dir, { recursive: true });
    this.disk = new ProcessDisk(this.sim);
    this.clock = new ManualClock(this.host.now());
    this.store = await MessageStore.open(this.dir, {
      brokerRole: 'SLAVE', haMasterAddress: `127.0.0.1:${MASTER_PORT}`,
      [REPLICATION_TRANSPORT]: this.network,
      haConfigSyncIntervalMs: pick(this.random, [500, 5000]),
      flushDiskType: this.mode, backend: this.disk, clock: this.clock,
      commitLogSegmentSize: 64 * 1024, consumeQueueEntriesPerFile: 32, indexHashSlots: 64,
      indexMaxEntries: 256, flushIntervalMs: pick(this.random, [50, 500]),
      // The follower keeps everything: retention is the master's to check.
      fileReservedTimeHours: 100_000, diskMaxUsedSpaceRatio: 1, diskFullRatio: 1,
      logger: this.logger('follower'),
    } as Parameters<typeof MessageStore.open>[1]);
    this.host.note(`follower open (${this.mode}), log ${this.engine.commitLogMinOffset}..` +
      `${this.engine.commitLogMaxOffset}`);
  }

  private get engine(): ReturnType<typeof storeInternals>['engine'] {
    return storeInternals(this.store!).engine;
  }

  /** What a store says about replication goes to the trace; truncations are counted. */
  private logger(who: string): Logger {
    const seen = (line: string, error = false): void => {
      if (!line.includes('replication') && !error) return;
      if (line.includes('diverged')) this.host.count('follower truncated');
      if (who === 'follower' && line.includes('cannot catch up')) this.behind = true;
      // Without the temporary directories' names: a seed's trace is the same in every run.
      this.host.note(`${who} says: ${line.replace(/^pocketmq: (replication: )?/, '')
        .replace(/\S*pmq-sim-[^/\s']+/g, '<dir>')}`);
    };
    return { debug: () => undefined, info: () => undefined, warn: (line) => seen(line),
      error: (line) => seen(line, true) };
  }

  advance(ms: number): void {
    this.clock?.advance(ms);
  }

  /**
   * A master's store closing: sends in flight wait for the follower's acknowledgement until
   * their deadline (syncFlushTimeoutMs), and the close waits for them, so its clock runs (50 ms
   * a turn) until the close ends. (A killed process's close is the simulator's cleanup: time
   * passing there is seen by nobody.)
   */
  closing(clock: ManualClock, work: Promise<void>): Promise<void> {
    let settled = false;
    const watched = work.finally(() => {
      settled = true;
    });
    void (async () => {
      for (let i = 0; i < MAX_TURNS && !settled; i++) {
        await turns(1);
        if (!settled) clock.advance(CLOSING_TICK_MS);
      }
    })();
    return watched;
  }

  /** A send resolved on a live master. */
  acked(id: number, result: SendResult): void {
    this.model.acked(id, result, this.role);
  }

  /** Before a step of the simulation: maybe disturb the follower. */
  async step(): Promise<void> {
    if (this.behind) await this.startOver();
    if (this.heldSteps > 0 && --this.heldSteps === 0) {
      this.network.hold('toFollower', false);
      this.network.hold('toMaster', false);
      this.host.note('follower: connection flows again');
    }
    const r = this.random();
    if (r < 0.02 && this.heldSteps === 0) {
      this.heldSteps = int(this.random, 1, 40);
      const both = this.random() < 0.5;
      this.network.hold('toFollower', true);
      if (both) this.network.hold('toMaster', true);
      this.host.note(`follower: ${both ? 'stalled' : 'frames to it held'} for ` +
        `${this.heldSteps} steps`);
      this.host.count(both ? 'follower stalled' : 'follower delayed');
    } else if (r < 0.03) {
      this.host.note(`follower: connection reset (${this.network.cut()} open)`);
      this.host.count('follower cut');
    } else if (r < 0.038) {
      await this.restart(pick(this.random, ['crash', 'kill', 'close'] as const));
    } else if (r < 0.1) {
      this.comparePrefix();
    }
  }

  /** The follower's process ends (a power cut, kill -9 or a clean close) and opens again. */
  private async restart(how: 'crash' | 'kill' | 'close'): Promise<void> {
    const engine = this.engine;
    const flushed = engine.commitLogFlushedOffset;
    const end = engine.commitLogMaxOffset;
    let what: string = how;
    if (how === 'close') {
      await this.store!.close();
    } else {
      this.disk!.kill();
      if (how === 'crash') {
        const mode = pick(this.random, CRASH_MODES);
        const tear = this.random() < 0.5;
        this.sim.crash({ mode, tear });
        what = `power cut (${mode}${tear ? ', torn' : ''})`;
        if (this.mode === 'ASYNC_FLUSH') this.model.followerLostPower(flushed);
      }
      await closeQuietly(this.store!.close());
    }
    this.host.note(`follower ${what} at log end ${end} (flushed ${flushed})`);
    this.host.count(`follower ${how}`);
    await turns(2);
    await this.open();
    this.checkStore();
  }

  /**
   * Retention on the master deleted segments this follower never received (it lagged while
   * hours passed), or those where its log parted from the master's (after a master crash): as
   * docs/replication.md says, it starts over on an empty directory. What it held is what
   * retention deleted on the master or what its crash lost: no promise is left for it.
   */
  private async startOver(): Promise<void> {
    this.behind = false;
    await this.store!.close();
    this.dir = path.join(this.base, `g${++this.generation}`);
    this.model.followerStartedOver();
    this.host.note('follower: refused as too far behind, starts over on an empty directory');
    this.host.count('follower started over');
    await this.open();
  }

  /** The follower's store agrees with itself, and holds only what was sent. */
  private checkStore(): void {
    const scan = scanStore(this.store!, this.random);
    for (const ext of scan.records) this.host.oracle.check(ext, 'follower log');
  }

  /** While streaming from a master whose reads are right: its log is a prefix of the master's. */
  private comparePrefix(): void {
    const status = this.status();
    if (status === null || !status.connected || !this.host.masterReadsRight()) return;
    this.model.comparePrefix(this.engine, storeInternals(this.host.master().store).engine,
      false);
  }

  /** Before the master reopens (after a crash, kill or close): the follower holds its promises. */
  async beforeMasterReopens(): Promise<void> {
    await this.model.check(this.store!, 'before the master reopened');
  }

  masterRecovered(records: readonly MessageExt[], logMin: number): void {
    this.model.masterRecovered(records, logMin);
  }

  /** The end: let the follower catch up with the (open, clean) master, and check it all. */
  async finish(): Promise<void> {
    this.heldSteps = 0;
    this.network.hold('toFollower', false);
    this.network.hold('toMaster', false);
    const master = storeInternals(this.host.master().store).engine;
    for (let i = 0; i < CATCH_UP_ROUNDS && !this.caughtUp(master.commitLogMaxOffset); i++) {
      if (this.behind) await this.startOver();
      await turns(3);
      this.host.advance(100);
    }
    if (!this.caughtUp(master.commitLogMaxOffset)) {
      throw new Violation(`the follower did not catch up: its log ends at ` +
        `${this.engine.commitLogMaxOffset}, the master's at ${master.commitLogMaxOffset} ` +
        `(${JSON.stringify(this.status())})`);
    }
    this.host.note(`follower caught up at ${master.commitLogMaxOffset}`);
    this.model.comparePrefix(this.engine, master, true);
    await this.model.check(this.store!, 'at the end');
    this.checkStore();
  }

  private status(): { connected: boolean; offset: number } | null {
    return storeInternals(this.store!).replication!.snapshot().master;
  }

  private caughtUp(end: number): boolean {
    const status = this.status();
    return status !== null && status.connected && this.engine.commitLogMaxOffset === end;
  }

  async close(): Promise<void> {
    if (this.store !== null) {
      this.disk?.kill();
      await closeQuietly(this.store.close());
    }
    fs.rmSync(this.base, { recursive: true, force: true });
  }
}
