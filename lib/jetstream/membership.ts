/**
 * Who is in a consumer group, across processes and machines: RocketMQ's client heartbeats,
 * over core NATS. Each clustering instance publishes on `_PMQ.GROUP.<group>` when it joins
 * (`hello`, answered by every member at once), every `heartbeatIntervalMs` (`alive`), and when
 * it leaves (`bye`); a member not heard from for five intervals is gone. Every instance sees
 * the same members, so each computes the same queue split with the allocation strategy and
 * takes its share.
 *
 * While membership settles (an instance joined or died a moment ago) two instances may read
 * one queue at once. JetStream still hands each message to one of them: nothing is lost or
 * consumed twice by the group, only the order between the two readers is not kept.
 */
import type { Subscription } from '@nats-io/transport-node';
import type { Connection } from './connection.js';

type Op = 'hello' | 'alive' | 'bye';

interface Beat {
  readonly op: Op;
  readonly id: string;
  readonly topics: readonly string[];
}

interface Peer {
  topics: ReadonlySet<string>;
  seenMs: number;
}

/** Heartbeat intervals without word from a member before it counts as gone. */
const MISSED_BEATS = 5;
/** Joining: answers to `hello` are awaited until none came for this long. */
const HELLO_QUIET_MS = 50;
/** Joining: answers to `hello` are awaited at most this long. */
const HELLO_MAX_MS = 500;

export class GroupMembership {
  private readonly peers = new Map<string, Peer>();
  private readonly subject: string;
  private subscription: Subscription | null = null;
  private timer: NodeJS.Timeout | null = null;
  private disconnected = false;
  private readonly onReconnect = (): void => {
    this.disconnected = false;
    const now = Date.now();
    for (const peer of this.peers.values()) peer.seenMs = now;
    this.send('hello');
  };

  private readonly onDisconnect = (): void => {
    this.disconnected = true;
  };

  constructor(private readonly connection: Connection, group: string,
    readonly clientId: string, private readonly topics: () => readonly string[],
    private readonly onChange: () => void) {
    this.subject = `_PMQ.GROUP.${group}`;
  }

  /** Join, and resolve once the members already there have answered. */
  async join(): Promise<void> {
    const nc = this.connection.nc;
    this.subscription = nc.subscribe(this.subject, { callback: (err, msg) => {
      if (err === null) this.receive(msg.data, (beat) => msg.respond(beat));
    } });
    const inbox = nc.subscribe(`_PMQ.HELLO.${this.clientId.replace(/[^A-Za-z0-9_-]/g, '_')}.` +
      `${Math.random().toString(36).slice(2)}`);
    let last = Date.now();
    const started = last;
    (async () => {
      for await (const msg of inbox) {
        this.receive(msg.data);
        last = Date.now();
      }
    })().catch(() => undefined);
    nc.publish(this.subject, this.encode('hello'), { reply: inbox.getSubject() });
    await nc.flush();
    while (Date.now() - last < HELLO_QUIET_MS && Date.now() - started < HELLO_MAX_MS) {
      await new Promise((resolve) => setTimeout(resolve, HELLO_QUIET_MS / 2));
    }
    inbox.unsubscribe();
    this.connection.on('reconnect', this.onReconnect);
    this.connection.on('disconnect', this.onDisconnect);
    this.timer = setInterval(() => this.tick(), this.connection.options.heartbeatIntervalMs);
    this.timer.unref();
  }

  /** The members (this one too) that consume `topic`. */
  clientIds(topic: string): string[] {
    const ids = [this.clientId];
    for (const [id, peer] of this.peers) if (peer.topics.has(topic)) ids.push(id);
    return ids;
  }

  /** Say goodbye, so the others take over this instance's queues at once. */
  async leave(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.connection.off('reconnect', this.onReconnect);
    this.connection.off('disconnect', this.onDisconnect);
    if (this.subscription === null || this.connection.isClosed) return;
    this.send('bye');
    this.subscription.unsubscribe();
    this.subscription = null;
    await this.connection.nc.flush().catch(() => undefined);
  }

  private tick(): void {
    this.send('alive');
    if (this.disconnected) return;
    const oldest = Date.now() - MISSED_BEATS * this.connection.options.heartbeatIntervalMs;
    let changed = false;
    for (const [id, peer] of this.peers) {
      if (peer.seenMs < oldest) {
        this.peers.delete(id);
        this.connection.logger.info(`pocketmq: group member ${id} went silent: rebalancing`);
        changed = true;
      }
    }
    if (changed) this.onChange();
  }

  private encode(op: Op): string {
    const beat: Beat = { op, id: this.clientId, topics: [...this.topics()] };
    return JSON.stringify(beat);
  }

  private send(op: Op): void {
    if (this.connection.isClosed) return;
    try {
      this.connection.nc.publish(this.subject, this.encode(op));
    } catch (err) {
      this.connection.logger.warn(`pocketmq: group heartbeat: ${String(err)}`);
    }
  }

  /** A beat from a member; `answer` replies to a `hello` with this member's `alive`. */
  private receive(data: Uint8Array, answer?: (beat: string) => void): void {
    let beat: Beat;
    try {
      beat = JSON.parse(Buffer.from(data).toString('utf8')) as Beat;
    } catch {
      return;
    }
    if (typeof beat?.id !== 'string' || beat.id === this.clientId || !Array.isArray(beat.topics)) {
      return;
    }
    if (beat.op === 'hello') answer?.(this.encode('alive'));
    if (beat.op === 'bye') {
      if (this.peers.delete(beat.id)) this.onChange();
      return;
    }
    const topics = new Set(beat.topics.filter((t) => typeof t === 'string'));
    const known = this.peers.get(beat.id);
    this.peers.set(beat.id, { topics, seenMs: Date.now() });
    const same = known !== undefined && known.topics.size === topics.size &&
      [...topics].every((t) => known.topics.has(t));
    if (!same) this.onChange();
  }
}
