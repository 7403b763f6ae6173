/**
 * The follower's replication client (RocketMQ's HAClient): connects to its master, says where
 * its log ends (HELLO), then appends what the master ships at the same offsets (ReplicaLog
 * checks every frame first), acknowledges, and copies the master's config files on connect and
 * every `haConfigSyncIntervalMs`. It reconnects by itself, with a growing delay.
 *
 * It copies the master's epochs (epochs.ts) as it replicates, each durable before the first
 * record of its epoch, and sends its own in the HELLO: from them the master tells where the
 * logs part (it lost a tail this follower holds, after a crash), and the follower cuts its log
 * there and connects again. When they share no epoch (older data), the follower searches the
 * last record both hold with PROBE rounds (each narrows the range by up to
 * limits.replicationProbeCandidates), cuts its log there, logs how much it dropped, and
 * connects again. When the logs part below the master's first offset, it refuses itself.
 */
import { limits } from '../limits.js';
import { checksum32 } from '../store/checksum.js';
import type { StoreEngine } from '../store/store-engine.js';
import type { FrameId } from '../store/replica-log.js';
import type { TimerHandle } from '../store/clock.js';
import { CONFIG_FILE_NAMES } from './config-files.js';
import type { HostPort } from './options.js';
import type { ReplicationTransport } from './transport.js';
import { Peer } from './peer.js';
import {
  decodeConfig, decodeData, decodeProbeResult, decodeRefused, decodeWelcome, encodeAck,
  encodeFrame, encodeHello, encodeProbe, FrameType, Outcome, protocolError, type Frame,
  type Welcome,
} from './protocol.js';
import { writeEpochs, type Epoch } from './epochs.js';

export interface FollowerOptions {
  readonly master: HostPort;
  readonly authToken: string | null;
  readonly configSyncIntervalMs: number;
  /** Apply a copied config file (the broker checks and loads it). */
  readonly applyConfig: (name: string, bytes: Buffer) => void | Promise<void>;
  /** How the connection is opened (transport.ts). */
  readonly transport: ReplicationTransport;
  /** This store's epochs as loaded (epochs.ts). */
  readonly epochs: readonly Epoch[];
}

/** Where a follower stands. */
export interface FollowerState {
  readonly masterAddress: string;
  readonly connected: boolean;
  /** The end of this follower's log. */
  readonly offset: number;
  /** The end of the master's log when it last said (null: not heard from yet). */
  readonly masterOffset: number | null;
}

interface Probe {
  /** Where the search starts: this log's start, or the master's when later (retention). */
  readonly floor: number;
  after: number;
  before: number;
  best: FrameId | null;
  sent: FrameId[];
}

type State = 'hello' | 'probing' | 'streaming';

export class ReplicationFollower {
  private peer: Peer | null = null;
  private state: State = 'hello';
  private stopped = false;
  private reconnectMs: number = limits.replicationReconnectMinMs;
  private reconnectTimer: TimerHandle | null = null;
  private configTimer: TimerHandle | null = null;
  private masterMax: number | null = null;
  private ackDue = false;
  private probe: Probe | null = null;
  /** Checksums of the config files last applied, by name. */
  private readonly applied = new Map<string, number>();
  private failures = 0;
  /** This store's epochs, as in its file. */
  private epochs: Epoch[];
  /** The master's epochs on this connection (copied as records of each arrive). */
  private masterEpochs: readonly Epoch[] = [];

  constructor(private readonly engine: StoreEngine, private readonly options: FollowerOptions) {
    this.epochs = [...options.epochs];
  }

  private get address(): string {
    const { host, port } = this.options.master;
    return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  }

  private get logger(): StoreEngine['options']['logger'] {
    return this.engine.options.logger;
  }

  start(): void {
    this.connect();
  }

  status(): FollowerState {
    return { masterAddress: this.address, connected: this.state === 'streaming' &&
      this.peer !== null && !this.peer.isClosed, offset: this.engine.commitLogMaxOffset,
    masterOffset: this.masterMax };
  }

  /** Stop following: no reconnect; resolves once no frame is being applied. */
  async stop(): Promise<void> {
    this.stopped = true;
    const clock = this.engine.options.clock;
    if (this.reconnectTimer !== null) clock.clearTimeout(this.reconnectTimer);
    if (this.configTimer !== null) clock.clearTimeout(this.configTimer);
    const peer = this.peer;
    if (peer !== null) {
      peer.close('the follower stopped');
      await peer.whenIdle();
    }
  }

  private connect(): void {
    this.reconnectTimer = null;
    if (this.stopped) return;
    const socket = this.options.transport.connect(this.options.master);
    const peer = new Peer(socket, this.engine.options.clock, limits.maxReplicationFrameBytes,
      this.address);
    this.peer = peer;
    this.state = 'hello';
    this.probe = null;
    this.ackDue = false;
    peer.start({
      handle: (frame) => this.handle(frame),
      heartbeat: () => {
        if (this.state === 'streaming') peer.send(encodeAck(this.engine.commitLogMaxOffset));
      },
      drained: () => this.acknowledge(),
      closed: (reason) => this.closed(peer, reason),
    });
    const tail = this.engine.replica.tail();
    peer.send(encodeHello({ segmentSize: this.engine.options.commitLogSegmentSize,
      minOffset: tail.minOffset, maxOffset: tail.maxOffset, last: tail.lastRecord,
      token: this.options.authToken ?? '',
      // An epoch past the end (its records lost in a power cut) holds nothing of this log.
      epochs: this.epochs.filter((e) => e.start <= tail.maxOffset) }));
  }

  private closed(peer: Peer, reason: string): void {
    if (this.peer !== peer) return;
    if (this.configTimer !== null) this.engine.options.clock.clearTimeout(this.configTimer);
    this.configTimer = null;
    const was = this.state;
    this.state = 'hello';
    if (this.stopped) return;
    this.failures++;
    const line = `pocketmq: replication: connection to master ${this.address} ended: ${reason}`;
    if (reason.startsWith('refused')) this.logger.error(line);
    else if (was === 'streaming' || this.failures === 1) this.logger.warn(line);
    else this.logger.debug(line);
    const delay = this.reconnectMs;
    this.reconnectMs = Math.min(limits.replicationReconnectMaxMs,
      Math.max(limits.replicationReconnectMinMs, delay * 2));
    this.reconnectTimer = this.engine.options.clock.setTimeout(() => {
      this.reconnectTimer = null;
      // A frame of the ended connection may still be being applied (a cut waiting for its
      // flush when the connection timed out): the next connection starts once it ended, never
      // beside it, or its appends would land inside the cut, which then zeroes them.
      void peer.whenIdle().then(() => this.connect());
    }, delay);
  }

  private handle(frame: Frame): void | Promise<void> {
    if (frame.type === FrameType.REFUSED) {
      throw new Error(`refused: ${decodeRefused(frame.payload)}`);
    }
    if (this.state === 'hello' && frame.type === FrameType.WELCOME) {
      return this.welcome(decodeWelcome(frame.payload));
    }
    if (this.state === 'probing' && frame.type === FrameType.PROBE_RESULT) {
      return this.probed(decodeProbeResult(frame.payload));
    }
    if (this.state === 'streaming' && frame.type === FrameType.DATA) {
      const data = decodeData(frame.payload);
      this.masterMax = data.masterMax;
      if (data.frames.length === 0) return undefined;
      this.ackDue = true;
      return this.appendData(data.offset, data.frames);
    }
    if (this.state === 'streaming' && frame.type === FrameType.CONFIG) {
      return this.applyConfig(frame);
    }
    throw protocolError(`frame type ${frame.type} out of turn`);
  }

  /** The master's epochs of these records first (durable), then the records. */
  private async appendData(offset: number, frames: Buffer): Promise<void> {
    const end = offset + frames.length;
    const last = this.epochs.at(-1)?.start ?? -1;
    const add = this.masterEpochs.filter((e) => e.start > last && e.start < end);
    if (add.length > 0) await this.saveEpochs([...this.epochs, ...add]);
    await this.engine.replica.append(offset, frames);
  }

  private async saveEpochs(list: Epoch[]): Promise<void> {
    const e = this.engine;
    const kept = list.slice(Math.max(0, list.length - limits.maxReplicationEpochs));
    await writeEpochs(e.backend, e.dir, kept);
    this.epochs = kept;
  }

  private async welcome(w: Welcome): Promise<void> {
    this.masterMax = w.masterMax;
    if (w.outcome === Outcome.CUT) return this.cutAt(w.start);
    if (w.outcome === Outcome.PROBE) {
      const tail = this.engine.replica.tail();
      // Below the master's first offset there is nothing to compare: the search starts there
      // (and a follower holding records below it that finds none in common refuses itself).
      const floor = Math.max(tail.minOffset, Math.min(w.masterMin, tail.maxOffset));
      this.state = 'probing';
      this.probe = { floor, after: floor - 1, before: tail.maxOffset + 1, best: null,
        sent: [] };
      return this.sendProbe();
    }
    const engine = this.engine;
    const end = engine.commitLogMaxOffset;
    if (w.start !== end) {
      if (end !== engine.commitLogMinOffset) {
        throw protocolError(`the master ships from ${w.start}, but this log ends at ${end}`);
      }
      await engine.replica.restartAt(w.start);
      this.logger.info(`pocketmq: replication: this empty log now starts at ${w.start}, ` +
        `where the master's does`);
    }
    await this.adoptEpochs(w.start, w.epochs ?? []);
    this.state = 'streaming';
    this.reconnectMs = limits.replicationReconnectMinMs;
    this.failures = 0;
    this.logger.info(`pocketmq: replication: following ${this.address} from offset ` +
      `${w.start} (the master is at ${w.masterMax})`);
    this.requestConfig();
  }

  /**
   * Streaming from `start`: this log below it is the master's, and so are the master's epochs
   * of it; the master's later epochs are copied as their records arrive (appendData).
   */
  private async adoptEpochs(start: number, master: readonly Epoch[]): Promise<void> {
    this.masterEpochs = master;
    const below = master.filter((e) => e.start < start);
    const mine = this.epochs;
    if (below.length === mine.length &&
      below.every((e, i) => e.epoch === mine[i]!.epoch && e.start === mine[i]!.start)) return;
    await this.saveEpochs(below);
  }

  private requestConfig(): void {
    const clock = this.engine.options.clock;
    if (this.state !== 'streaming' || this.peer === null) return;
    this.peer.send(encodeFrame(FrameType.CONFIG_REQUEST));
    this.configTimer = clock.setTimeout(() => this.requestConfig(),
      this.options.configSyncIntervalMs);
  }

  private async applyConfig(frame: Frame): Promise<void> {
    for (const file of decodeConfig(frame.payload)) {
      if (!CONFIG_FILE_NAMES.includes(file.name)) {
        throw protocolError(`CONFIG names ${JSON.stringify(file.name)}, not a copied file`);
      }
      const sum = checksum32(file.bytes, 0, file.bytes.length);
      if (this.applied.get(file.name) === sum) continue;
      try {
        await this.options.applyConfig(file.name, Buffer.from(file.bytes));
        this.applied.set(file.name, sum);
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        this.logger.warn(`pocketmq: replication: the master's ${file.name} was not applied: ` +
          why);
      }
    }
  }

  /** After a run of frames: acknowledge what the log holds now (durable first, SYNC_FLUSH). */
  private async acknowledge(): Promise<void> {
    if (!this.ackDue || this.state !== 'streaming') return;
    this.ackDue = false;
    if (this.engine.options.flushDiskType === 'SYNC_FLUSH') await this.engine.flushed();
    this.peer?.send(encodeAck(this.engine.commitLogMaxOffset));
  }

  private sendProbe(): void | Promise<void> {
    const probe = this.probe!;
    probe.sent = this.engine.replica.candidates(probe.after, probe.before,
      limits.replicationProbeCandidates);
    if (probe.sent.length === 0) return this.truncate(probe);
    this.peer!.send(encodeProbe(probe.sent));
    return undefined;
  }

  private probed(matched: number): void | Promise<void> {
    const probe = this.probe!;
    if (matched > probe.sent.length) throw protocolError('PROBE_RESULT past the probe');
    if (matched > 0) {
      probe.best = probe.sent[matched - 1]!;
      probe.after = probe.best.offset;
    }
    if (matched < probe.sent.length) probe.before = probe.sent[matched]!.offset;
    return this.sendProbe();
  }

  /**
   * Cut the log after the last record both hold, then connect again at once. When none of its
   * records from the master's first offset on is on both and it holds records below that offset,
   * it cannot continue: the logs part below what the master holds (retention deleted those
   * segments after the master's crash), where nothing can be compared, and the master's records
   * would not continue its queues. It refuses itself then, cutting nothing, as a master refuses
   * a follower that is too far behind.
   */
  private async truncate(probe: Probe): Promise<void> {
    const engine = this.engine;
    const end = engine.commitLogMaxOffset;
    if (probe.best === null && probe.floor > engine.commitLogMinOffset) {
      throw new Error(`refused: no record of this follower's log (${engine.commitLogMinOffset} ` +
        `to ${end}) from offset ${probe.floor} on is in the master's log, which starts there: ` +
        'the logs part below it; the follower cannot catch up; start it on an empty directory');
    }
    return this.cutAt(probe.best === null ? probe.floor : probe.best.offset + probe.best.size);
  }

  /** Cut the log at `at` (where the logs part), and its epochs from there; connect again. */
  private async cutAt(at: number): Promise<void> {
    const engine = this.engine;
    const end = engine.commitLogMaxOffset;
    if (at >= end || at < engine.commitLogMinOffset) {
      throw protocolError(`a cut at ${at} of a log from ${engine.commitLogMinOffset} to ${end}`);
    }
    const { removedBytes } = await engine.replica.truncateTo(at);
    if (this.epochs.some((e) => e.start >= at)) {
      await this.saveEpochs(this.epochs.filter((e) => e.start < at));
    }
    this.logger.warn(`pocketmq: replication: this follower's log diverged from the master's ` +
      `(the master lost a tail it had shipped): truncated it to offset ${at}, dropping ` +
      `${removedBytes} bytes (offsets ${at} to ${end})`);
    this.reconnectMs = 0;
    this.failures = 0;
    this.peer?.close('log truncated to the master\'s; connecting again');
  }
}
