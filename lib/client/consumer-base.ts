/**
 * What push and pull consumers share: subscriptions (topic -> compiled filter, checked at
 * `subscribe`), the instance's client id in its group, membership in the broker's group table,
 * the rebalancer, and the offset key (the group, or a key per instance when broadcasting).
 */
import { createHash } from 'node:crypto';
import { PocketMQError } from '../errors.js';
import type { Broker } from '../broker/broker.js';
import type { ConsumerMember, MessageModel } from '../broker/consumer-manager.js';
import { compileFilter, type MessageFilter } from '../broker/filter/filter.js';
import type { MessageSelector } from '../broker/filter/message-selector.js';
import { checkTopicName, checkUserTopic, DLQ_TOPIC_PREFIX, RETRY_TOPIC_PREFIX } from
  '../broker/names.js';
import type { MessageQueue } from './allocate.js';
import type { ResolvedCommon } from './consumer-options.js';
import { Rebalancer, startOffset } from './rebalance.js';

/**
 * The offsets key of a broadcasting instance (RocketMQ keeps those offsets in a local file per
 * client). The offsets table takes only group names (`^[A-Za-z0-9_-]{1,120}$`), so the key is
 * `<group>-BC-<instance>` with other characters as `_`, cut to fit, plus a digest of the exact
 * pair so two instances never share a key.
 */
export function broadcastOffsetGroup(group: string, clientId: string): string {
  const digest = createHash('sha256').update(`${group}\u0000${clientId}`).digest('hex')
    .slice(0, 12);
  const readable = `${group}-BC-${clientId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  return `${readable.slice(0, GROUP_NAME_MAX - digest.length - 1)}-${digest}`;
}

const GROUP_NAME_MAX = 120;

/** Subscriptions per consumer. */
export const MAX_SUBSCRIPTIONS = 1024;

export type ConsumerState = 'created' | 'running' | 'stopping' | 'stopped';

export abstract class ConsumerBase {
  protected state: ConsumerState = 'created';
  protected readonly subscriptions = new Map<string, MessageFilter>();
  protected readonly rebalancer: Rebalancer;
  private clientIdValue = '';
  /** Queue count of each subscribed topic when the instance joined its group. */
  private readonly queueNumsAtJoin = new Map<string, number>();

  constructor(readonly broker: Broker, protected readonly base: ResolvedCommon,
    private readonly onShutdown: (consumer: ConsumerBase) => void) {
    this.rebalancer = new Rebalancer({
      broker, group: base.group, messageModel: base.messageModel, allocate: base.allocate,
      clientId: () => this.clientIdValue,
      subscribedTopics: () => [...this.subscriptions.keys()],
      addQueue: (mq) => this.addQueue(mq),
      removeQueue: (mq) => this.removeQueue(mq),
      onError: (err) => this.reportError('rebalance', err),
      logger: broker.options.logger,
    });
  }

  get group(): string {
    return this.base.group;
  }

  get messageModel(): MessageModel {
    return this.base.messageModel;
  }

  /** This instance's id in its group (the instance name, made unique within the process). */
  get clientId(): string {
    return this.clientIdValue;
  }

  /**
   * Consume `topic`, filtered by a tag expression (`'*'`, `'TagA || TagB'`) or a
   * MessageSelector. Throws INVALID_FILTER for a malformed expression. A user may consume
   * `%DLQ%<group>` and `%RETRY%<group>` topics, but no other reserved one.
   */
  subscribe(topic: string, selector: string | MessageSelector = '*'): void {
    this.checkState('created', 'subscribe');
    if (typeof topic === 'string' &&
      (topic.startsWith(DLQ_TOPIC_PREFIX) || topic.startsWith(RETRY_TOPIC_PREFIX))) {
      checkTopicName(topic);
    } else {
      checkUserTopic(topic);
    }
    const filter = compileFilter(selector);
    if (!this.subscriptions.has(topic) && this.subscriptions.size >= MAX_SUBSCRIPTIONS) {
      throw new PocketMQError('LIMIT_EXCEEDED', `a consumer takes at most ${MAX_SUBSCRIPTIONS} ` +
        'subscriptions', { limit: MAX_SUBSCRIPTIONS });
    }
    this.subscriptions.set(topic, filter);
  }

  unsubscribe(topic: string): void {
    this.checkState('created', 'unsubscribe');
    this.subscriptions.delete(topic);
  }

  /** The offsets table key: the group, or one key per instance when broadcasting. */
  protected get offsetGroup(): string {
    return this.base.messageModel === 'BROADCASTING'
      ? broadcastOffsetGroup(this.base.group, this.clientIdValue) : this.base.group;
  }

  /**
   * Where to read `mq` from: the group's committed offset, else `consumeFromWhere`. A queue that
   * did not exist when the instance joined (its topic was created, or grew, later) holds only
   * messages sent while the instance was subscribed: it is read from its first message, or the
   * first messages of a new topic would be skipped by CONSUME_FROM_LAST_OFFSET.
   */
  protected startOffsetOf(mq: MessageQueue): number {
    const bornLater = mq.queueId >= (this.queueNumsAtJoin.get(mq.topic) ?? Infinity);
    return startOffset(this.broker, this.offsetGroup, mq,
      bornLater ? 'CONSUME_FROM_FIRST_OFFSET' : this.base.consumeFromWhere,
      this.base.consumeTimestamp);
  }

  protected filterOf(topic: string): MessageFilter {
    return this.subscriptions.get(topic) ?? compileFilter('*');
  }

  /** Join the group: the broker tells every member, and each rebalances. */
  protected join(): void {
    const consumers = this.broker.consumers;
    let id = this.base.instanceName;
    for (let n = 2; consumers.isClientIdTaken(this.base.group, id); n++) {
      id = `${this.base.instanceName}#${n}`;
    }
    this.clientIdValue = id;
    for (const topic of this.subscriptions.keys()) {
      this.queueNumsAtJoin.set(topic, this.broker.topics.get(topic)?.queueNums ?? 0);
    }
    const member: ConsumerMember = {
      clientId: id,
      messageModel: this.base.messageModel,
      topics: () => [...this.subscriptions.keys()],
      onChange: () => this.rebalancer.trigger(),
      flushOffsets: () => this.flushOffsets(),
    };
    consumers.register(this.base.group, member);
  }

  /** Leave the group and give up every queue (each removal commits what it must). */
  protected async leave(): Promise<void> {
    this.broker.consumers.unregister(this.base.group, this.clientIdValue);
    await this.rebalancer.stop();
    this.onShutdown(this);
  }

  protected checkState(expected: ConsumerState, what: string): void {
    if (this.state !== expected) {
      throw new PocketMQError('INVALID_STATE',
        `cannot ${what}: consumer of group ${this.base.group} is ${this.state}`);
    }
  }

  protected reportError(what: string, err: unknown): void {
    const why = err instanceof Error ? err.message : String(err);
    this.broker.options.logger.error(`pocketmq: consumer ${this.base.group}: ${what}: ${why}`);
  }

  /** Write offsets held back for the turn to the offsets table (push consumers hold some). */
  protected flushOffsets(): void {
    // Nothing held back by default.
  }

  protected abstract addQueue(mq: MessageQueue): void;
  protected abstract removeQueue(mq: MessageQueue): Promise<void>;
  abstract shutdown(): Promise<void>;
}
