/**
 * Rebalancing (RocketMQ's RebalanceImpl) for one consumer instance: which queues of its
 * subscribed topics it owns. CLUSTERING splits each topic's queues among the group's live
 * instances with the allocation strategy; BROADCASTING takes every queue. It runs whenever the
 * broker says the group or a subscribed topic changed; runs never overlap, and a change during a
 * run causes one more run after it. A run that changes what the instance owns (and the stop that
 * gives everything up) publishes on `pocketmq:rebalance` and says so through the debug log.
 */
import { channel } from 'node:diagnostics_channel';
import { channels, type RebalanceMessage } from '../channels.js';
import type { BrokerPort, Logger, MessageModel, MessageQueue } from '../broker/port.js';
import type { AllocateStrategy } from './allocate.js';
import type { ConsumeFromWhere } from './consumer-options.js';

const rebalanceChannel = channel(channels.rebalance);

export interface RebalanceHost {
  readonly port: BrokerPort;
  readonly group: string;
  clientId(): string;
  readonly messageModel: MessageModel;
  readonly allocate: AllocateStrategy;
  subscribedTopics(): readonly string[];
  /** The instance now owns `mq` (resolves once it knows where to read from). */
  addQueue(mq: MessageQueue): Promise<void>;
  /** The instance no longer owns `mq`: stop, finish what is in flight, commit. */
  removeQueue(mq: MessageQueue): Promise<void>;
  /** A rebalance failed (reported, the next change retries). */
  onError(err: unknown): void;
  /** Told (debug) what each run changed. */
  readonly logger?: Logger | undefined;
}

export function queueKey(mq: MessageQueue): string {
  return `${mq.topic}\u0000${mq.queueId}`;
}

export class Rebalancer {
  /** Owned queues by queueKey. */
  readonly owned = new Map<string, MessageQueue>();
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(private readonly host: RebalanceHost) {}

  /** Recompute ownership soon (coalesced). */
  trigger(): void {
    if (this.stopped) return;
    this.again = true;
    if (this.running !== null) return;
    // A trigger that lands after the loop's last check but before this callback would find
    // `running` still set and be lost: the callback looks at `again` once more.
    this.running = this.loop().finally(() => {
      this.running = null;
      if (this.again) this.trigger();
    });
  }

  /** Resolves when no run is in progress or queued. */
  async idle(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  /** Forget every owned queue without releasing it (the broker behind changed); returns them. */
  forget(): MessageQueue[] {
    const owned = [...this.owned.values()];
    this.owned.clear();
    return owned;
  }

  /** Stop rebalancing and give up every queue. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.idle();
    const removed = [...this.owned.values()];
    await Promise.all(removed.map((mq) => this.release(mq)));
    this.changed([], removed);
  }

  private async loop(): Promise<void> {
    while (this.again && !this.stopped) {
      this.again = false;
      // Let the change that triggered the run settle (a burst of starts runs once).
      await Promise.resolve();
      if (this.stopped) return;
      try {
        await this.runOnce();
      } catch (err) {
        this.host.onError(err);
      }
    }
  }

  private async runOnce(): Promise<void> {
    const target = new Map<string, MessageQueue>();
    const host = this.host;
    const clientIds = await host.port.clientIds(host.group);
    for (const topic of host.subscribedTopics()) {
      const queueNums = (await host.port.topic(topic))?.queueNums ?? 0;
      const queues: MessageQueue[] = [];
      for (let queueId = 0; queueId < queueNums; queueId++) queues.push({ topic, queueId });
      const mine = host.messageModel === 'BROADCASTING' ? queues
        : host.allocate(host.group, host.clientId(), queues, clientIds);
      for (const mq of mine) target.set(queueKey(mq), mq);
    }
    const removed = [...this.owned.entries()].filter(([key]) => !target.has(key))
      .map(([, mq]) => mq);
    await Promise.all(removed.map((mq) => this.release(mq)));
    const added: MessageQueue[] = [];
    for (const [key, mq] of target) {
      if (this.owned.has(key) || this.stopped) continue;
      this.owned.set(key, mq);
      added.push(mq);
    }
    await Promise.all(added.map((mq) => host.addQueue(mq)));
    this.changed(added, removed);
  }

  /** Report a change of ownership: channel subscribers and the debug log. */
  private changed(added: readonly MessageQueue[], removed: readonly MessageQueue[]): void {
    if (added.length === 0 && removed.length === 0) return;
    const host = this.host;
    if (host.logger !== undefined) {
      host.logger.debug(`pocketmq: rebalance ${host.group}/${host.clientId()}: ` +
        `+${added.length} -${removed.length} queues, owns ${this.owned.size}`);
    }
    if (!rebalanceChannel.hasSubscribers) return;
    const message: RebalanceMessage = { group: host.group, clientId: host.clientId(),
      messageModel: host.messageModel, added: added.map(copyQueue),
      removed: removed.map(copyQueue), owned: [...this.owned.values()].map(copyQueue) };
    rebalanceChannel.publish(message);
  }

  private async release(mq: MessageQueue): Promise<void> {
    if (!this.owned.delete(queueKey(mq))) return;
    await this.host.removeQueue(mq);
  }
}

function copyQueue(mq: MessageQueue): MessageQueue {
  return { topic: mq.topic, queueId: mq.queueId };
}

/** Where an instance starts reading a queue: the committed offset, else `from`. */
export async function startOffset(port: BrokerPort, offsetGroup: string, mq: MessageQueue,
  from: ConsumeFromWhere, timestampMs: number): Promise<number> {
  const committed = await port.queryOffset(offsetGroup, mq);
  if (committed >= 0) return committed;
  switch (from) {
    case 'CONSUME_FROM_FIRST_OFFSET':
      return port.minOffset(mq);
    case 'CONSUME_FROM_TIMESTAMP':
      return port.searchOffset(mq, timestampMs);
    default:
      return port.maxOffset(mq);
  }
}
