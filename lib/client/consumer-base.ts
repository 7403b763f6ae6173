/**
 * What push and pull consumers share: subscriptions (topic -> selector, checked at
 * `subscribe`), the instance's client id in its group, membership in the broker's group table,
 * the rebalancer, the offset key (the group, or a key per instance when broadcasting), and how
 * errors reach the application: the `onError` option and the `'error'` event, both with the
 * error as thrown (its stack intact); with neither, the first one becomes a process warning,
 * so a failing listener is never only a debug log line.
 */
import { EventEmitter } from 'node:events';
import { PocketMQError } from '../errors.js';
import {
  checkTopicName, checkUserTopic, DLQ_TOPIC_PREFIX, MessageSelector, RETRY_TOPIC_PREFIX,
  type BrokerPort, type GroupMember, type MessageExt, type MessageModel, type MessageQueue,
} from '../broker/port.js';
import type { ConsumerErrorContext, ResolvedCommon } from './consumer-options.js';
import { digest } from './allocate.js';
import { Rebalancer, startOffset } from './rebalance.js';

/**
 * The offsets key of a broadcasting instance (RocketMQ keeps those offsets in a local file per
 * client). The offsets table takes only group names (`^[A-Za-z0-9_-]{1,120}$`), so the key is
 * `<group>-BC-<instance>` with other characters as `_`, cut to fit, plus a digest of the exact
 * pair so two instances never share a key.
 */
export function broadcastOffsetGroup(group: string, clientId: string): string {
  const hash = digest('sha256', `${group}\u0000${clientId}`).toString('hex').slice(0, 12);
  const readable = `${group}-BC-${clientId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  return `${readable.slice(0, GROUP_NAME_MAX - hash.length - 1)}-${hash}`;
}

const GROUP_NAME_MAX = 120;

/**
 * Wait for `step`; OWNER_UNAVAILABLE counts as done: at shutdown, a step the owner process can
 * no longer take was taken by its going (it evicts the members of a closed connection).
 */
async function ownerGoneIsDone(step: Promise<void> | void): Promise<void> {
  try {
    await step;
  } catch (err) {
    if (!(err instanceof PocketMQError && err.code === 'OWNER_UNAVAILABLE')) throw err;
  }
}

/** Subscriptions per consumer. */
export const MAX_SUBSCRIPTIONS = 1024;

export type ConsumerState = 'created' | 'running' | 'stopping' | 'stopped';

export abstract class ConsumerBase extends EventEmitter {
  protected state: ConsumerState = 'created';
  protected readonly subscriptions = new Map<string, MessageSelector>();
  protected readonly rebalancer: Rebalancer;
  private clientIdValue = '';
  /** Queue count of each subscribed topic when the instance joined its group. */
  private readonly queueNumsAtJoin = new Map<string, number>();
  private warned = false;

  constructor(readonly port: BrokerPort, protected readonly base: ResolvedCommon,
    private readonly onShutdown: (consumer: ConsumerBase) => void) {
    super();
    this.rebalancer = new Rebalancer({
      port, group: base.group, messageModel: base.messageModel, allocate: base.allocate,
      clientId: () => this.clientIdValue,
      subscribedTopics: () => [...this.subscriptions.keys()],
      addQueue: (mq) => this.addQueue(mq),
      removeQueue: (mq) => this.removeQueue(mq),
      onError: (err) => this.reportError('rebalance', err),
      logger: port.info.logger,
    });
  }

  get group(): string {
    return this.base.group;
  }

  get messageModel(): MessageModel {
    return this.base.messageModel;
  }

  /** This instance's id in its group (the instance name, made unique within the group). */
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

  /** `await using consumer = ...` shuts it down at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
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
  protected startOffsetOf(mq: MessageQueue): Promise<number> {
    const bornLater = mq.queueId >= (this.queueNumsAtJoin.get(mq.topic) ?? Infinity);
    // Nothing in a retry topic is skipped: it holds only this group's failed messages.
    const first = bornLater || mq.topic.startsWith(RETRY_TOPIC_PREFIX);
    return startOffset(this.port, this.offsetGroup, mq,
      first ? 'CONSUME_FROM_FIRST_OFFSET' : this.base.consumeFromWhere,
      this.base.consumeTimestamp);
  }

  protected selectorOf(topic: string): MessageSelector {
    return this.subscriptions.get(topic) ?? MessageSelector.byTag('*');
  }

  /** Join the group: the broker tells every member, and each rebalances. */
  protected async join(): Promise<void> {
    for (const topic of this.subscriptions.keys()) {
      this.queueNumsAtJoin.set(topic, (await this.port.topic(topic))?.queueNums ?? 0);
    }
    const member: GroupMember = {
      group: this.base.group,
      instanceName: this.base.instanceName,
      messageModel: this.base.messageModel,
      topics: () => [...this.subscriptions.keys()],
      // A change told before the join answered waits for the run below.
      onChange: () => {
        if (this.clientIdValue !== '') this.rebalancer.trigger();
      },
      flushOffsets: () => this.flushOffsets(),
      redeliver: (mq, messages) => this.redeliver(mq, messages),
      deadLettered: (mq, messages) => this.deadLettered(mq, messages),
      reset: (clientId) => this.reset(clientId),
    };
    const clientId = this.port.join(member);
    this.clientIdValue = clientId instanceof Promise ? await clientId : clientId;
    this.rebalancer.trigger();
  }

  /**
   * The broker changed hands (several processes on one store): in the group again as
   * `clientId`; every queue is given up without a commit and the instance rebalances.
   */
  private reset(clientId: string): void {
    this.clientIdValue = clientId;
    for (const mq of this.rebalancer.forget()) this.abandonQueue(mq);
    this.rebalancer.trigger();
  }

  /** Leave the group and give up every queue (each removal commits what it must). */
  protected async leave(): Promise<void> {
    // An owner process that went away evicted this member already.
    await ownerGoneIsDone(this.port.leave(this.base.group, this.clientIdValue));
    await this.rebalancer.stop();
    this.onShutdown(this);
  }

  /** Write offsets at shutdown; an owner that went away keeps what it had persisted. */
  protected persistAtShutdown(): Promise<void> {
    return ownerGoneIsDone(this.port.persistOffsets());
  }

  protected checkState(expected: ConsumerState, what: string): void {
    if (this.state !== expected) {
      throw new PocketMQError('INVALID_STATE',
        `cannot ${what}: consumer of group ${this.base.group} is ${this.state}`);
    }
  }

  /**
   * An error met while running: to `onError` and `'error'` listeners as thrown; with neither,
   * the first becomes a process warning. Every one goes to the logger's error level too.
   */
  protected reportError(during: string, err: unknown,
    messages?: readonly MessageExt[]): void {
    const context: ConsumerErrorContext = { group: this.base.group, clientId: this.clientIdValue,
      during, messages };
    const why = err instanceof Error ? (err.stack ?? err.message) : String(err);
    this.port.info.logger.error(`pocketmq: consumer ${this.base.group}: ${during}: ${why}`);
    let handled = false;
    if (this.base.onError !== null) {
      handled = true;
      try {
        this.base.onError(err, context);
      } catch (thrown) {
        this.port.info.logger.error(`pocketmq: consumer ${this.base.group}: onError threw: ` +
          String(thrown));
      }
    }
    if (this.listenerCount('error') > 0) {
      handled = true;
      this.emit('error', err, context);
    }
    if (!handled && !this.warned) {
      this.warned = true;
      process.emitWarning(`pocketmq consumer ${this.base.group}: ${during}: ${why}\n` +
        "(handle consumer errors with an 'error' listener or the onError option; this " +
        'warning is printed once per consumer)', { code: 'POCKETMQ_CONSUMER_ERROR' });
    }
  }

  /** Write offsets held back for the turn to the offsets table (push consumers hold some). */
  protected flushOffsets(): void {
    // Nothing held back by default.
  }

  /** Messages given back for a retry are due again (push consumers only). */
  protected redeliver(_mq: MessageQueue, _messages: readonly MessageExt[]): void {
    // Only push consumers give messages back.
  }

  /** Messages given back went to the dead-letter queue (push consumers only). */
  protected deadLettered(_mq: MessageQueue, _messages: readonly MessageExt[]): void {
    // Only push consumers give messages back.
  }

  protected abstract addQueue(mq: MessageQueue): Promise<void>;
  /** Stop reading `mq` at once and forget it, committing nothing (see `reset`). */
  protected abstract abandonQueue(mq: MessageQueue): void;
  protected abstract removeQueue(mq: MessageQueue): Promise<void>;
  abstract shutdown(): Promise<void>;
}
