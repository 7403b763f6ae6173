/**
 * The master's side of one follower's connection (RocketMQ's HAConnection): the handshake
 * (token, segment size, where the follower's log ends and whether it is a prefix of ours), the
 * divergence probes, then shipping the commit log from the follower's offset in DATA frames of
 * whole records, and the follower's acknowledgements.
 *
 * States: hello -> streaming, or hello -> cut (the master epochs of both tell where the logs
 * part: the follower cuts its log there and connects again), or hello -> probing (no epoch in
 * common, older data: the follower searches the last record both logs hold, cuts its log there
 * and connects again). Anything out of turn closes the connection;
 * nothing a follower sends reaches the log but offsets it asks about, each checked.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { limits } from '../limits.js';
import type { StoreEngine } from '../store/store-engine.js';
import type { Peer } from './peer.js';
import {
  decodeAck, decodeHello, decodeProbe, decodeStatusRequest, encodeConfig, encodeData,
  encodeProbeResult, encodeRefused, encodeStatus, encodeWelcome, FrameType, MAX_CONFIG_BYTES,
  Outcome, protocolError, type ConfigFile, type Frame, type Hello,
} from './protocol.js';
import { CONFIG_FILE_NAMES } from './config-files.js';
import { epochCut, type Epoch } from './epochs.js';

export interface MasterConnectionHost {
  readonly engine: StoreEngine;
  readonly authToken: string | null;
  /** This master's epochs (epochs.ts). */
  readonly epochs: readonly Epoch[];
  /** The acknowledged offsets or the set of streaming followers changed. */
  changed(): void;
  /** What a status client is told (`pocketmq replication status --master`). */
  status(): unknown;
  /** This connection ended. */
  removed(connection: MasterConnection, reason: string): void;
}

type State = 'hello' | 'probing' | 'cut' | 'streaming' | 'refused';

export class MasterConnection {
  private state: State = 'hello';
  /** The next commit-log offset to ship. */
  private next = 0;
  /** The follower holds the log below this. */
  acked = 0;
  readonly connectedAt: number;
  private pumping = false;

  constructor(readonly peer: Peer, private readonly host: MasterConnectionHost) {
    // The store's clock, not the wall's: a status written from it replays with its seed.
    this.connectedAt = host.engine.options.clock.now();
    peer.onDrain = () => this.pump();
    peer.start({
      handle: (frame) => this.handle(frame),
      heartbeat: () => this.heartbeat(),
      closed: (reason) => host.removed(this, reason),
    });
  }

  /** Past the HELLO (streaming, probing, or refused). */
  get handshaken(): boolean {
    return this.state !== 'hello';
  }

  get streaming(): boolean {
    return this.state === 'streaming' && !this.peer.isClosed;
  }

  get remote(): string {
    return this.peer.remote;
  }

  private handle(frame: Frame): void {
    if (this.state === 'hello') {
      if (frame.type === FrameType.STATUS_REQUEST) {
        this.answerStatus(decodeStatusRequest(frame.payload));
        return;
      }
      if (frame.type !== FrameType.HELLO) throw protocolError('expected HELLO');
      this.hello(decodeHello(frame.payload));
      return;
    }
    if (this.state === 'probing' && frame.type === FrameType.PROBE) {
      const replica = this.host.engine.replica;
      let matched = 0;
      for (const id of decodeProbe(frame.payload)) {
        if (!replica.frameMatches(id)) break;
        matched++;
      }
      this.peer.send(encodeProbeResult(matched));
      return;
    }
    if (this.state === 'streaming' && frame.type === FrameType.ACK) {
      const offset = decodeAck(frame.payload);
      if (offset > this.host.engine.commitLogMaxOffset) {
        throw protocolError(`ACK of offset ${offset}, past the end of this log`);
      }
      if (offset > this.acked) {
        this.acked = offset;
        this.host.changed();
      }
      return;
    }
    if (this.state === 'streaming' && frame.type === FrameType.CONFIG_REQUEST) {
      this.peer.send(encodeConfig(this.readConfig()));
      return;
    }
    throw protocolError(`frame type ${frame.type} out of turn`);
  }

  private hello(hello: Hello): void {
    const { engine } = this.host;
    if (!tokenMatches(this.host.authToken, hello.token)) {
      this.refuse(`authentication failed: ${hello.token === '' ? 'no' : 'a wrong'} token`);
      return;
    }
    const segmentSize = engine.options.commitLogSegmentSize;
    if (hello.segmentSize !== segmentSize) {
      this.refuse(`the follower's commitLogSegmentSize is ${hello.segmentSize}; the master's ` +
        `is ${segmentSize}: they must be equal`);
      return;
    }
    const tail = engine.replica.tail();
    const empty = hello.last === null && hello.maxOffset === hello.minOffset;
    if (!empty && hello.maxOffset < tail.minOffset) {
      this.refuse(`the follower's log ends at ${hello.maxOffset}, but the master's starts at ` +
        `${tail.minOffset}: the follower cannot catch up; start it on an empty directory`);
      return;
    }
    const welcome = { masterMin: tail.minOffset, masterMax: tail.maxOffset };
    // Where the epochs say the logs part (null: no epoch in common, older data).
    const cut = empty ? null
      : epochCut(hello.epochs ?? [], hello.maxOffset, this.host.epochs, tail.maxOffset);
    if (cut !== null && cut < hello.maxOffset) {
      if (cut < tail.minOffset) {
        this.refuse(`the follower's log parts from the master's at ${cut}, below the master's ` +
          `first offset ${tail.minOffset}: the follower cannot catch up; start it on an empty ` +
          'directory');
        return;
      }
      this.state = 'cut';
      this.peer.send(encodeWelcome({ outcome: Outcome.CUT, ...welcome, start: cut }));
      return;
    }
    // A follower whose log ends where this one starts (retention deleted the segments it
    // holds) continues here: there is no record left to compare, nor any it should cut. Else
    // its last record must be this log's too, even when the epochs agree (two stores that
    // began apart may number their first epochs alike): when not, the probe searches.
    const atStart = hello.maxOffset === tail.minOffset;
    if (!empty && !atStart && (hello.last === null ||
      !engine.replica.tailMatches(hello.last, hello.maxOffset))) {
      this.state = 'probing';
      this.peer.send(encodeWelcome({ outcome: Outcome.PROBE, ...welcome, start: 0 }));
      return;
    }
    this.next = empty ? tail.minOffset : hello.maxOffset;
    this.acked = this.next;
    this.state = 'streaming';
    this.peer.send(encodeWelcome({ outcome: Outcome.STREAM, ...welcome, start: this.next,
      epochs: this.host.epochs }));
    this.host.changed();
    this.pump();
  }

  /** A status client: answer (its token checked as a follower's) and close. */
  private answerStatus(token: string): void {
    if (!tokenMatches(this.host.authToken, token)) {
      this.refuse(`authentication failed: ${token === '' ? 'no' : 'a wrong'} token`);
      return;
    }
    this.state = 'refused';
    this.peer.send(encodeStatus(this.host.status()));
    this.peer.closeAfterSend('status client answered');
  }

  private refuse(reason: string): void {
    this.state = 'refused';
    this.peer.send(encodeRefused(reason));
    this.peer.closeAfterSend(`refused: ${reason}`);
  }

  /** Ship what the follower lacks, while its socket takes more. */
  pump(): void {
    if (!this.streaming || this.pumping) return;
    this.pumping = true;
    try {
      const replica = this.host.engine.replica;
      while (this.peer.sendBuffered < limits.replicationSendBufferBytes && !this.peer.isClosed) {
        const chunk = replica.readChunk(this.next, limits.replicationBatchBytes);
        if (chunk.frames.length === 0) break;
        this.peer.send(...encodeData(this.next, this.host.engine.commitLogMaxOffset,
          chunk.frames));
        this.next = chunk.next;
      }
    } catch (err) {
      this.peer.close(`shipping failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.pumping = false;
    }
  }

  private heartbeat(): void {
    if (this.state !== 'streaming') return;
    this.peer.send(...encodeData(this.next, this.host.engine.commitLogMaxOffset,
      Buffer.alloc(0)));
  }

  /** The config files a follower copies, as they are on disk now. */
  private readConfig(): ConfigFile[] {
    const { engine } = this.host;
    const files: ConfigFile[] = [];
    for (const name of CONFIG_FILE_NAMES) {
      const bytes = engine.backend.readFile(path.join(engine.dir, 'config', name));
      if (bytes !== null && bytes.length <= MAX_CONFIG_BYTES) files.push({ name, bytes });
    }
    return files;
  }
}

/** No token set: anyone on the listening address; else the same token (constant time). */
function tokenMatches(expected: string | null, given: string): boolean {
  if (expected === null) return true;
  const a = crypto.createHash('sha256').update(expected).digest();
  const b = crypto.createHash('sha256').update(given).digest();
  return crypto.timingSafeEqual(a, b) && given !== '';
}
