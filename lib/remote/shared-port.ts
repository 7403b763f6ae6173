/**
 * The port a store opened with `multiProcess: true` hands its producers and consumers: the
 * local broker while this process owns the directory, the owner's (remote-port.ts) while it is a
 * client, and the switch between them when the owner goes away.
 *
 * Hand-over: when the connection to the owner closes, every client tries to become the owner
 * (only one gets the directory's lock; it recovers the store and serves it), and the others
 * connect to the new owner. Calls in flight meanwhile reject with OWNER_UNAVAILABLE, which is
 * retriable (a producer's own retries ride over the gap). Group members joined through this
 * port join the new broker again and start over from the persisted offsets (`reset`).
 */
import type { BrokerInfo, BrokerPort, GroupMember, ProducerMember } from '../broker/port.js';
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import type { Clock } from '../store/clock.js';
import type { Logger } from '../store/options.js';
import { unavailable } from './connection.js';
import { RemotePort } from './remote-port.js';

/** This process as the owner: its broker's port, and how to stop owning. */
export interface OwnerHandle {
  readonly port: BrokerPort;
  close(): Promise<void>;
}

export interface SharedPortOptions {
  /** The owner socket (owner-socket.ts). */
  readonly address: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Open the store as its owner and serve it; null when another process holds it. */
  readonly becomeOwner: () => Promise<OwnerHandle | null>;
  /** Told when this process's role changes (a client took over). */
  readonly onRole?: (role: 'owner' | 'client') => void;
}

/** Pause between attempts to own or reach the owner while the directory changes hands. */
const RETRY_PAUSE_MS = 20;

// Every method of the port goes to the current broker: the class declares the ones it handles
// itself, and the loops at the end of this file define the others on its prototype.
/* eslint-disable @typescript-eslint/no-unsafe-declaration-merging,
  @typescript-eslint/no-empty-object-type */
export interface SharedPort extends BrokerPort {}

export class SharedPort {
  /* eslint-enable @typescript-eslint/no-unsafe-declaration-merging,
    @typescript-eslint/no-empty-object-type */
  private current!: BrokerPort;
  private owner: OwnerHandle | null = null;
  private remote: RemotePort | null = null;
  private readonly members = new Map<GroupMember, string>();
  private readonly producers = new Map<ProducerMember, string>();
  private closed = false;
  private switching: Promise<void> | null = null;

  private constructor(private readonly options: SharedPortOptions) {}

  /** Own the directory, or reach its owner; rejects if neither works in time. */
  static async open(options: SharedPortOptions): Promise<SharedPort> {
    const port = new SharedPort(options);
    await port.attach();
    return port;
  }

  get role(): 'owner' | 'client' {
    return this.owner !== null ? 'owner' : 'client';
  }

  get info(): BrokerInfo {
    return this.current.info;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  checkOpen(): void {
    if (this.closed) throw new PocketMQError('STORE_CLOSED', 'the store is closed');
    // While the store changes hands, calls wait for the new broker instead.
    if (this.switching === null) this.current.checkOpen();
  }

  async join(member: GroupMember): Promise<string> {
    const clientId = await this.current.join(member);
    this.members.set(member, clientId);
    return clientId;
  }

  async registerProducer(producer: ProducerMember): Promise<string> {
    const producerId = await this.current.registerProducer(producer);
    this.producers.set(producer, producerId);
    return producerId;
  }

  unregisterProducer(group: string, producerId: string): Promise<void> | void {
    for (const [p, id] of this.producers) {
      if (p.group === group && id === producerId) this.producers.delete(p);
    }
    return this.current.unregisterProducer(group, producerId);
  }

  leave(group: string, clientId: string): Promise<void> | void {
    for (const [member, id] of this.members) {
      if (member.group === group && id === clientId) this.members.delete(member);
    }
    return this.current.leave(group, clientId);
  }

  /** Stop owning (clients take over), or leave the owner. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.switching?.catch(() => undefined);
    this.remote?.close();
    await this.owner?.close();
  }

  /** Own the directory, or connect to its owner, retrying while it changes hands. */
  private async attach(): Promise<void> {
    const deadline = Date.now() + limits.connectTimeoutMs;
    let last: unknown = null;
    while (!this.closed) {
      const owner = await this.options.becomeOwner();
      if (owner !== null) {
        this.owner = owner;
        this.remote = null;
        this.current = owner.port;
        return;
      }
      try {
        this.remote = await RemotePort.connect(this.options.address, this.options.clock,
          this.options.logger, () => this.lost());
        this.current = this.remote;
        return;
      } catch (err) {
        last = err;
        if (err instanceof PocketMQError && err.code === 'PROTOCOL_ERROR') throw err;
      }
      if (Date.now() > deadline) {
        throw unavailable(`cannot own the store nor reach its owner: ${String(last)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
    }
    throw new PocketMQError('STORE_CLOSED', 'the store is closed');
  }

  /** The owner went away: take over or reconnect, then bring the members along. */
  private lost(): void {
    if (this.closed || this.switching !== null) return;
    this.switching = this.takeOver().catch((err: unknown) => {
      this.options.logger.error(`pocketmq: could not take over the store: ${String(err)}`);
    }).finally(() => {
      this.switching = null;
    });
  }

  private async takeOver(): Promise<void> {
    for (;;) {
      try {
        await this.attach();
        break;
      } catch (err) {
        if (this.closed) return;
        this.options.logger.warn(`pocketmq: the store's owner is still unavailable: ` +
          String(err));
      }
    }
    if (this.closed) return;
    this.options.onRole?.(this.role);
    this.options.logger.info(`pocketmq: the store changed hands; this process is now ` +
      `${this.role === 'owner' ? 'its owner' : 'a client of the new owner'}`);
    for (const producer of [...this.producers.keys()]) {
      this.producers.set(producer, await this.current.registerProducer(producer));
    }
    for (const [member, clientId] of [...this.members]) {
      const again = await this.current.join({ ...member, topics: () => member.topics(),
        onChange: () => member.onChange(), flushOffsets: () => member.flushOffsets(),
        redeliver: (mq, m) => member.redeliver(mq, m),
        deadLettered: (mq, m) => member.deadLettered(mq, m), preferredClientId: clientId });
      this.members.set(member, again);
      member.reset?.(again);
    }
  }
}

/**
 * The port's methods that go to the current broker. While the store changes hands, a call
 * waits for the new broker (those already in flight when the owner went away reject with
 * OWNER_UNAVAILABLE: nobody knows whether they were done). Calls that answer nothing are
 * dropped then: their state goes with the old broker.
 */
const DELEGATED = ['topicForSend', 'topic', 'topics', 'createTopic', 'send', 'sendBatch',
  'clientIds', 'lockQueue', 'fetch', 'waitForMessage', 'minOffset', 'maxOffset',
  'searchOffset', 'queryOffset', 'persistOffsets', 'sendBack', 'deadLetter', 'cancelScheduled',
  'viewMessage', 'queryMessage', 'queryTrace', 'consumerProgress', 'browse', 'stats',
  'resetConsumerOffset', 'resendDeadLetters', 'sendHalf', 'endTransaction'] as const;
const FIRE_AND_FORGET = ['unlockQueue', 'commitOffset', 'cancelRedeliveries',
  'reportConsumed'] as const;

type Switchable = { current: BrokerPort; switching: Promise<void> | null };

for (const name of DELEGATED) {
  Object.defineProperty(SharedPort.prototype, name, {
    value(this: Switchable, ...args: unknown[]): unknown {
      const call = (): unknown =>
        (this.current[name] as (...a: unknown[]) => unknown).apply(this.current, args);
      return this.switching === null ? call() : this.switching.then(call);
    },
    writable: true, configurable: true,
  });
}
for (const name of FIRE_AND_FORGET) {
  Object.defineProperty(SharedPort.prototype, name, {
    value(this: Switchable, ...args: unknown[]): void {
      if (this.switching !== null) return;
      (this.current[name] as (...a: unknown[]) => unknown).apply(this.current, args);
    },
    writable: true, configurable: true,
  });
}
