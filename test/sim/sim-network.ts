/**
 * The simulator's network between a master and its follower: an in-memory replication
 * transport (lib/replication/transport.ts) that delivers only on event-loop turns, and only what
 * the simulation lets through, so a seed replays the same deliveries step for step.
 *
 * Each connection is two ends (Duplex streams) and a queue per direction. A write waits in its
 * queue (its callback too: the sender's `writableLength` grows, as with a full TCP buffer) until
 * a delivery turn moves it to the other end. A direction can be held (a stalled follower: the
 * master's frames wait, and so do its acknowledgements); `cut()` resets every connection; a
 * connection whose process died (`alive` says) is reset at its next delivery, its queued bytes
 * lost, as a power cut loses a machine's socket buffers. With no master listening, a connect
 * fails ECONNREFUSED on the next turn.
 */
import { Duplex } from 'node:stream';
import type {
  ReplicationListener, ReplicationTransport,
} from '../../lib/replication/transport.js';
import type { HostPort } from '../../lib/replication/options.js';

export type Direction = 'toFollower' | 'toMaster';

const realSetImmediate = globalThis.setImmediate;

interface Chunk {
  /** null: the sender ended its side (FIN after its data). */
  readonly bytes: Buffer | null;
  readonly done: () => void;
}

class SimEnd extends Duplex {
  constructor(private readonly link: SimLink, readonly direction: Direction) {
    super({ allowHalfOpen: false });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (e?: Error | null) => void):
    void {
    this.link.enqueue(this.direction, { bytes: chunk, done: () => done() });
  }

  override _final(done: (e?: Error | null) => void): void {
    this.link.enqueue(this.direction, { bytes: null, done: () => undefined });
    done();
  }

  override _read(): void {
    // Bytes are pushed by delivery turns.
  }

  override _destroy(err: Error | null, done: (e?: Error | null) => void): void {
    this.link.reset(null);
    done(err);
  }
}

class SimLink {
  readonly master: SimEnd;
  readonly follower: SimEnd;
  private readonly queues: Record<Direction, Chunk[]> = { toFollower: [], toMaster: [] };
  private broken = false;

  constructor(private readonly net: SimNetwork) {
    // The master's end writes toward the follower; the follower's end toward the master.
    this.master = new SimEnd(this, 'toFollower');
    this.follower = new SimEnd(this, 'toMaster');
  }

  get isBroken(): boolean {
    return this.broken;
  }

  queuedBytes(direction: Direction): number {
    return this.queues[direction].reduce((n, c) => n + (c.bytes?.length ?? 0), 0);
  }

  enqueue(direction: Direction, chunk: Chunk): void {
    if (this.broken) return;
    this.queues[direction].push(chunk);
    this.net.schedule();
  }

  /** Move what waits in `direction` to its receiving end (false: the link broke). */
  deliver(direction: Direction): void {
    const queue = this.queues[direction];
    const to = direction === 'toFollower' ? this.follower : this.master;
    while (queue.length > 0 && !this.broken) {
      const chunk = queue.shift()!;
      if (chunk.bytes === null) to.push(null);
      else to.push(chunk.bytes);
      chunk.done();
    }
  }

  /** Both ends close (with `err` as a reset; null: the other side closed). */
  reset(err: Error | null): void {
    if (this.broken) return;
    this.broken = true;
    this.queues.toFollower = [];
    this.queues.toMaster = [];
    this.net.forget(this);
    for (const end of [this.master, this.follower]) {
      if (!end.destroyed) end.destroy(err ?? undefined);
    }
  }
}

export interface SimNetworkOptions {
  /** Whether the master's and the follower's processes are alive. */
  readonly masterAlive: () => boolean;
  readonly followerAlive: () => boolean;
}

export class SimNetwork implements ReplicationTransport {
  private listening: { port: number; accept: (socket: Duplex, remote: string) => void } | null =
    null;
  private readonly links = new Set<SimLink>();
  private readonly held: Record<Direction, boolean> = { toFollower: false, toMaster: false };
  private scheduled = false;
  private connections = 0;
  /** Bytes delivered, by direction (stats). */
  readonly delivered: Record<Direction, number> = { toFollower: 0, toMaster: 0 };

  constructor(private readonly options: SimNetworkOptions) {}

  listen(at: HostPort, accept: (socket: Duplex, remote: string) => void):
    Promise<ReplicationListener> {
    const entry = { port: at.port === 0 ? 10912 : at.port, accept };
    this.listening = entry;
    return Promise.resolve({ port: entry.port, close: async () => {
      if (this.listening === entry) this.listening = null;
    } });
  }

  connect(master: HostPort): Duplex {
    const listener = this.listening;
    if (listener === null || listener.port !== master.port || !this.options.masterAlive()) {
      const end = new Duplex({ read: () => undefined, write: (_c, _e, done) => done() });
      realSetImmediate(() => end.destroy(Object.assign(new Error(
        `connect ECONNREFUSED ${master.host}:${master.port} (simulated)`),
      { code: 'ECONNREFUSED' })));
      return end;
    }
    const link = new SimLink(this);
    this.links.add(link);
    listener.accept(link.master, `sim-follower:${++this.connections}`);
    return link.follower;
  }

  /** Hold (or let through) what goes in `direction`. */
  hold(direction: Direction, held: boolean): void {
    this.held[direction] = held;
    if (!held) this.schedule();
  }

  isHeld(direction: Direction): boolean {
    return this.held[direction];
  }

  get connected(): number {
    return this.links.size;
  }

  /** Reset every connection (a network failure): both sides see an error. */
  cut(): number {
    const n = this.links.size;
    for (const link of [...this.links]) {
      link.reset(Object.assign(new Error('read ECONNRESET (simulated)'), { code: 'ECONNRESET' }));
    }
    return n;
  }

  /** Deliver on the next turn what is not held. */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    realSetImmediate(() => {
      this.scheduled = false;
      this.deliver();
    });
  }

  forget(link: SimLink): void {
    this.links.delete(link);
  }

  private deliver(): void {
    const alive = this.options.masterAlive() && this.options.followerAlive();
    for (const link of [...this.links]) {
      if (!alive) {
        link.reset(Object.assign(new Error('connection reset: the peer process died ' +
          '(simulated)'), { code: 'ECONNRESET' }));
        continue;
      }
      for (const direction of ['toFollower', 'toMaster'] as const) {
        if (this.held[direction] || link.isBroken) continue;
        this.delivered[direction] += link.queuedBytes(direction);
        link.deliver(direction);
      }
    }
  }
}
