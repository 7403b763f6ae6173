/**
 * Rebalancing (RocketMQ's RebalanceImpl) for one consumer instance: which queues of its
 * subscribed topics it owns. CLUSTERING splits each topic's queues among the group's live
 * instances with the allocation strategy; BROADCASTING takes every queue. It runs whenever the
 * broker says the group or a subscribed topic changed; runs never overlap, and a change during a
 * run causes one more run after it.
 */
import type { Broker } from '../broker/broker.js';
import type { MessageModel } from '../broker/consumer-manager.js';
import type { AllocateStrategy, MessageQueue } from './allocate.js';
import type { ConsumeFromWhere } from './consumer-options.js';

export interface RebalanceHost {
  readonly broker: Broker;
  readonly group: string;
  clientId(): string;
  readonly messageModel: MessageModel;
  readonly allocate: AllocateStrategy;
  subscribedTopics(): readonly string[];
  /** The instance now owns `mq`. */
  addQueue(mq: MessageQueue): void;
  /** The instance no longer owns `mq`: stop, finish what is in flight, commit. */
  removeQueue(mq: MessageQueue): Promise<void>;
  /** A rebalance failed (reported, the next change retries). */
  onError(err: unknown): void;
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

  /** Stop rebalancing and give up every queue. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.idle();
    await Promise.all([...this.owned.values()].map((mq) => this.release(mq)));
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
    const clientIds = host.broker.consumers.clientIds(host.group);
    for (const topic of host.subscribedTopics()) {
      const queueNums = host.broker.topics.get(topic)?.queueNums ?? 0;
      const queues: MessageQueue[] = [];
      for (let queueId = 0; queueId < queueNums; queueId++) queues.push({ topic, queueId });
      const mine = host.messageModel === 'BROADCASTING' ? queues
        : host.allocate(host.group, host.clientId(), queues, clientIds);
      for (const mq of mine) target.set(queueKey(mq), mq);
    }
    const removed = [...this.owned.entries()].filter(([key]) => !target.has(key));
    await Promise.all(removed.map(([, mq]) => this.release(mq)));
    for (const [key, mq] of target) {
      if (this.owned.has(key) || this.stopped) continue;
      this.owned.set(key, mq);
      host.addQueue(mq);
    }
  }

  private async release(mq: MessageQueue): Promise<void> {
    if (!this.owned.delete(queueKey(mq))) return;
    await this.host.removeQueue(mq);
  }
}

/** Where an instance starts reading a queue its group has no committed offset for. */
export function startOffset(broker: Broker, offsetGroup: string, mq: MessageQueue,
  from: ConsumeFromWhere, timestampMs: number): number {
  const committed = broker.offsets.query(offsetGroup, mq.topic, mq.queueId);
  if (committed >= 0) return committed;
  switch (from) {
    case 'CONSUME_FROM_FIRST_OFFSET':
      return broker.minOffset(mq.topic, mq.queueId);
    case 'CONSUME_FROM_TIMESTAMP':
      return broker.searchOffset(mq.topic, mq.queueId, timestampMs);
    default:
      return broker.maxOffset(mq.topic, mq.queueId);
  }
}
