/**
 * What JetStream push and pull consumers share, as in the embedded store: subscriptions (topic
 * -> MessageSelector, checked at `subscribe`), the instance's client id, the queues it owns
 * (CLUSTERING: its share by the group's allocation strategy among the members it hears from;
 * BROADCASTING: every queue), one durable consumer per queue, and how errors reach the
 * application (`onError`, the `'error'` event, else one process warning).
 *
 * Durable consumer names: `<group>-q<queueId>` for a clustering group (on the topic's stream),
 * `<group>-BC-<instance>-q<queueId>` for a broadcasting instance. A broadcasting instance with
 * its own `instanceName` resumes where it left off after a restart; one with the default name
 * gets durables of its own, which the servers remove once it is gone a while.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import {
  MessageSelector, PocketMQError, pushConsumerDefaults, type ConsumerErrorContext, type MessageExt,
  type MessageModel, type MessageQueue,
} from '../index.js';
import type { Connection, DurableSpec, StartPolicy } from './connection.js';
import { GroupMembership } from './membership.js';
import type { ResolvedConsumerOptions } from './options.js';
import { checkTopic } from './public-gaps.js';

export type ConsumerState = 'created' | 'running' | 'stopping' | 'stopped';

/** Subscriptions one consumer takes at most (as the embedded store). */
const MAX_SUBSCRIPTIONS = 1024;
/** Broadcasting durables of instances with the default name: removed after this idle time. */
const ANONYMOUS_DURABLE_IDLE_MS = 3_600_000;

export function queueKey(mq: MessageQueue): string {
  return `${mq.topic}\u0000${mq.queueId}`;
}

export abstract class JetStreamConsumerBase extends EventEmitter {
  protected state: ConsumerState = 'created';
  protected readonly subscriptions = new Map<string, MessageSelector>();
  readonly clientId: string;
  private membership: GroupMembership | null = null;
  private readonly owned = new Map<string, MessageQueue>();
  /** Topics with no stream when the instance started: their queues are read from the start. */
  private readonly bornLater = new Set<string>();
  private firstRun = true;
  private rebalancePending = false;
  private rebalancing: Promise<void> | null = null;
  private warned = false;
  private readonly broadcastKey: string;
  private readonly anonymous: boolean;
  private readonly knownTopics = new Set<string>();
  private ticker: NodeJS.Timeout | null = null;

  constructor(protected readonly connection: Connection,
    protected readonly options: ResolvedConsumerOptions,
    private readonly onShutdown: (consumer: JetStreamConsumerBase) => void) {
    super();
    const unique = randomBytes(4).toString('hex');
    this.clientId = `${options.instanceName}@${hostname()}-${process.pid}-${unique}`;
    this.anonymous = options.instanceName === pushConsumerDefaults.instanceName;
    const name = this.anonymous ? unique : options.instanceName;
    const digest = createHash('sha256').update(name).digest('hex').slice(0, 8);
    this.broadcastKey = `${name.replace(/[^A-Za-z0-9_-]/g, '_')}-${digest}`;
  }

  get group(): string {
    return this.options.group;
  }

  get messageModel(): MessageModel {
    return this.options.messageModel;
  }

  /**
   * Consume `topic`, filtered by a tag expression or a MessageSelector (INVALID_FILTER for a
   * malformed one). `%DLQ%<group>` topics may be consumed too.
   */
  subscribe(topic: string, selector: string | MessageSelector = '*'): void {
    this.checkState('created', 'subscribe');
    checkTopic(topic, true);
    const compiled = MessageSelector.from(selector);
    if (!this.subscriptions.has(topic) && this.subscriptions.size >= MAX_SUBSCRIPTIONS) {
      throw new PocketMQError('LIMIT_EXCEEDED', `a consumer takes at most ${MAX_SUBSCRIPTIONS} ` +
        'subscriptions', { limit: MAX_SUBSCRIPTIONS });
    }
    this.subscriptions.set(topic, compiled);
  }

  unsubscribe(topic: string): void {
    this.checkState('created', 'unsubscribe');
    this.subscriptions.delete(topic);
  }

  /** Queues this instance reads now. */
  assignment(): MessageQueue[] {
    return [...this.owned.values()];
  }

  /** `await using consumer = ...` shuts it down at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  abstract shutdown(): Promise<void>;

  /** Read `mq` through its durable consumer (already created). */
  protected abstract addQueue(mq: MessageQueue, durable: string): void;
  /** Stop reading `mq`; resolves when its messages in hand are settled. */
  protected abstract removeQueue(mq: MessageQueue): Promise<void>;

  protected selectorOf(topic: string): MessageSelector {
    return this.subscriptions.get(topic) ?? MessageSelector.byTag('*');
  }

  /** Join the group (clustering) and take this instance's queues. */
  protected async joinGroup(): Promise<void> {
    if (this.options.messageModel === 'CLUSTERING') {
      this.membership = new GroupMembership(this.connection, this.options.group, this.clientId,
        () => [...this.subscriptions.keys()], () => this.rebalance());
      await this.membership.join();
    }
    this.ticker = setInterval(() => this.tick(), this.connection.options.heartbeatIntervalMs);
    this.ticker.unref();
    this.rebalance();
    await this.rebalanced();
  }

  /** Leave the group and give up every queue. */
  protected async leaveGroup(): Promise<void> {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    await this.membership?.leave();
    await this.rebalanced();
    await Promise.all([...this.owned.values()].map((mq) => this.dropQueue(mq)));
    this.onShutdown(this);
  }

  /** Work out the queues again soon (coalesced; one run at a time). */
  protected rebalance(): void {
    this.rebalancePending = true;
    this.rebalancing ??= this.rebalanceLoop();
  }

  /** Resolves when no rebalance is running or due. */
  protected async rebalanced(): Promise<void> {
    while (this.rebalancing !== null) await this.rebalancing;
  }

  /** Every heartbeat interval: look again for topics without a stream, and `onTick`. */
  private tick(): void {
    if ([...this.subscriptions.keys()].some((t) => !this.knownTopics.has(t))) this.rebalance();
    try {
      this.onTick();
    } catch (err) {
      this.reportError('keep messages alive', err);
    }
  }

  /** Called every heartbeat interval while running. */
  protected onTick(): void {
    // Nothing by default.
  }

  private async rebalanceLoop(): Promise<void> {
    try {
      while (this.rebalancePending && this.state === 'running') {
        this.rebalancePending = false;
        try {
          await this.rebalanceOnce();
        } catch (err) {
          this.reportError('rebalance', err);
        }
      }
    } finally {
      this.rebalancing = null;
    }
  }

  private async rebalanceOnce(): Promise<void> {
    const wanted = new Map<string, MessageQueue>();
    for (const topic of this.subscriptions.keys()) {
      const count = await this.connection.queueCount(topic);
      if (count === 0) {
        if (this.firstRun) this.bornLater.add(topic);
        continue;
      }
      this.knownTopics.add(topic);
      const queues = Array.from({ length: count }, (_, queueId) => ({ topic, queueId }));
      const mine = this.membership === null ? queues
        : this.options.allocate(this.options.group, this.clientId, queues,
          this.membership.clientIds(topic));
      for (const mq of mine) wanted.set(queueKey(mq), { topic: mq.topic, queueId: mq.queueId });
    }
    this.firstRun = false;
    const gone = [...this.owned].filter(([key]) => !wanted.has(key)).map(([, mq]) => mq);
    await Promise.all(gone.map((mq) => this.dropQueue(mq)));
    const added = [...wanted].filter(([key]) => !this.owned.has(key))
      .map(([, mq]) => this.durableSpec(mq));
    // Durables of several queues are made side by side: each is a Raft group to create.
    await Promise.all(added.map((durable) => this.connection.ensureDurable(durable)));
    for (const durable of added) {
      if (this.state !== 'running') return;
      const mq = { topic: durable.topic, queueId: durable.queueId };
      this.owned.set(queueKey(mq), mq);
      this.addQueue(mq, durable.name);
    }
  }

  private async dropQueue(mq: MessageQueue): Promise<void> {
    try {
      await this.removeQueue(mq);
    } finally {
      this.owned.delete(queueKey(mq));
    }
  }

  private durableSpec(mq: MessageQueue): DurableSpec {
    const o = this.options;
    const broadcasting = o.messageModel === 'BROADCASTING';
    const name = broadcasting ? `${o.group}-BC-${this.broadcastKey}-q${mq.queueId}`
      : `${o.group}-q${mq.queueId}`;
    const start: StartPolicy = this.bornLater.has(mq.topic) ? { policy: 'all' }
      : o.consumeFromWhere === 'CONSUME_FROM_FIRST_OFFSET' ? { policy: 'all' }
        : o.consumeFromWhere === 'CONSUME_FROM_TIMESTAMP'
          ? { policy: 'by_start_time', timeMs: o.consumeTimestamp } : { policy: 'new' };
    // Orderly consumers hold one batch at a time per queue, even while two instances read it.
    const maxAckPending = o.orderly ? o.consumeMessageBatchMaxSize : o.pullThresholdForQueue;
    return { topic: mq.topic, queueId: mq.queueId, name, start, maxAckPending,
      inactiveThresholdMs: broadcasting && this.anonymous ? ANONYMOUS_DURABLE_IDLE_MS : 0 };
  }

  protected checkState(expected: ConsumerState, what: string): void {
    if (this.state !== expected) {
      throw new PocketMQError('INVALID_STATE',
        `cannot ${what}: consumer of group ${this.options.group} is ${this.state}`);
    }
  }

  /**
   * An error met while running: to `onError` and `'error'` listeners as thrown; with neither,
   * the first becomes a process warning. Every one goes to the logger's error level too.
   */
  protected reportError(during: string, err: unknown, messages?: readonly MessageExt[]): void {
    const context: ConsumerErrorContext = { group: this.options.group, clientId: this.clientId,
      during, messages };
    const why = err instanceof Error ? (err.stack ?? err.message) : String(err);
    this.connection.logger.error(`pocketmq: consumer ${this.options.group}: ${during}: ${why}`);
    let handled = false;
    if (this.options.onError !== null) {
      handled = true;
      try {
        this.options.onError(err, context);
      } catch (thrown) {
        this.connection.logger.error(`pocketmq: consumer ${this.options.group}: onError ` +
          `threw: ${String(thrown)}`);
      }
    }
    if (this.listenerCount('error') > 0) {
      handled = true;
      this.emit('error', err, context);
    }
    if (!handled && !this.warned) {
      this.warned = true;
      process.emitWarning(`pocketmq consumer ${this.options.group}: ${during}: ${why}\n` +
        "(handle consumer errors with an 'error' listener or the onError option; this " +
        'warning is printed once per consumer)', { code: 'POCKETMQ_CONSUMER_ERROR' });
    }
  }
}
